package stages

import (
	"sync"
	"sync/atomic"
)

// uploadGoal is a count of uploaded bytes at which a function runs, once: a seed ratio
// ends the seeding as soon as the block that reaches it is sent, not at the next tick
// of a clock. Checking it costs the writer one atomic load per batch.
type uploadGoal struct {
	bytes   atomic.Int64 // the goal; 0: none
	mu      sync.Mutex   // guards reached, and the goal's changes
	reached func()
}

// check runs the goal's function, once, if uploaded has reached the goal.
func (g *uploadGoal) check(uploaded int64) {
	if b := g.bytes.Load(); b == 0 || uploaded < b {
		return
	}
	g.mu.Lock()
	f := g.reached
	if b := g.bytes.Load(); b == 0 || uploaded < b {
		f = nil // changed meanwhile
	} else {
		g.bytes.Store(0)
		g.reached = nil
	}
	g.mu.Unlock()
	if f != nil {
		f()
	}
}

// SetUploadGoal has reached run once the bytes uploaded (Stats.Uploaded) reach goal:
// from the Uploaded call that brings them there, or from this call when they are there
// already. A goal of 0 or less, or a nil reached, clears it; a new goal replaces the
// last. reached must not block: it runs on a peer's writer goroutine.
func (s *Scheduler) SetUploadGoal(goal int64, reached func()) {
	g := &s.goal
	g.mu.Lock()
	if goal <= 0 || reached == nil {
		goal, reached = 0, nil
	}
	g.reached = reached
	g.bytes.Store(goal)
	g.mu.Unlock()
	g.check(s.uploaded.Load())
}
