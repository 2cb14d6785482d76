package stages

import (
	"bufio"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestLimitRates: a limited connection moves 1 MiB at 100 KiB/s in ten seconds of
// virtual time, give or take the burst, reading and writing alike; a byte waits for every
// limiter of its direction, so the slower decides.
func TestLimitRates(t *testing.T) {
	const size, bps = 1 << 20, 100 << 10
	for _, dir := range []string{"down", "up"} {
		t.Run(dir, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fast, _ := NewLimiter(10 * bps)
				slow, _ := NewLimiter(bps)
				a, b := net.Pipe()
				defer a.Close()
				defer b.Close()
				c := &Conn{Conn: a, R: bufio.NewReader(a)}
				lims := []*rate.Limiter{fast, slow}
				if dir == "down" {
					Limits{Down: lims}.wrap(c)
				} else {
					Limits{Up: lims}.wrap(c)
				}
				start := time.Now()
				done := make(chan error, 1)
				if dir == "down" {
					go func() { _, err := b.Write(make([]byte, size)); done <- err }()
					if _, err := io.ReadFull(c.R, make([]byte, size)); err != nil {
						t.Fatal(err)
					}
				} else {
					go func() { _, err := c.Write(make([]byte, size)); done <- err }()
					if _, err := io.ReadFull(b, make([]byte, size)); err != nil {
						t.Fatal(err)
					}
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				want := time.Duration(float64(size-limitBurst) / bps * float64(time.Second))
				if took < want || took > want+time.Second {
					t.Errorf("1 MiB at 100 KiB/s took %v, want %v to %v", took, want, want+time.Second)
				}
			})
		})
	}
}

// TestNewLimiter: no rate is no limiter; a negative one is an error.
func TestNewLimiter(t *testing.T) {
	if l, err := NewLimiter(0); l != nil || err != nil {
		t.Errorf("NewLimiter(0) = %v, %v; want nil, nil", l, err)
	}
	if _, err := NewLimiter(-1); err == nil {
		t.Error("NewLimiter(-1) = nil error")
	}
	if l, err := NewLimiter(1000); l == nil || err != nil || l.Limit() != 1000 {
		t.Errorf("NewLimiter(1000) = %v, %v", l, err)
	}
}
