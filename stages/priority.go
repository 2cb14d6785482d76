package stages

import (
	"fmt"
	"slices"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// Piece priorities: which pieces the download wants, and which first. A selective download
// skips the pieces of unselected files; a streaming reader raises the pieces it will read
// soon (high) and the one it waits for (now). Completion means every wanted piece is
// verified: skipped pieces are neither requested nor waited for, and a tracker is told
// the wanted bytes left. Everything here runs under the Scheduler's lock.

// Priority is how much a piece is wanted. The zero value is PriorityNormal; the values
// are ordered, so that max of two is the more wanted.
type Priority int8

const (
	// PrioritySkip is a piece not wanted: never requested, and the download completes
	// without it. A piece in progress when skipped keeps the blocks it has (and takes
	// those already requested) but is asked for no more.
	PrioritySkip Priority = -2
	// PriorityLow is a piece wanted last: a peer starts one only when it has no normal or
	// higher piece to start (lowest index first). It counts for completion as any wanted
	// piece; a piece in progress goes on whatever its priority.
	PriorityLow Priority = -1
	// PriorityNormal is the default: pieces are started in the picker's order.
	PriorityNormal Priority = 0
	// PriorityHigh pieces are started before any normal piece, whatever its rarity,
	// lowest index first: a streaming reader's readahead.
	PriorityHigh Priority = 1
	// PriorityNow is a piece a reader waits for: started before anything else, even past
	// the cap on pieces in progress, and any peer that has it takes its blocks, whoever
	// the piece is assigned to.
	PriorityNow Priority = 2
)

func (p Priority) String() string {
	switch p {
	case PrioritySkip:
		return "skip"
	case PriorityLow:
		return "low"
	case PriorityNormal:
		return "normal"
	case PriorityHigh:
		return "high"
	case PriorityNow:
		return "now"
	}
	return fmt.Sprintf("Priority(%d)", int8(p))
}

// Requeuer is a Picker that can take back a piece that its Pick's want rejected once (and
// so may have been forgotten, see Picker): a skipped piece that is wanted again. With a
// picker that is not one, the Scheduler picks such pieces itself, after the picker's.
type Requeuer interface {
	Requeue(piece int)
}

// priorities is the Scheduler's piece priority state.
type priorities struct {
	level   []Priority    // per piece; nil while every piece is normal
	skip    wire.Bitfield // the skipped pieces; nil while there is none
	wanted  int           // pieces not skipped
	wantedB int64         // their bytes
	done    int           // wanted pieces verified
	doneB   int64         // their bytes
	closed  bool          // the Scheduler's current complete channel is closed

	// The high, now and low pieces that may still need starting (now: or blocks), sorted
	// by index when sorted; pieces that no longer qualify are dropped as scans pass them.
	// Every low piece neither done nor started is in low: the picker is never offered
	// one (its want rejects them, and a picker forgets what its want rejected).
	now, high, low []int32
	sorted         bool
	// Pieces in progress when skipped: out of the Scheduler's live list (never requested,
	// not counted against the cap) but still active, so that blocks already requested
	// are taken and a piece wanted again goes on where it stopped.
	frozen   map[int]*activePiece
	requeued []int32 // skipped pieces wanted again, for a picker that is no Requeuer
}

func (pr *priorities) init(numPieces int, length int64) {
	pr.wanted, pr.wantedB = numPieces, length
}

func (pr *priorities) get(piece int) Priority {
	if pr.level == nil {
		return PriorityNormal
	}
	return pr.level[piece]
}

// Priority returns the priority of piece.
func (s *Scheduler) Priority(piece int) Priority {
	s.mu.Lock()
	defer s.mu.Unlock()
	if piece < 0 || piece >= s.info.NumPieces() {
		return PriorityNormal
	}
	return s.prio.get(piece)
}

// SetPriority sets the priority of piece (an index out of range is ignored). It may be
// called at any time: a skipped piece wanted again is fetched, a wanted piece skipped is
// requested no more, and Complete follows the wanted set (a new channel when pieces are
// wanted again after it was closed).
func (s *Scheduler) SetPriority(piece int, p Priority) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if piece < 0 || piece >= s.info.NumPieces() {
		return
	}
	s.setPriority(piece, p)
	s.priorityChanged()
}

