package stagetest

import (
	"testing"
	"time"

	"github.com/reugn/go-streams"
)

// Run drives one stage from a slice: it sends every element of in to flow, closes its
// inlet, and returns what the flow emitted, failing the test if the flow does not finish
// within 10 seconds or emits an element of another type than R.
func Run[T, R any](tb testing.TB, flow streams.Flow, in []T) []R {
	tb.Helper()
	go func() {
		for _, e := range in {
			flow.In() <- e
		}
		close(flow.In())
	}()
	var out []R
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-flow.Out():
			if !ok {
				return out
			}
			r, ok := e.(R)
			if !ok {
				tb.Fatalf("stage emitted %T, want %T", e, *new(R))
			}
			out = append(out, r)
		case <-timeout:
			tb.Fatalf("stage did not close its outlet within 10s (%d elements out)", len(out))
			return out
		}
	}
}
