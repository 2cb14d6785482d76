package stages

import (
	"fmt"
	"sync"
)

// ErrSessionFull is why a connection was refused, or a dial found no slot, when the
// shared ConnBudget was spent: the peer list's own limit was not reached, its session's
// was. It is the "no free connection slot" error too, so the peer is tried again later
// without a failure counted.
var ErrSessionFull = fmt.Errorf("session's connections: %w", errFull)

// ConnBudget is a number of peer connections shared by many swarms: a Session's torrents
// together, as Transmission's peer-limit-global caps every torrent's peers at once while
// each torrent keeps its own limit too. Every connection a PeerList registers (see
// UseBudget) holds one slot of it until the connection closes, whatever closes it. When a
// slot comes back to a spent budget, the PeerLists that found it spent are woken, so that
// their dialers try again; the others, which wanted no slot, sleep on (a session of a
// thousand idle torrents wakes only those that wait). Nil holds no limit. Safe for
// concurrent use.
type ConnBudget struct {
	mu      sync.Mutex
	max     int // 0: no limit
	used    int
	peak    int
	waiting map[*PeerList]struct{} // found it spent since the last slot came back
}

// NewConnBudget returns a budget of n connections (0: no limit).
func NewConnBudget(n int) *ConnBudget {
	return &ConnBudget{max: max(n, 0), waiting: make(map[*PeerList]struct{})}
}

// SetMax changes the budget to n connections (0: no limit). Connections over a lowered
// budget stay; no new one is made until enough of them have closed.
func (b *ConnBudget) SetMax(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	grew := n <= 0 || n > b.max && b.max > 0
	b.max = max(n, 0)
	if grew {
		b.wakeLocked()
	}
}

// Max is the budget's size, 0 when there is no limit.
func (b *ConnBudget) Max() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max
}

// InUse is the number of connections holding a slot now.
func (b *ConnBudget) InUse() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak is the most connections that held a slot at once since the budget was made.
func (b *ConnBudget) Peak() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Spent reports whether every slot is taken.
func (b *ConnBudget) Spent() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max > 0 && b.used >= b.max
}

// spentFor reports whether every slot is taken, and if so has pl woken when one comes
// back.
func (b *ConnBudget) spentFor(pl *PeerList) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && b.used >= b.max {
		b.waiting[pl] = struct{}{}
		return true
	}
	return false
}

// take takes a slot for pl, if one is free; if not, pl is woken when one comes back.
func (b *ConnBudget) take(pl *PeerList) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && b.used >= b.max {
		b.waiting[pl] = struct{}{}
		return false
	}
	b.used++
	b.peak = max(b.peak, b.used)
	return true
}

// give returns n slots; the lists waiting for one are woken.
func (b *ConnBudget) give(n int) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	spent := b.max > 0 && b.used >= b.max
	b.used = max(b.used-n, 0) // never below: a slot given twice must not make room for two
	if spent {
		b.wakeLocked()
	}
}

// wakeLocked signals the lists waiting for a slot, and forgets them: one that finds the
// budget spent again waits again. Called with b.mu held; a signal never blocks.
func (b *ConnBudget) wakeLocked() {
	for pl := range b.waiting {
		pl.signal()
	}
	clear(b.waiting)
}

func (b *ConnBudget) leave(pl *PeerList) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.waiting, pl)
	b.mu.Unlock()
}

// UseBudget has every connection the list registers also hold a slot of b, shared with
// other lists: a dial is not started, and a connection is refused (ErrSessionFull), while
// b is spent. Call it before the list's first connection.
func (pl *PeerList) UseBudget(b *ConnBudget) {
	pl.mu.Lock()
	pl.budget = b
	pl.mu.Unlock()
}

// LeaveBudget ends the list's use of its budget, once its run has ended: the slots of
// connections still registered, which should be none since each was closed, are given
// back, and their number returned, so that a leak of one torrent's cannot starve the
// others. Later closes give nothing back.
func (pl *PeerList) LeaveBudget() (reclaimed int) {
	pl.mu.Lock()
	b := pl.budget
	pl.budget = nil
	if b != nil {
		reclaimed = len(pl.live)
	}
	pl.mu.Unlock()
	b.leave(pl)
	b.give(reclaimed)
	return reclaimed
}

// slot takes a slot for a new connection, or says why there is none: the list's own
// limit, then its budget's. Called with pl.mu held.
func (pl *PeerList) slot() error {
	if pl.maxConns > 0 && len(pl.live) >= pl.maxConns {
		return errFull
	}
	if !pl.budget.take(pl) {
		return ErrSessionFull
	}
	return nil
}
