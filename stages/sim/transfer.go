package sim

import (
	"slices"
	"time"

	"github.com/bitstorm/bitstorm/stages"
)

// fill keeps Requests requests outstanding on h while the remote unchokes us, asking the
// Scheduler which blocks, as a session's plan does (stages/request.go).
func (s *swarm) fill(h *half) {
	n := h.n
	if h.closed || h.choked || !h.interested || n.complete || len(h.pending) >= s.cfg.Requests {
		return
	}
	h.reqs = n.sched.Next(h.peer, h.has, s.cfg.Requests-len(h.pending), h.isPending, h.reqs[:0])
	if len(h.reqs) == 0 {
		return
	}
	for _, r := range h.reqs {
		h.pending = append(h.pending, r)
		n.request(r)
	}
	// The requests go out together and arrive together: one event carries them all.
	e := s.send(h, msgRequest)
	e.reqs = append(e.reqs, h.reqs...)
}

// queue adds requests from h's remote to h's upload queue.
func (s *swarm) queue(h *half, reqs []stages.BlockReq) {
	h.upq = append(h.upq, reqs...)
	if !h.ready {
		h.ready = true
		h.n.ready = append(h.n.ready, h)
	}
	s.upload(h.n)
}

// upload puts the next queued block on n's uplink unless one is on it already. The peers
// with requests queued share the bandwidth block by block, in turn.
func (s *swarm) upload(n *node) {
	if n.sending || n.left || n.leaving {
		return
	}
	for len(n.ready) > 0 {
		h := n.ready[0]
		n.ready = n.ready[1:]
		if len(h.upq) == 0 || h.closed { // choked or cancelled since
			h.ready = false
			continue
		}
		r := h.upq[0]
		h.upq = slices.Delete(h.upq, 0, 1)
		if len(h.upq) > 0 {
			n.ready = append(n.ready, h) // back in line
		} else {
			h.ready = false
		}
		n.sending = true
		e := s.at(s.now+time.Duration(int64(r.Length)*int64(time.Second)/n.rate), evSent)
		e.h, e.req = h, r
		return
	}
}

// sent: the block r is on the wire to h's remote; the uplink is free for the next one.
func (s *swarm) sent(h *half, r stages.BlockReq) {
	n := h.n
	n.sending = false
	if n.left {
		return
	}
	if !h.closed {
		h.sent += int64(r.Length)
		n.up += int64(r.Length)
		s.send(h, msgBlock).req = r
		if n.seeder && s.cfg.SeederLeaveCopies > 0 && float64(n.up) >= s.cfg.SeederLeaveCopies*float64(s.info.Length) {
			n.leaving = true
			s.at(s.now+h.lat, evLeave).n = n // after the block, which was scheduled first
		}
	}
	s.upload(n)
}

// block handles a block arriving at h, as a session's block and the stages after it do:
// the Scheduler takes it (Received) or it is a duplicate; a piece whose bytes are all here
// is verified and written at once (PieceDone).
func (s *swarm) block(h *half, r stages.BlockReq) {
	n := h.n
	if i := slices.Index(h.pending, r); i >= 0 {
		h.pending = slices.Delete(h.pending, i, i+1)
		s.unrequest(n, r)
	} else if i := slices.Index(h.released, r); i >= 0 {
		h.released = slices.Delete(h.released, i, i+1)
	} else {
		return // not requested (any more): stages/request.go would drop the peer
	}
	h.recv += int64(r.Length)
	n.down += int64(r.Length)
	if n.sched.Received(h.peer, r) {
		if n.outstanding(r) > 0 {
			s.cancelOthers(n, h, r)
		}
		if n.got[r.Piece] += int32(r.Length); int64(n.got[r.Piece]) == s.info.PieceSize(r.Piece) {
			s.pieceDone(n, r.Piece)
		}
	}
	s.refill(h)
}

// refill fills h once half its window is served: requests go out in batches, as a session
// asks for more when it runs low (stages/request.go), and not at every block or have.
func (s *swarm) refill(h *half) {
	if len(h.pending) <= s.cfg.Requests/2 {
		s.fill(h)
	}
}

// cancelOthers cancels the endgame's other requests for r, which arrived on from (BEP 3
// cancel); the Scheduler asked for that in Received, through the peers' cancel lists.
func (s *swarm) cancelOthers(n *node, from *half, r stages.BlockReq) {
	for _, h := range n.conns {
		if h == from {
			continue
		}
		if i := slices.Index(h.pending, r); i >= 0 {
			h.pending = slices.Delete(h.pending, i, i+1)
			h.released = append(h.released, r)
			s.unrequest(n, r)
			s.send(h, msgCancel).req = r
			s.fill(h)
		}
	}
}

// pieceDone marks piece verified in n's Scheduler and tells n's peers (have).
func (s *swarm) pieceDone(n *node, piece int) {
	n.sched.PieceDone(piece)
	for _, h := range n.conns {
		// A have for a seed changes nothing there, and haves are many of the events.
		if !h.has.Has(piece) && !h.remote.n.complete {
			s.send(h, msgHave).req.Piece = piece
		}
	}
	if !n.sched.IsComplete() {
		s.wake(n)
		return
	}
	s.incomplete--
	if n.initial {
		s.initialDone()
	}
	s.finish(n)
	for _, h := range slices.Clone(n.conns) {
		switch {
		case h.hasCount == s.cfg.Pieces:
			s.disconnect(h) // both are seeds
		case h.interested:
			h.interested = false
			s.send(h, msgNotInterested)
		}
	}
}

// choke runs n's choker as the session registry does (stages/swarm.go): candidates are the
// interested peers with their rates since the last full round; a full round unchokes
// exactly the peers chosen, a quick pass (a peer became interested or a slot freed) only
// fills free slots (stages.QuickUnchokes).
func (s *swarm) choke(n *node, full, optimistic bool) {
	cands := s.cands[:0]
	busy := 0
	for _, h := range n.conns {
		if h.peerInterested && !h.choking {
			busy++
		}
		secs := (s.now - h.markAt).Seconds()
		if h.peerInterested && secs > 0 {
			cands = append(cands, stages.ChokeCandidate{Peer: h.peer,
				DownRate: float64(h.recv-h.markRecv) / secs, UpRate: float64(h.sent-h.markSent) / secs,
				Unchoked: !h.choking})
		}
		if full {
			h.markRecv, h.markSent, h.markAt = h.recv, h.sent, s.now
		}
	}
	s.cands = cands
	s.chosen = append(s.chosen[:0], n.choker.Choose(cands, n.sched.IsComplete(), optimistic)...)
	if full {
		for _, h := range n.conns {
			s.setChoking(h, !slices.Contains(s.chosen, h.peer))
		}
		return
	}
	halfOf := func(p *stages.Peer) *half {
		for _, h := range n.conns {
			if h.peer == p {
				return h
			}
		}
		return nil
	}
	for _, p := range stages.QuickUnchokes(s.chosen, busy, func(p *stages.Peer) bool { return halfOf(p).choking }) {
		s.setChoking(halfOf(p), false)
	}
}

// setChoking applies the choker's decision for h's remote and tells it.
func (s *swarm) setChoking(h *half, choke bool) {
	if h.choking == choke {
		return
	}
	h.choking = choke
	if choke {
		h.upq = h.upq[:0] // BEP 3: choking discards the peer's queued requests
		s.send(h, msgChoke)
	} else {
		s.send(h, msgUnchoke)
	}
}
