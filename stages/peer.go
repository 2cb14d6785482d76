package stages

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Peer is the identity of one connected peer as the Scheduler sees it: where it is, how
// often it sent bad data, and how to wake its session when work becomes available.
type Peer struct {
	Addr    netip.AddrPort
	strikes int // guarded by the Scheduler's lock
	banned  atomic.Bool
	kick    chan struct{}

	mu      sync.Mutex
	cancels []BlockReq // endgame requests to cancel, taken by the session's writer
}

// NewPeer returns the identity of a peer at addr.
func NewPeer(addr netip.AddrPort) *Peer {
	return &Peer{Addr: addr, kick: make(chan struct{}, 1)}
}

// Banned reports whether the peer sent corrupt data often enough to be dropped.
func (p *Peer) Banned() bool { return p.banned.Load() }

// Kick wakes the peer's session to ask the Scheduler for work; it never blocks.
func (p *Peer) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Kicked is the channel a session waits on for Kick.
func (p *Peer) Kicked() <-chan struct{} { return p.kick }

// cancel asks the peer's session to cancel its request for b, which arrived from another
// peer; it never blocks.
func (p *Peer) cancel(b BlockReq) {
	p.mu.Lock()
	p.cancels = append(p.cancels, b)
	p.mu.Unlock()
	p.Kick()
}

// takeCancels returns the requests to cancel and forgets them.
func (p *Peer) takeCancels(dst []BlockReq) []BlockReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	dst = append(dst, p.cancels...)
	p.cancels = p.cancels[:0]
	return dst
}
