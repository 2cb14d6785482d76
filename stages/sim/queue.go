package sim

import (
	"container/heap"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// kind is what an event does.
type kind uint8

const (
	// Messages, delivered to the receiving half of a connection (BEP 3).
	msgBitfield kind = iota
	msgHave
	msgChoke
	msgUnchoke
	msgInterested
	msgNotInterested
	msgRequest
	msgCancel
	msgBlock
	// Timers.
	evSent  // a node finished putting a block on the wire (h is the half it went out on)
	evRound // a node's choke round
	evChurn // a leecher leaves and a new one joins
	evLeave // a node leaves (a seeder's time is up, a finished leecher's seed time is over)
)

// event is one thing that happens at a point of virtual time.
type event struct {
	at   time.Duration
	seq  uint64 // order of scheduling: ties in at keep it, so the run is deterministic
	kind kind
	h    *half
	n    *node
	req  stages.BlockReq   // cancel, block, have (Piece)
	reqs []stages.BlockReq // requests
	bf   wire.Bitfield
}

// queue is a min-heap of events by (at, seq), for container/heap. It holds the keys by
// value, so that comparisons stay in one slice instead of chasing a pointer each.
type queue []entry

type entry struct {
	at  time.Duration
	seq uint64
	e   *event
}

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }

// Push and Pop take and give an *event: a pointer in an interface costs no allocation.
func (q *queue) Push(x any) {
	e := x.(*event)
	*q = append(*q, entry{e.at, e.seq, e})
}

func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1].e
	old[len(old)-1] = entry{}
	*q = old[:len(old)-1]
	return e
}

// at schedules an event at virtual time t; its fields are filled in by the caller.
func (s *swarm) at(t time.Duration, k kind) *event {
	var e *event
	if n := len(s.free); n > 0 {
		e, s.free = s.free[n-1], s.free[:n-1]
	} else {
		e = new(event)
	}
	s.seq++
	*e = event{at: t, seq: s.seq, kind: k, reqs: e.reqs[:0]} // keeps the array of a recycled event
	heap.Push(&s.q, e)
	return e
}

// recycle returns a handled event to the free list.
func (s *swarm) recycle(e *event) {
	*e = event{reqs: e.reqs[:0]}
	s.free = append(s.free, e)
}