// SetPriorities sets the priority of every piece to f(piece), at once.
func (s *Scheduler) SetPriorities(f func(piece int) Priority) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.info.NumPieces() {
		s.setPriority(i, f(i))
	}
	s.priorityChanged()
}

func (s *Scheduler) setPriority(i int, p Priority) {
	p = min(max(p, PrioritySkip), PriorityNow)
	pr := &s.prio
	old := pr.get(i)
	if old == p {
		return
	}
	if pr.level == nil {
		pr.level = make([]Priority, s.info.NumPieces())
	}
	pr.level[i] = p
	size, done := s.info.PieceSize(i), s.done.Has(i)
	switch {
	case p == PrioritySkip:
		if pr.skip == nil {
			pr.skip = wire.NewBitfield(s.info.NumPieces())
		}
		pr.skip.Set(i)
		pr.wanted--
		pr.wantedB -= size
		if done {
			pr.done--
			pr.doneB -= size
		} else if a := s.active[i]; a != nil {
			s.freeze(a)
		}
	case old == PrioritySkip:
		pr.skip.Clear(i)
		pr.wanted++
		pr.wantedB += size
		switch {
		case done:
			pr.done++
			pr.doneB += size
		case pr.frozen[i] != nil:
			s.thaw(pr.frozen[i])
		case !s.started.Has(i):
			s.requeue(i)
		}
	case old == PriorityLow && !done && !s.started.Has(i):
		s.requeue(i) // the picker may have dropped it while low
	}
	if !done {
		switch p {
		case PriorityNow:
			pr.now, pr.sorted = append(pr.now, int32(i)), false
		case PriorityHigh:
			pr.high, pr.sorted = append(pr.high, int32(i)), false
		case PriorityLow:
			pr.low, pr.sorted = append(pr.low, int32(i)), false
		}
	}
}

// priorityChanged closes the complete channel when the wanted pieces are all done now, or
// opens a new one when some are no longer, and wakes the starved peers: there may be
// work for them.
func (s *Scheduler) priorityChanged() {
	pr := &s.prio
	if pr.closed && pr.done < pr.wanted {
		ch := make(chan struct{})
		s.complete.Store(&ch)
		pr.closed = false
	}
	s.checkComplete()
	s.wakeStarved()
}

// checkComplete closes the complete channel once every wanted piece is done.
func (s *Scheduler) checkComplete() {
	if pr := &s.prio; !pr.closed && pr.done == pr.wanted {
		close(*s.complete.Load())
		pr.closed = true
	}
}

// countDone counts a piece that is now verified; finish calls it.
func (s *Scheduler) countDone(piece int) {
	pr := &s.prio
	delete(pr.frozen, piece)
	if !pr.skip.Has(piece) {
		pr.done++
		pr.doneB += s.info.PieceSize(piece)
	}
	s.checkComplete()
}

// wantPiece is the picker's want: a piece not skipped, not done, not in progress.
func (s *Scheduler) wantPiece(i int) bool {
	return !s.done.Has(i) && !s.started.Has(i) && !s.prio.skip.Has(i)
}

// wantNormal is the picker's want while some piece is low: a wanted piece that is not low.
func (s *Scheduler) wantNormal(i int) bool {
	return s.wantPiece(i) && s.prio.get(i) != PriorityLow
}

// wantLow accepts a low piece to start.
func (s *Scheduler) wantLow(i int) bool {
	return s.prio.get(i) == PriorityLow && s.wantPiece(i)
}

// unstarted is the number of wanted pieces neither done nor in progress: every live piece
// is wanted and not done (a skipped one is frozen, out of live).
func (s *Scheduler) unstarted() int { return s.prio.wanted - s.prio.done - len(s.live) }

// lacksWanted reports whether has holds a wanted piece that is not done.
func (s *Scheduler) lacksWanted(has wire.Bitfield) bool {
	skip := s.prio.skip
	if skip == nil {
		return has.HasOutside(s.done)
	}
	for k, c := range has {
		if k < len(s.done) && c&^(s.done[k]|skip[k]) != 0 {
			return true
		}
	}
	return false
}

