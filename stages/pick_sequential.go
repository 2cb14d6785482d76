package stages

import "github.com/bitstorm/bitstorm/internal/wire"

// Sequential is the simplest Picker: the lowest-numbered piece the peer has and we want.
// It ignores availability. Good for streaming and as a baseline for experiments.
type Sequential struct {
	n    int
	next int // no piece below next is wanted any more (see Picker)
}

var (
	_ Picker   = (*Sequential)(nil)
	_ Requeuer = (*Sequential)(nil)
)

// NewSequential returns a sequential picker over numPieces pieces.
func NewSequential(numPieces int) *Sequential { return &Sequential{n: numPieces} }

// Pick returns the lowest piece that has and want accept.
func (s *Sequential) Pick(has wire.Bitfield, want func(int) bool) (int, bool) {
	for s.next < s.n && !want(s.next) {
		s.next++
	}
	for i := s.next; i < s.n; i++ {
		if has.Has(i) && want(i) {
			return i, true
		}
	}
	return 0, false
}

// Requeue takes back a piece wanted again (a skipped one, see Requeuer).
func (s *Sequential) Requeue(piece int) {
	if piece >= 0 && piece < s.next {
		s.next = piece
	}
}

// PeerHas is a no-op: availability does not matter to a sequential picker.
func (s *Sequential) PeerHas(int) {}

// PeerGone is a no-op.
func (s *Sequential) PeerGone(wire.Bitfield) {}
