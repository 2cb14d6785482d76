package stages

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
)

// TestDialInputClosedFirst: when every peer source has closed Dial's input before the
// run's context ends (sources that saw the end first), the stage still ends once the
// context does. It drained its closed input, set to nil, forever, and a Session's Pause
// waited on that run for good.
func TestDialInputClosedFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sw := NewSwarm([20]byte{1}, [20]byte{2}, 0, slog.New(slog.DiscardHandler), nil)
		d := Dial(ctx, sw, DialConfig{})
		close(d.In())
		synctest.Wait() // the stage has seen its input close, and waits
		cancel()
		synctest.Wait()
		select {
		case _, ok := <-d.Out():
			if ok {
				t.Fatal("Dial emitted a connection with no peer given")
			}
		default:
			t.Fatal("Dial's outlet still open after its context ended")
		}
	})
}
