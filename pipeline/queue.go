package pipeline

import (
	"context"
	"slices"
	"sync"

	"github.com/bitstorm/bitstorm/stages"
)

// The queue: SessionConfig.MaxActiveDownloads and MaxActiveSeeds bound how many of the
// session's torrents download, and how many seed, at once, as Transmission's
// download-queue-size and seed-queue-size do. A torrent added or resumed while the limit
// of its kind is reached is Queued instead of Running; when an active one finishes,
// pauses, fails or is removed, the queued torrents start in the order they were queued. A
// download that completes and goes on seeding moves from the downloads to the seeds: with
// every seed slot taken it stops and is Queued as a seed. A complete torrent that does not
// seed takes no slot. The queue knows every active torrent, limit or not, so that a limit
// set at run time counts the torrents already running.

// queueKind is what a torrent takes a slot of.
type queueKind uint8

const (
	queueDownload queueKind = iota
	queueSeed
	queueNone // complete and not seeding: no slot
)

// queue holds a session's slots. Lock order: a Torrent's mu, then the queue's; the queue
// never takes a Torrent's lock while holding its own, and starts torrents after letting
// it go.
type queue struct {
	mu      sync.Mutex
	closed  func() bool // the session is closing: nothing starts
	limits  [2]int      // by kind; 0: no limit
	active  map[*Torrent]queueKind
	waiting []queued          // oldest first
	now     map[*Torrent]bool // ResumeNow: admitted whatever the limits
	// starting are torrents given a slot whose start has not been tried yet; turns are
	// closed once a waiting or starting torrent's turn is over (Wait).
	starting map[*Torrent]bool
	turns    map[*Torrent]chan struct{}
}

type queued struct {
	t    *Torrent
	kind queueKind
}

func newQueue(downloads, seeds int, closed func() bool) *queue {
	return &queue{limits: [2]int{max(downloads, 0), max(seeds, 0)}, active: make(map[*Torrent]queueKind),
		now: make(map[*Torrent]bool), starting: make(map[*Torrent]bool), turns: make(map[*Torrent]chan struct{}), closed: closed}
}

// room reports whether a torrent of kind may start now. Called with q.mu held.
func (q *queue) room(kind queueKind) bool {
	if kind == queueNone {
		return true
	}
	if q.limits[kind] == 0 {
		return true
	}
	n := 0
	for _, k := range q.active {
		if k == kind {
			n++
		}
	}
	return n < q.limits[kind]
}

// queuedAt is t's index in waiting, or -1. Called with q.mu held.
func (q *queue) queuedAt(t *Torrent) int {
	return slices.IndexFunc(q.waiting, func(w queued) bool { return w.t == t })
}

// admit reports whether t, about to run as kind, may start now: it has a slot, or one is
// free and no torrent of its kind waits before it. Otherwise t waits in the queue (once).
// Called with t.mu held.
func (q *queue) admit(t *Torrent, kind queueKind) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if kind == queueNone {
		delete(q.active, t)
		return true
	}
	if _, ok := q.active[t]; ok || q.now[t] {
		q.active[t] = kind
		return true
	}
	if q.queuedAt(t) >= 0 {
		return false
	}
	ahead := slices.ContainsFunc(q.waiting, func(w queued) bool { return w.kind == kind })
	if !ahead && q.room(kind) {
		q.active[t] = kind
		return true
	}
	q.waiting = append(q.waiting, queued{t, kind})
	return false
}

// leave takes t out of the queue and gives back its slot (Pause, Remove), and starts the
// next torrents. Called without t.mu.
func (q *queue) leave(t *Torrent) {
	q.mu.Lock()
	delete(q.active, t)
	if i := q.queuedAt(t); i >= 0 {
		q.waiting = slices.Delete(q.waiting, i, i+1)
	}
	if !q.starting[t] {
		q.turnOver(t)
	}
	next := q.next()
	q.mu.Unlock()
	q.start(next)
}

