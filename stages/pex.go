package stages

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// PEX is peer exchange (BEP 11, ut_pex): a PeerSource of the peers that connected peers
// tell us about, and, in the Request stage, the messages that tell each peer which peers
// we are connected to. It is off for private torrents (BEP 27), which learn peers from
// their trackers only. One PEX serves one graph: graph.go merges it with the other
// sources before Dial and gives it to the Request stage.
type PEX struct {
	// Interval is how often each peer is told what changed; BEP 11 allows no more than
	// once a minute (default 1m; tests shorten it).
	Interval time.Duration
	found    chan netip.AddrPort // from the sessions; never closed, so a late send cannot panic
}

var _ PeerSource = (*PEX)(nil)

// NewPEX returns a PEX that reports peers every interval (0: a minute).
func NewPEX(interval time.Duration) *PEX {
	return &PEX{Interval: cmp0(interval, time.Minute), found: make(chan netip.AddrPort, 256)}
}

// Open emits the addresses peers send us. Out: *PeerAddr; it closes when ctx ends.
func (x *PEX) Open(ctx context.Context, _ *Swarm) streams.Source {
	out := make(chan any)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-x.found:
				select {
				case out <- &PeerAddr{Addr: a, From: FromPEX}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return NewSource(out)
}

// learned passes on a peer that a peer told us of; it never blocks: when Dial is behind,
// addresses are dropped, as a tracker's extra peers would be.
func (x *PEX) learned(a netip.AddrPort) {
	select {
	case x.found <- a:
	default:
	}
}

// pexMsg reads a peer's ut_pex message: its added peers are offered to Dial. Dropped
// peers are not acted on: the peer list learns for itself whether an address answers.
func (s *session) pexMsg(payload []byte) error {
	if s.cfg.Pex == nil {
		return nil
	}
	m, err := wire.ParsePex(payload)
	if err != nil {
		return err
	}
	self := s.selfAddr()
	for _, a := range m.Added {
		if a.Addr != s.listenAddr() && a.Addr != self {
			s.cfg.Pex.learned(a.Addr)
		}
	}
	return nil
}

// selfAddr is our listening address as the peer sees us: libtorrent's first PEX message
// lists the recipient itself.
func (s *session) selfAddr() netip.AddrPort {
	if ta, ok := s.c.LocalAddr().(*net.TCPAddr); ok {
		return netip.AddrPortFrom(ta.AddrPort().Addr().Unmap(), s.env.Port)
	}
	return netip.AddrPort{}
}

// listenAddr is where the peer accepts connections: the address we dialed, or, for a
// peer that dialed us, its IP and the port its extended handshake gave ("p"); invalid
// when that is not known.
func (s *session) listenAddr() netip.AddrPort {
	if !s.c.Incoming {
		return s.c.Addr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peerPort == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(s.c.Addr.Addr(), s.peerPort)
}

// runPex tells every peer that speaks ut_pex, each Interval, which peers we connected to
// and lost since its last message (BEP 11: added with flags, dropped; at most 50 of each
// after the first message, which may hold up to wire.MaxPexPeers).
func (r *registry) runPex(ctx context.Context, x *PEX) {
	tick := time.NewTicker(x.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sessions := r.snapshot()
		now := make(map[netip.AddrPort]wire.PexFlags, len(sessions))
		for _, s := range sessions {
			if a := s.listenAddr(); a.IsValid() {
				now[a] = s.pexFlags()
			}
		}
		for _, s := range sessions {
			s.queuePex(now)
		}
	}
}

// pexFlags is what we tell others of this peer (BEP 11): a seed, and reachable when we
// connected to it.
func (s *session) pexFlags() wire.PexFlags {
	var f wire.PexFlags
	if !s.c.Incoming {
		f |= wire.PexReachable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.has.Count() == s.env.Info.NumPieces() {
		f |= wire.PexSeed
	}
	return f
}

// queuePex queues for the peer the changes between what it was last told and now, the
// peers connected now, leaving itself out.
func (s *session) queuePex(now map[netip.AddrPort]wire.PexFlags) {
	self := s.listenAddr()
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.peerExt[wire.ExtPex]
	if !ok {
		return
	}
	limit := 50
	if s.pexSent == nil {
		s.pexSent, limit = make(map[netip.AddrPort]bool), wire.MaxPexPeers
	}
	var m wire.Pex
	for a, f := range now {
		if a != self && !s.pexSent[a] && len(m.Added) < limit {
			m.Added = append(m.Added, wire.PexPeer{Addr: a, Flags: f})
			s.pexSent[a] = true
		}
	}
	for a := range s.pexSent {
		if _, still := now[a]; !still && len(m.Dropped) < limit {
			m.Dropped = append(m.Dropped, a)
			delete(s.pexSent, a)
		}
	}
	if len(m.Added) == 0 && len(m.Dropped) == 0 {
		return
	}
	s.extOut = wire.AppendPex(s.extOut, id, m)
	s.p.Kick()
}
