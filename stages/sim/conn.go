package sim

import (
	"slices"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// half is one node's side of a connection: what a session (stages/request.go) keeps for one
// peer. The download side asks n's Scheduler for blocks of what the remote has; the upload
// side serves the remote's requests while n's choker unchokes it.
type half struct {
	n      *node
	remote *half
	peer   *stages.Peer // the remote as n's Scheduler knows it
	lat    time.Duration
	closed bool

	// Download: n from the remote.
	has        wire.Bitfield // what the remote announced
	hasCount   int
	choked     bool // the remote chokes n, as n last heard
	interested bool // n told the remote it is interested
	pending    []stages.BlockReq
	released   []stages.BlockReq // dropped on choke or cancelled, whose blocks may still arrive
	isPending  func(stages.BlockReq) bool
	reqs       []stages.BlockReq // scratch for Scheduler.Next

	// Upload: n to the remote.
	choking        bool // n chokes the remote; a connection starts choked (BEP 3)
	peerInterested bool
	upq            []stages.BlockReq
	ready          bool // in n.ready

	// Block bytes each way, and where they stood at the last full choke round.
	recv, sent         int64
	markRecv, markSent int64
	markAt             time.Duration
}

// connect opens a connection between a and b; each side sends its bitfield first (BEP 3).
func (s *swarm) connect(a, b *node) {
	lat := s.cfg.Latency
	if lat > 0 {
		lat = lat/2 + time.Duration(s.setup.Int64N(int64(lat)+1))
	}
	ha, hb := s.newHalf(a, b, lat), s.newHalf(b, a, lat)
	ha.remote, hb.remote = hb, ha
	for _, h := range []*half{ha, hb} {
		h.n.conns = append(h.n.conns, h)
		h.n.sched.PeerJoined(h.peer)
		if bf, _ := h.n.sched.Snapshot(); bf.Count() > 0 {
			s.send(h, msgBitfield).bf = bf
		}
	}
}

func (s *swarm) newHalf(n, remote *node, lat time.Duration) *half {
	h := &half{n: n, peer: stages.NewPeer(addr(remote.id)), lat: lat, choked: true, choking: true,
		has: wire.NewBitfield(s.cfg.Pieces), markAt: s.now}
	// The Scheduler asks whether a block is pending at this peer.
	h.isPending = func(r stages.BlockReq) bool { return slices.Contains(h.pending, r) }
	return h
}

// disconnect closes h's connection; both sides' sessions end.
func (s *swarm) disconnect(h *half) {
	if h.closed {
		return
	}
	h.closed, h.remote.closed = true, true
	s.drop(h)
	s.drop(h.remote)
}

// drop ends h's session as stages/request.go does: outstanding requests go back to the
// Scheduler with the peer (PeerLeft), then the choker has a quick pass for the freed slot.
func (s *swarm) drop(h *half) {
	n := h.n
	n.conns = slices.DeleteFunc(n.conns, func(c *half) bool { return c == h })
	for _, r := range h.pending {
		s.unrequest(n, r)
	}
	if n.left {
		return
	}
	n.sched.PeerLeft(h.peer, h.has, h.pending)
	s.choke(n, false, false)
	s.wake(n)
}

// send puts a message from h's node on the wire to the remote; it arrives after the link's
// latency, after every message sent before it on this connection.
func (s *swarm) send(h *half, k kind) *event {
	e := s.at(s.now+h.lat, k)
	e.h = h.remote
	return e
}

// deliver handles a message arriving at e.h.
func (s *swarm) deliver(e *event) {
	h, n := e.h, e.h.n
	switch e.kind {
	case msgBitfield:
		for i := range s.cfg.Pieces {
			if e.bf.Has(i) {
				s.announce(h, i)
			}
		}
		if h.closed {
			return
		}
		if !h.interested && !n.complete && n.sched.Interesting(h.has) {
			s.interest(h)
		}
		s.fill(h)
	case msgHave:
		i := e.req.Piece
		if h.has.Has(i) {
			return
		}
		s.announce(h, i)
		if !h.closed && !n.complete && !n.sched.Has(i) {
			if !h.interested {
				s.interest(h)
			}
			s.refill(h)
		}
	case msgChoke:
		// BEP 3: a choking peer discards our requests; they go to the other peers.
		h.choked = true
		h.released = append(h.released, h.pending...)
		for _, r := range h.pending {
			s.unrequest(n, r)
		}
		n.sched.Release(h.peer, h.pending)
		h.pending = h.pending[:0]
		s.wake(n)
	case msgUnchoke:
		h.choked = false
		h.released = h.released[:0] // blocks sent before the choke have all arrived
		s.fill(h)
	case msgInterested, msgNotInterested:
		h.peerInterested = e.kind == msgInterested
		s.choke(n, false, false)
	case msgRequest:
		if !h.choking { // BEP 3: requests from a choked peer are discarded
			s.queue(h, e.reqs)
		}
	case msgCancel:
		if i := slices.Index(h.upq, e.req); i >= 0 {
			h.upq = slices.Delete(h.upq, i, i+1)
		}
	case msgBlock:
		s.block(h, e.req)
	}
}

// announce records that h's remote holds piece i (bitfield or have).
func (s *swarm) announce(h *half, i int) {
	if h.has.Has(i) {
		return
	}
	h.has.Set(i)
	h.hasCount++
	h.n.sched.PeerHas(i)
	if h.hasCount == s.cfg.Pieces && h.n.complete {
		s.disconnect(h) // both are seeds: nothing to say to each other
	}
}

// interest tells h's remote that h's node wants some of its pieces; stages/request.go stays
// interested until the download completes.
func (s *swarm) interest(h *half) {
	h.interested = true
	s.send(h, msgInterested)
}

// request counts one more outstanding request of n for the block r.
func (n *node) request(r stages.BlockReq) {
	if n.out[r.Piece] == nil {
		n.out[r.Piece] = make([]uint8, (n.pieceLen+wire.BlockSize-1)/wire.BlockSize)
	}
	n.out[r.Piece][r.Begin/wire.BlockSize]++
}

// outstanding is the number of n's requests for the block r over all its links.
func (n *node) outstanding(r stages.BlockReq) uint8 {
	if c := n.out[r.Piece]; c != nil {
		return c[r.Begin/wire.BlockSize]
	}
	return 0
}

// unrequest forgets one outstanding request of n for a block.
func (s *swarm) unrequest(n *node, r stages.BlockReq) {
	if c := n.out[r.Piece]; c != nil && c[r.Begin/wire.BlockSize] > 0 {
		c[r.Begin/wire.BlockSize]--
	}
}

// wake refills the links whose peer the Scheduler kicked: it found no work for them before,
// and some may be available now (a piece completed, requests came back).
func (s *swarm) wake(n *node) {
	for _, h := range n.conns {
		select {
		case <-h.peer.Kicked():
			s.fill(h)
		default:
		}
	}
}