// done gives back t's slot, and starts the next torrents. Called without t.mu.
func (q *queue) done(t *Torrent) {
	q.mu.Lock()
	delete(q.active, t)
	next := q.next()
	q.mu.Unlock()
	q.start(next)
}

// ended is the end of t's run, which left it in state st: a seed that found no seed slot
// (Queued) waits for one; any other gives back its slot. Called without t.mu.
func (q *queue) ended(t *Torrent, st State) {
	q.mu.Lock()
	delete(q.active, t)
	if st == Queued && q.queuedAt(t) < 0 {
		q.waiting = append(q.waiting, queued{t, queueSeed})
	}
	next := q.next()
	q.mu.Unlock()
	q.start(next)
}

// completed is t's download completing (its run's Completed event): a seed moves to the
// seed slots, or, with none free, stops and waits for one; a torrent that does not seed
// gives its slot back at once (its run is ending).
func (q *queue) completed(t *Torrent) {
	t.mu.Lock()
	seeds := t.p != nil && t.p.seeding()
	t.mu.Unlock()
	q.mu.Lock()
	if k, ok := q.active[t]; !ok || k != queueDownload {
		q.mu.Unlock()
		return
	}
	requeue := false
	switch {
	case !seeds:
		delete(q.active, t)
	case q.room(queueSeed) && !slices.ContainsFunc(q.waiting, func(w queued) bool { return w.kind == queueSeed }):
		q.active[t] = queueSeed
	default:
		delete(q.active, t)
		requeue = true
	}
	next := q.next()
	q.mu.Unlock()
	if requeue {
		t.mu.Lock()
		cancel := t.cancel
		if t.state != Running {
			cancel = nil // paused or removed meanwhile
		} else {
			t.state = Queued // the run's end puts it in the queue (ended)
		}
		t.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	}
	q.start(next)
}

// next takes the queued torrents that may start now out of waiting, in order, and gives
// them their slots. Called with q.mu held.
func (q *queue) next() []*Torrent {
	if q.closed() {
		return nil
	}
	var out []*Torrent
	q.waiting = slices.DeleteFunc(q.waiting, func(w queued) bool {
		if !q.room(w.kind) {
			return false
		}
		q.active[w.t] = w.kind
		q.starting[w.t] = true
		out = append(out, w.t)
		return true
	})
	return out
}

// start runs torrents the queue gave a slot (next marked them starting); their turns are
// then over.
func (q *queue) start(ts []*Torrent) {
	for _, t := range ts {
		q.startOne(t)
	}
}

// startOne runs t, which the queue gave a slot, and ends its turn.
func (q *queue) startOne(t *Torrent) error {
	err := t.resume(true)
	q.mu.Lock()
	delete(q.starting, t)
	if q.queuedAt(t) < 0 {
		q.turnOver(t)
	}
	q.mu.Unlock()
	return err
}

// turn is closed once t's turn in the queue is over: it started, or left the queue. It
// is closed already when t neither waits nor is being started. Called without q.mu.
func (q *queue) turn(t *Torrent) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queuedAt(t) < 0 && !q.starting[t] {
		c := make(chan struct{})
		close(c)
		return c
	}
	c := q.turns[t]
	if c == nil {
		c = make(chan struct{})
		q.turns[t] = c
	}
	return c
}

// turnOver closes t's turn. Called with q.mu held.
func (q *queue) turnOver(t *Torrent) {
	if c := q.turns[t]; c != nil {
		close(c)
		delete(q.turns, t)
	}
}

// setLimits changes the limits and starts what they let start; active torrents over a
// lowered limit go on.
func (q *queue) setLimits(downloads, seeds int) {
	q.mu.Lock()
	q.limits = [2]int{max(downloads, 0), max(seeds, 0)}
	next := q.next()
	q.mu.Unlock()
	q.start(next)
}

// position is t's place in the queue from 0, and whether it waits as a seed; -1 when it
// does not wait.
func (q *queue) position(t *Torrent) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.queuedAt(t)
	if i < 0 {
		return -1, false
	}
	return i, q.waiting[i].kind == queueSeed
}