// freeze takes a skipped piece in progress out of live: it is requested no more, does not
// count against the cap, and keeps what it has for when it is wanted again.
func (s *Scheduler) freeze(a *activePiece) {
	s.unlive(a)
	a.owner = nil
	if s.prio.frozen == nil {
		s.prio.frozen = make(map[int]*activePiece)
	}
	s.prio.frozen[a.index] = a
}

// thaw puts a frozen piece, wanted again, back in live.
func (s *Scheduler) thaw(a *activePiece) {
	delete(s.prio.frozen, a.index)
	s.live = append(s.live, a)
}

func (s *Scheduler) unlive(a *activePiece) {
	if i := slices.Index(s.live, a); i >= 0 {
		s.live = slices.Delete(s.live, i, i+1)
	}
}

// requeue gives a piece wanted again back to the picker, or keeps it to pick itself.
func (s *Scheduler) requeue(i int) {
	if r, ok := s.picker.(Requeuer); ok {
		r.Requeue(i)
		return
	}
	s.prio.requeued = append(s.prio.requeued, int32(i))
}

// pick chooses a new piece for a peer holding has: a high piece first, lowest index
// first; then the picker's choice; then a requeued piece the picker cannot take back;
// then a low piece, lowest index first.
func (s *Scheduler) pick(has wire.Bitfield) (int, bool) {
	if len(s.prio.high) > 0 {
		s.sortLists()
		if i, ok := scanList(&s.prio.high, has, func(i int) bool {
			return s.prio.get(i) == PriorityHigh && s.wantPiece(i)
		}); ok {
			return i, true
		}
	}
	want := s.want
	if len(s.prio.low) > 0 {
		want = s.wantNormalF
	}
	if i, ok := s.picker.Pick(has, want); ok {
		return i, true
	}
	if len(s.prio.requeued) > 0 {
		if i, ok := scanList(&s.prio.requeued, has, want); ok {
			return i, true
		}
	}
	if len(s.prio.low) > 0 {
		s.sortLists()
		return scanList(&s.prio.low, has, s.wantLowF)
	}
	return 0, false
}

// takeNow appends to dst up to n blocks of the now pieces p has: of those in progress,
// whoever they are assigned to, and of new ones, started whatever the cap.
func (s *Scheduler) takeNow(p *Peer, has wire.Bitfield, n int, pending func(BlockReq) bool, dst []BlockReq) []BlockReq {
	pr := &s.prio
	if len(pr.now) == 0 {
		return dst
	}
	s.sortLists()
	start, w := len(dst), 0
	for _, i := range pr.now {
		if pr.get(int(i)) != PriorityNow || s.done.Has(int(i)) {
			continue // dropped
		}
		pr.now[w] = i
		w++
		if len(dst)-start >= n || !has.Has(int(i)) {
			continue
		}
		a := s.active[int(i)]
		if a == nil {
			a = s.startNow(int(i))
		}
		if !excluded(a, p) && a.unrequested > 0 {
			dst = s.take(a, p, n-(len(dst)-start), pending, dst)
		}
	}
	pr.now = pr.now[:w]
	return dst
}

// sortLists sorts the now and high lists by index, without duplicates.
func (s *Scheduler) sortLists() {
	if s.prio.sorted {
		return
	}
	slices.Sort(s.prio.now)
	s.prio.now = slices.Compact(s.prio.now)
	slices.Sort(s.prio.high)
	s.prio.high = slices.Compact(s.prio.high)
	slices.Sort(s.prio.low)
	s.prio.low = slices.Compact(s.prio.low)
	s.prio.sorted = true
}

// scanList returns the first piece of *l that has holds and ok accepts, dropping from *l
// the pieces ok rejects on the way (they are gone for good, or added again).
func scanList(l *[]int32, has wire.Bitfield, ok func(int) bool) (int, bool) {
	list := *l
	w := 0
	for k, i := range list {
		if !ok(int(i)) {
			continue
		}
		list[w] = i
		w++
		if has.Has(int(i)) {
			w += copy(list[w:], list[k+1:])
			*l = list[:w]
			return int(i), true
		}
	}
	*l = list[:w]
	return 0, false
}
