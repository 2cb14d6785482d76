package stages

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"
	"golang.org/x/time/rate"
)

// limitBurst is the most bytes a limited read or write moves at once, and the burst of
// a limiter: an upper bound on how far a transfer runs ahead of its rate (64 KiB, under
// 1 % of ten seconds at 1 MiB/s).
const limitBurst = 64 << 10

// NewLimiter returns a limiter of bytesPerSec, for Limits; 0 means no limit (nil). A
// negative rate is an error.
func NewLimiter(bytesPerSec int64) (*rate.Limiter, error) {
	switch {
	case bytesPerSec < 0:
		return nil, fmt.Errorf("rate %d: must not be negative", bytesPerSec)
	case bytesPerSec == 0:
		return nil, nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), limitBurst), nil
}

// Limits are the rate limiters a torrent's connections pass: its own and, in a Session,
// the session's, for what peers send us (Down) and what we send them (Up). A byte waits
// for every limiter of its direction; nil ones are skipped.
type Limits struct {
	Down, Up []*rate.Limiter
}

func (l Limits) down() []*rate.Limiter { return nonNil(l.Down) }
func (l Limits) up() []*rate.Limiter   { return nonNil(l.Up) }

func nonNil(ls []*rate.Limiter) []*rate.Limiter {
	var out []*rate.Limiter
	for _, l := range ls {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

// Limit holds each connection's reads and writes to the limiters: reads wait after the
// bytes arrive (TCP's flow control then holds the peer back), writes before they leave.
// In: *Conn. Out: *Conn, in order; it only wraps them (a limited upload loses writev).
func Limit(l Limits) streams.Flow {
	return flow.NewMap(func(c *Conn) *Conn { l.wrap(c); return c }, 1)
}

// wrap holds c to the limits.
func (l Limits) wrap(c *Conn) {
	if down := l.down(); len(down) > 0 {
		c.R = bufio.NewReaderSize(&limitedReader{r: c.R, lims: down}, 64<<10)
	}
	if up := l.up(); len(up) > 0 {
		c.Conn = &limitedConn{Conn: c.Conn, lims: up}
	}
}

// wait takes n bytes from every limiter; n is at most limitBurst.
func wait(lims []*rate.Limiter, n int) {
	for _, l := range lims {
		l.WaitN(context.Background(), n) // n <= burst: it only waits, never fails
	}
}

type limitedReader struct {
	r    io.Reader
	lims []*rate.Limiter
}

func (r *limitedReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b[:min(len(b), limitBurst)])
	if n > 0 {
		wait(r.lims, n)
	}
	return n, err
}

type limitedConn struct {
	net.Conn
	lims []*rate.Limiter
}

func (c *limitedConn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		k := min(len(b), limitBurst)
		wait(c.lims, k)
		n, err := c.Conn.Write(b[:k])
		written += n
		if err != nil {
			return written, err
		}
		b = b[k:]
	}
	return written, nil
}