// queueKind is what t's run p takes a slot of: a seed when t is complete (its last run, or
// its resume record, says so) and p seeds; none when complete and p does not seed.
func (t *Torrent) queueKind(p *Pipeline) queueKind {
	st := t.Stats()
	switch {
	case st.NumPieces == 0 || st.Left() > 0:
		return queueDownload
	case p.seeding():
		return queueSeed
	}
	return queueNone
}

// withQueueEvents has t's run tell the queue when its download completes, before whoever
// else hears its events (SessionConfig.Events, WithEvents).
func withQueueEvents(t *Torrent) Option {
	return func(p *Pipeline) {
		next := p.events
		p.events = func(e stages.Event) {
			if _, ok := e.(stages.Completed); ok {
				t.s.queue.completed(t)
			}
			if next != nil {
				next(e)
			}
		}
	}
}

// ResumeNow starts the torrent at once, whatever the limits of active torrents, as
// Transmission's torrent-start-now does: a queued torrent leaves the queue. It takes a slot
// all the same, so that fewer queued torrents start until it gives it back.
func (t *Torrent) ResumeNow() error {
	q := t.s.queue
	q.mu.Lock()
	if i := q.queuedAt(t); i >= 0 {
		q.active[t] = q.waiting[i].kind
		q.waiting = slices.Delete(q.waiting, i, i+1)
		q.starting[t] = true
		q.mu.Unlock()
		return q.startOne(t)
	}
	q.now[t] = true
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.now, t)
		q.mu.Unlock()
	}()
	return t.Resume()
}

// Wait waits until the torrent has stopped running, and returns its state then:
// Finished, Failed, Paused (by Pause or the session's Close) or Removed; a Queued torrent
// is waited for through its turn and its run. It returns early, with the state at that
// moment, when ctx ends.
func (t *Torrent) Wait(ctx context.Context) State {
	for {
		select {
		case <-t.Done():
		case <-ctx.Done():
			return t.State()
		}
		switch st := t.State(); st {
		case Running, Checking: // a run, or a check, began since: wait for it
		case Queued:
			select {
			case <-t.s.queue.turn(t):
			case <-ctx.Done():
				return Queued
			}
		default:
			return st
		}
	}
}

// SetQueueLimits changes how many torrents may download, and seed, at once (0: no limit).
// Torrents waiting start as far as the new limits allow; active ones over a lowered limit
// go on.
func (s *Session) SetQueueLimits(downloads, seeds int) { s.queue.setLimits(downloads, seeds) }

// QueueLimits are the limits on torrents downloading and seeding at once; 0 is none.
func (s *Session) QueueLimits() (downloads, seeds int) {
	s.queue.mu.Lock()
	defer s.queue.mu.Unlock()
	return s.queue.limits[queueDownload], s.queue.limits[queueSeed]
}

// QueuePosition is the torrent's place in its session's queue, from 0 (the next to start),
// or -1 when it is not Queued.
func (t *Torrent) QueuePosition() int {
	i, _ := t.s.queue.position(t)
	return i
}

// SetQueuePosition moves the torrent to pos in its session's queue (0: the next to
// start; past the end: the last), as Transmission's queue-move requests do; it reports
// false, and moves nothing, when the torrent is not queued.
func (t *Torrent) SetQueuePosition(pos int) bool {
	q := t.s.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.queuedAt(t)
	if i < 0 {
		return false
	}
	w := q.waiting[i]
	q.waiting = slices.Delete(q.waiting, i, i+1)
	q.waiting = slices.Insert(q.waiting, min(max(pos, 0), len(q.waiting)), w)
	return true
}

// QueuedToSeed reports whether the torrent is Queued as a seed, complete and waiting for a
// seed slot, rather than to download.
func (t *Torrent) QueuedToSeed() bool {
	i, seed := t.s.queue.position(t)
	return seed || i < 0 && t.State() == Queued // a seed whose run is still ending joins the queue then
}
