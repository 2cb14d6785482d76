package stages

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"
	"golang.org/x/time/rate"
)

// limitBurst is the most bytes one wait takes, and a limited write sends at once, and
// the burst of a limiter: an upper bound on how far a transfer runs ahead of its rate (64
// KiB, under 1 % of ten seconds at 1 MiB/s).
const limitBurst = 64 << 10

// A Rate is a limit in bytes per second that may change while connections are held to
// it (Set): waits under way start again at the new rate. With no limit (0) a wait is one
// atomic load, so that an unlimited transfer costs nothing. A rate may have a parent
// (Under) that its bytes wait for too: a torrent's rates have their session's.
type Rate struct {
	off     atomic.Bool  // no limit: waits return at once
	bps     atomic.Int64 // the limit; 0: none
	lim     *rate.Limiter
	mu      sync.Mutex
	changed chan struct{} // closed by Set, then replaced
	parent  *Rate         // set by Under, before r is used
	honor   atomic.Bool   // r's bytes wait for parent
}

// NewRate returns a Rate of bytesPerSec; 0 means no limit. A negative rate is an error.
func NewRate(bytesPerSec int64) (*Rate, error) {
	r := &Rate{lim: rate.NewLimiter(limitBurst, limitBurst), changed: make(chan struct{})}
	if err := r.Set(bytesPerSec); err != nil {
		return nil, err
	}
	return r, nil
}

// Set changes the limit to bytesPerSec (0: none); connections held to r follow at once.
// A negative rate is an error, and the limit stays as it was.
func (r *Rate) Set(bytesPerSec int64) error {
	if bytesPerSec < 0 {
		return fmt.Errorf("rate %d bytes/s: must not be negative (0 is no limit)", bytesPerSec)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if bytesPerSec > 0 {
		r.lim.SetLimit(rate.Limit(bytesPerSec))
	}
	r.bps.Store(bytesPerSec)
	r.off.Store(bytesPerSec == 0)
	close(r.changed) // waits under way reserve again at the new rate, or stop waiting
	r.changed = make(chan struct{})
	return nil
}

// Get is the limit in bytes per second; 0: none.
func (r *Rate) Get() int64 { return r.bps.Load() }

// Under makes parent a rate that r's bytes wait for too, while r honors it (on at first;
// HonorParent), as a Transmission torrent's bandwidth honors its session's unless told
// not to (tr_bandwidthHonorParentLimits). It is called before r is used, and returns r.
func (r *Rate) Under(parent *Rate) *Rate {
	r.parent = parent
	r.honor.Store(parent != nil)
	return r
}

// HonorParent decides whether r's bytes wait for its parent, from the next wait on; one
// under way on the parent ends on its own (at most limitBurst bytes' worth).
func (r *Rate) HonorParent(on bool) { r.honor.Store(on && r.parent != nil) }

// HonorsParent reports whether r's bytes wait for a parent.
func (r *Rate) HonorsParent() bool { return r.honor.Load() }

// next is the rate r's bytes wait for after r: its parent while honored, else nil.
func (r *Rate) next() *Rate {
	if r.honor.Load() {
		return r.parent
	}
	return nil
}

// limited reports whether r holds bytes back.
func (r *Rate) limited() bool { return r != nil && !r.off.Load() }

// wait takes n bytes (n <= limitBurst) from r: it returns once they may pass, at once
// without a limit, or when done is closed. A Set meanwhile cancels the reservation (its
// tokens go back) and the bytes are reserved again at the new rate.
func (r *Rate) wait(done <-chan struct{}, n int) {
	for r.limited() {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		now := time.Now()
		res := r.lim.ReserveN(now, n) // n <= burst: always ok
		d := res.DelayFrom(now)
		if d <= 0 {
			return
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			return
		case <-changed:
			t.Stop()
			res.Cancel()
		case <-done:
			t.Stop()
			res.Cancel()
			return
		}
	}
}

// Limits are the rates a torrent's connections are held to, for what peers send us (Down)
// and what we send them (Up): its own, whose parents (in a Session, the session's) are
// waited for too. A byte waits for every rate of its direction; nil ones are skipped.
type Limits struct {
	Down, Up []*Rate
}

// anyLimited reports whether any of rs, or a parent they honor, holds bytes back now.
func anyLimited(rs []*Rate) bool {
	for _, r := range rs {
		for x := r; x != nil; x = x.next() {
			if x.limited() {
				return true
			}
		}
	}
	return false
}

// waitAll takes n bytes from every rate of rs and the parents they honor, in steps of at
// most limitBurst.
func waitAll(done <-chan struct{}, rs []*Rate, n int) {
	for n > 0 {
		k := min(n, limitBurst)
		for _, r := range rs {
			for x := r; x != nil; x = x.next() {
				x.wait(done, k)
			}
		}
		n -= k
	}
}

// Limit hands each connection its rates, which may change while it runs (Rate.Set): the
// Request stage's reader waits after each block it receives (download.go; TCP's flow
// control then holds the peer back), its writer before each batch it sends (upload.go).
// The connection is not wrapped: a TCP connection stays one, so uploads keep writev
// (net.Buffers), reads keep their one buffer, and without a limit a wait is an atomic
// load. The metadata phase's few reads and writes (BEP 9) do not wait. In: *Conn. Out:
// *Conn, in order.
func Limit(l Limits) streams.Flow {
	return flow.NewMap(func(c *Conn) *Conn { l.attach(c); return c }, 1)
}

// attach gives c the limits' rates.
func (l Limits) attach(c *Conn) {
	c.down, c.up = nonNil(l.Down), nonNil(l.Up)
}

func nonNil(rs []*Rate) []*Rate {
	var out []*Rate
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// holdDown waits until n bytes received from c may pass its download rates, or done.
func (c *Conn) holdDown(done <-chan struct{}, n int) { waitAll(done, c.down, n) }

// writeLimited writes bufs to c held to rates: in parts of at most limitBurst bytes, each
// one writev, after its bytes' wait. Without a limit it is one bufs.WriteTo. bufs is
// consumed, as WriteTo consumes it; scratch is reused for the parts.
func writeLimited(done <-chan struct{}, c net.Conn, rates []*Rate, bufs *net.Buffers, scratch *net.Buffers) error {
	if !anyLimited(rates) {
		_, err := bufs.WriteTo(c)
		return err
	}
	for len(*bufs) > 0 {
		part := (*scratch)[:0]
		n := 0
		for len(*bufs) > 0 && n < limitBurst {
			b := (*bufs)[0]
			if k := limitBurst - n; len(b) > k {
				b, (*bufs)[0] = b[:k], b[k:]
			} else {
				*bufs = (*bufs)[1:]
			}
			part = append(part, b)
			n += len(b)
		}
		*scratch = part
		waitAll(done, rates, n)
		if _, err := part.WriteTo(c); err != nil {
			return err
		}
	}
	return nil
}
