package pipeline

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestClock: the users of a clock wake on one tick, every period; it ticks while it has a
// user, and again once it has one more.
func TestClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(time.Second)
		stop1, stop2 := c.start(), c.start()
		start := time.Now()
		ch := c.C()
		<-ch
		if d := time.Since(start); d != time.Second {
			t.Errorf("first tick after %v, want 1s", d)
		}
		if c.C() == ch {
			t.Fatal("C() after a tick is the closed channel, want the next tick's")
		}
		stop1()
		stop1() // a second call does nothing: the other user keeps it ticking
		<-c.C()
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("second tick after %v, want 2s", d)
		}
		stop2()
		ch = c.C()
		time.Sleep(5 * time.Second)
		select {
		case <-ch:
			t.Fatal("the clock ticked with no user")
		default:
		}
		stop3 := c.start()
		start = time.Now()
		<-ch
		if d := time.Since(start); d != time.Second {
			t.Errorf("tick after a restart after %v, want 1s", d)
		}
		stop3()
	})
}
