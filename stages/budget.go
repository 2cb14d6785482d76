package stages

import (
	"sync"
	"sync/atomic"
)

// InFlightBudget is the bytes of pieces in progress that the Schedulers sharing it hold
// together: the memory bound of the blocks received for pieces not yet verified. A
// Session's torrents share one (issue 12: twenty torrents with a cap each would hold
// twenty times it); a Pipeline of its own has its own.
//
// A Scheduler takes a piece's length (Info.PieceLength, the short last piece too) when it
// starts the piece, and gives it back when the piece is verified and written, or when its
// run ends (EndRun). A piece that failed its hash keeps its share, as it is fetched again;
// so does a skipped piece in progress, whose blocks stay in assembly.
//
// Fairness: a Scheduler with fewer than MinActive pieces in progress starts one even when
// the others have spent the budget, so that no torrent starves while others hold it all;
// past that, pieces go to whichever Scheduler asks first, and a Scheduler that found the
// budget spent has its waiting peers woken when bytes come back. A piece a reader waits
// for (PriorityNow) is started whatever the budget, as whatever the cap. Used may so go
// past Limit, by MinActive pieces per torrent and the PriorityNow pieces at most.
//
// Taking and giving are per piece, never per block: an atomic compare-and-swap, and a
// mutex only when the budget is spent.
type InFlightBudget struct {
	limit int64
	used  atomic.Int64
	peak  atomic.Int64
	nwait atomic.Int32 // len(waiters), read without mu by give's callers

	mu      sync.Mutex
	waiters map[*Scheduler]struct{} // Schedulers refused since the last give
}

// MinActive is how many pieces a Scheduler may always have in progress, whatever its
// InFlightBudget: two, so that its peers fetch one piece while the other is hashed and
// written.
const MinActive = 2

// NewInFlightBudget returns a budget of limit bytes.
func NewInFlightBudget(limit int64) *InFlightBudget { return &InFlightBudget{limit: limit} }

// Limit is the budget's bytes.
func (b *InFlightBudget) Limit() int64 { return b.limit }

// Used is the bytes of the pieces in progress now.
func (b *InFlightBudget) Used() int64 { return b.used.Load() }

// Peak is the most bytes in use at once since the budget was made.
func (b *InFlightBudget) Peak() int64 { return b.peak.Load() }

// take takes n bytes if they fit in the limit.
func (b *InFlightBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			b.notePeak(u + n)
			return true
		}
	}
}

// force takes n bytes, past the limit if need be.
func (b *InFlightBudget) force(n int64) { b.notePeak(b.used.Add(n)) }

func (b *InFlightBudget) notePeak(u int64) {
	for {
		p := b.peak.Load()
		if u <= p || b.peak.CompareAndSwap(p, u) {
			return
		}
	}
}

// takeOrWait takes n bytes, or registers s to be woken (notify) when some come back. It
// runs under s's lock.
func (b *InFlightBudget) takeOrWait(s *Scheduler, n int64) bool {
	if b.take(n) {
		return true
	}
	if s.waiting {
		return false // registered already: the next give wakes it
	}
	b.mu.Lock()
	if b.waiters == nil {
		b.waiters = make(map[*Scheduler]struct{})
	}
	b.waiters[s] = struct{}{}
	b.nwait.Store(int32(len(b.waiters)))
	b.mu.Unlock()
	s.waiting = true
	// Bytes given back before s was registered woke no one: try again. Bytes given after
	// find s registered (both sides are sequentially consistent atomics).
	return b.take(n)
}

// give returns n bytes. The caller then calls notify, outside its Scheduler's lock.
func (b *InFlightBudget) give(n int64) { b.used.Add(-n) }

// notify wakes the peers of the Schedulers that found the budget spent. It must not run
// under a Scheduler's lock: it takes theirs.
func (b *InFlightBudget) notify() {
	if b == nil || b.nwait.Load() == 0 {
		return
	}
	b.mu.Lock()
	ws := b.waiters
	b.waiters = nil
	b.nwait.Store(0)
	b.mu.Unlock()
	for s := range ws {
		s.mu.Lock()
		s.waiting = false
		s.wakeStarved()
		s.mu.Unlock()
	}
}

// forget drops s from the waiters: its run ended.
func (b *InFlightBudget) forget(s *Scheduler) {
	b.mu.Lock()
	delete(b.waiters, s)
	b.nwait.Store(int32(len(b.waiters)))
	b.mu.Unlock()
}

// SetBudget has s take the bytes of the pieces it starts from b (nil: no budget, only the
// cap on pieces in progress). Call it before a run's first Next.
func (s *Scheduler) SetBudget(b *InFlightBudget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.budget = b
}

// reserve takes a new piece's bytes from the budget: always while fewer than MinActive
// pieces are live, else if they fit. Under s.mu.
func (s *Scheduler) reserve() bool {
	switch {
	case s.budget == nil:
		return true
	case len(s.live) < MinActive:
		s.budget.force(s.info.PieceLength)
		return true
	}
	return s.budget.takeOrWait(s, s.info.PieceLength)
}

// startNow starts a piece a reader waits for (PriorityNow), whatever the budget.
func (s *Scheduler) startNow(i int) *activePiece {
	if s.budget != nil {
		s.budget.force(s.info.PieceLength)
	}
	return s.charged(s.start(i))
}

// unreserve gives back what reserve took for a piece that was not started. Under s.mu;
// unlock then wakes the waiters.
func (s *Scheduler) unreserve() {
	if s.budget != nil {
		s.budget.give(s.info.PieceLength)
		s.gave = true
	}
}

// charged marks a piece just started as holding its reserved bytes.
func (s *Scheduler) charged(a *activePiece) *activePiece {
	if s.budget != nil {
		a.charge = s.info.PieceLength
	}
	return a
}

// uncharge gives back the bytes a held. Under s.mu; unlock then wakes the waiters.
func (s *Scheduler) uncharge(a *activePiece) {
	if a.charge != 0 {
		s.budget.give(a.charge)
		a.charge = 0
		s.gave = true
	}
}

// unlock releases s.mu, then wakes the budget's waiters if s gave bytes back meanwhile
// (after the unlock: notify takes other Schedulers' locks, which may wait for ours).
func (s *Scheduler) unlock() {
	gave := s.gave
	s.gave = false
	b := s.budget
	s.mu.Unlock()
	if gave {
		b.notify()
	}
}

// EndRun forgets the pieces in progress, whose blocks went with the run's graph, and
// gives their bytes back to the budget; the wanted ones are picked afresh by a later run.
// The pipeline calls it once a run's stages have all returned.
func (s *Scheduler) EndRun() {
	s.mu.Lock()
	for i, a := range s.active {
		s.uncharge(a)
		s.started.Clear(i)
		if pr := &s.prio; !pr.skip.Has(i) {
			s.requeue(i)
			switch pr.get(i) { // the lists drop pieces as they start
			case PriorityLow:
				pr.low, pr.sorted = append(pr.low, int32(i)), false
			case PriorityHigh:
				pr.high, pr.sorted = append(pr.high, int32(i)), false
			}
		}
	}
	clear(s.active)
	s.live = s.live[:0]
	s.prio.frozen = nil
	clear(s.starved)
	s.waiting = false
	b := s.budget
	s.unlock()
	if b != nil {
		b.forget(s)
	}
}
