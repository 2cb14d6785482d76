package stages

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// limitedPair is a net.Pipe whose end c has l's rates, as the Limit stage gives them to
// a peer's connection; the other end is the peer. The caller closes both.
func limitedPair(l Limits) (c *Conn, peer net.Conn) {
	a, b := net.Pipe()
	c = &Conn{Conn: a, R: bufio.NewReader(a)}
	l.attach(c)
	return c, b
}

// limitedDownload reads size bytes from c as the Request stage's reader takes blocks: 16 KiB at
// a time, each held to c's download rates after it arrives.
func limitedDownload(c *Conn, size int, done <-chan struct{}) (int, error) {
	block := make([]byte, 16<<10)
	got := 0
	for got < size {
		n, err := io.ReadFull(c.R, block[:min(len(block), size-got)])
		if err != nil {
			return got, err
		}
		c.holdDown(done, n)
		got += n
	}
	return got, nil
}

// limitedUpload sends size bytes through c as the Request stage's writer does: block batches
// flushed through an uploadWriter, waiting for c's upload rates.
func limitedUpload(c *Conn, size int, done <-chan struct{}) error {
	var w uploadWriter
	block := make([]byte, 16<<10)
	for sent := 0; sent < size; {
		for i := 0; i < uploadBatch && sent < size; i++ {
			n := min(len(block), size-sent)
			w.hdrs = append(w.hdrs, make([]byte, 13)...)
			w.blocks = append(w.blocks, block[:n])
			sent += n
		}
		if _, err := w.flush(done, c); err != nil {
			return err
		}
	}
	return nil
}

// TestLimitRates: a limited connection moves 1 MiB at 100 KiB/s in ten seconds of
// virtual time, give or take the burst, downloading and uploading alike; a byte waits for
// every rate of its direction, so the slower decides. The download waits after each
// block (holdDown), the upload in the writer's flush.
func TestLimitRates(t *testing.T) {
	const size, bps = 1 << 20, 100 << 10
	for _, dir := range []string{"down", "up"} {
		t.Run(dir, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fast, _ := NewRate(10 * bps)
				slow, _ := NewRate(bps)
				rates := []*Rate{fast, nil, slow}
				l := Limits{Up: rates}
				if dir == "down" {
					l = Limits{Down: rates}
				}
				c, peer := limitedPair(l)
				defer c.Close()
				defer peer.Close()
				start := time.Now()
				done := make(chan error, 1)
				got := 0
				if dir == "down" {
					go func() { _, err := peer.Write(make([]byte, size)); done <- err }()
					n, err := limitedDownload(c, size, nil)
					if err != nil {
						t.Fatal(err)
					}
					got = n
				} else {
					go func() { done <- limitedUpload(c, size, nil) }()
					n, err := io.Copy(io.Discard, io.LimitReader(peer, size+size/(16<<10)*13))
					if err != nil {
						t.Fatal(err)
					}
					got = int(n)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				want := time.Duration(float64(got-limitBurst) / bps * float64(time.Second))
				if took < want || took > want+time.Second {
					t.Errorf("%d bytes at 100 KiB/s took %v, want %v to %v", got, took, want, want+time.Second)
				}
			})
		})
	}
}

// TestRateSet: a limit changed while a transfer runs holds from the change on, for a
// wait under way as for the next: 100 KiB/s, then 400 KiB/s, then none (the rest passes
// at once), counted over windows of virtual time.
func TestRateSet(t *testing.T) {
	const bps = 100 << 10
	synctest.Test(t, func(t *testing.T) {
		r, _ := NewRate(bps)
		c, peer := limitedPair(Limits{Down: []*Rate{r}})
		const size = 8 << 20
		go peer.Write(make([]byte, size))
		var got int64
		read, stop := make(chan int64), make(chan struct{})
		defer func() { close(stop); c.Close(); peer.Close() }()
		go func() {
			buf := make([]byte, 16<<10)
			for {
				n, err := c.R.Read(buf)
				c.holdDown(nil, n)
				select {
				case read <- int64(n):
				case <-stop:
					return
				}
				if err != nil {
					close(read)
					return
				}
			}
		}()
		// window counts the bytes read over d.
		window := func(d time.Duration) int64 {
			end := time.After(d)
			start := got
			for {
				select {
				case n, ok := <-read:
					if !ok {
						return got - start
					}
					got += n
				case <-end:
					return got - start
				}
			}
		}
		window(2 * time.Second) // the burst is spent
		if n := window(10 * time.Second); n < 10*bps-limitBurst || n > 10*bps+limitBurst {
			t.Errorf("at 100 KiB/s: %d bytes in 10 s, want %d ± %d", n, 10*bps, limitBurst)
		}
		r.Set(4 * bps)
		if n := window(10 * time.Second); n < 40*bps-limitBurst || n > 40*bps+limitBurst {
			t.Errorf("raised to 400 KiB/s: %d bytes in 10 s, want %d ± %d", n, 40*bps, limitBurst)
		}
		if r.Get() != 4*bps {
			t.Errorf("Get = %d, want %d", r.Get(), 4*bps)
		}
		r.Set(0)
		left := int64(size) - got
		if n := window(time.Millisecond); n != left {
			t.Errorf("limit removed: %d bytes in the next millisecond, want all %d left", n, left)
		}
	})
}

// TestRateSetWakesWaiter: a read that waits at a low rate is released by a higher one at
// once, not after the old wait; and by the end of the run (done), without a limit change.
func TestRateSetWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := NewRate(1000)   // a 64 KiB burst waits 65 s at 1 kB/s
		r.wait(nil, limitBurst) // the burst
		start := time.Now()
		go func() {
			time.Sleep(time.Second)
			r.Set(0)
		}()
		r.wait(nil, limitBurst)
		if took := time.Since(start); took != time.Second {
			t.Errorf("the wait ended after %v, want 1s (when the limit went)", took)
		}
		r.Set(1000) // the tokens are spent: the next 64 KiB wait about 64 s
		done := make(chan struct{})
		time.AfterFunc(2*time.Second, func() { close(done) })
		start = time.Now()
		r.wait(done, limitBurst)
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("the wait ended after %v, want 2s (when done closed)", took)
		}
	})
}

// TestRateParent: a rate's bytes wait for its parent too, while it honors it: a torrent
// without a limit of its own under a session's 100 KiB/s moves 1 MiB in about ten
// seconds, one of 50 KiB/s under it in twenty; not honoring the parent, the unlimited
// one moves it at once, and honoring it again holds it again.
func TestRateParent(t *testing.T) {
	const size, bps = 1 << 20, 100 << 10
	synctest.Test(t, func(t *testing.T) {
		session, _ := NewRate(bps)
		free, _ := NewRate(0)
		slow, _ := NewRate(bps / 2)
		free.Under(session)
		slow.Under(session)
		took := func(r *Rate) time.Duration {
			start := time.Now()
			for range size / (16 << 10) {
				waitAll(nil, []*Rate{r}, 16<<10)
			}
			return time.Since(start)
		}
		for _, tc := range []struct {
			name   string
			r      *Rate
			honor  bool
			lo, hi time.Duration
		}{
			{"unlimited under 100 KiB/s", free, true, 9 * time.Second, 11 * time.Second},
			{"50 KiB/s under 100 KiB/s", slow, true, 19 * time.Second, 21 * time.Second},
			{"unlimited, the parent not honored", free, false, 0, 0},
			{"unlimited, the parent honored again", free, true, 9 * time.Second, 11 * time.Second},
		} {
			tc.r.HonorParent(tc.honor)
			if tc.r.HonorsParent() != tc.honor {
				t.Errorf("%s: HonorsParent = %v", tc.name, !tc.honor)
			}
			time.Sleep(time.Minute) // the buckets fill to their burst
			if d := took(tc.r); d < tc.lo || d > tc.hi {
				t.Errorf("%s: 1 MiB took %v, want %v to %v", tc.name, d, tc.lo, tc.hi)
			}
		}
		orphan, _ := NewRate(0)
		if orphan.HonorParent(true); orphan.HonorsParent() {
			t.Error("a rate without a parent honors one")
		}
	})
}

// TestLimitKeepsTCPConn: the Limit stage gives a real TCP connection its rates without
// wrapping it: what the writer flushes through is still the *net.TCPConn, so
// net.Buffers.WriteTo takes its writev path, and the reader reads the buffer it had; a
// limited batch arrives whole and in order.
func TestLimitKeepsTCPConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	up, _ := NewRate(10 << 20)
	down, _ := NewRate(10 << 20)
	stage := Limit(Limits{Down: []*Rate{down, nil}, Up: []*Rate{nil, up}})
	r := bufio.NewReader(nc)
	stage.In() <- &Conn{Conn: nc, R: r}
	close(stage.In())
	c := (<-stage.Out()).(*Conn)
	if c.Conn != nc || c.R != r {
		t.Fatalf("the limited connection is a %T reading from another reader, want the *net.TCPConn itself and its reader", c.Conn)
	}
	if _, ok := c.Conn.(*net.TCPConn); !ok || len(c.up) != 1 || len(c.down) != 1 {
		t.Fatalf("conn %T with %d upload and %d download rates, want a *net.TCPConn with 1 and 1", c.Conn, len(c.up), len(c.down))
	}
	var w uploadWriter
	w.ctl = []byte("ctl")
	var want bytes.Buffer
	want.WriteString("ctl")
	for i := range 20 { // more than one limitBurst: written in parts
		b := bytes.Repeat([]byte{byte('a' + i)}, 16<<10)
		h := []byte(strings.Repeat(string(rune('A'+i)), 13))
		w.hdrs = append(w.hdrs, h...)
		w.blocks = append(w.blocks, b)
		want.Write(h)
		want.Write(b)
	}
	errc := make(chan error, 1)
	go func() {
		n, err := w.flush(nil, c)
		if err == nil && n != 20*16<<10 {
			err = io.ErrShortWrite
		}
		errc <- err
	}()
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Error("the limited flush sent other bytes than the batch, or out of order")
	}
}

// TestRateUnlimited: without a limit a wait returns at once, for the download as for
// the upload.
func TestRateUnlimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := NewRate(0)
		c := &Conn{}
		Limits{Down: []*Rate{r}, Up: []*Rate{r}}.attach(c)
		start := time.Now()
		for range 100 {
			c.holdDown(nil, 1<<20)
			waitAll(nil, c.up, 1<<20)
		}
		if time.Since(start) != 0 {
			t.Errorf("100 MiB each way without a limit took %v of virtual time", time.Since(start))
		}
	})
}

// TestNewRate: a negative rate is an error that says so, and Set keeps the old limit.
func TestNewRate(t *testing.T) {
	if _, err := NewRate(-1); err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("NewRate(-1) = %v, want an error saying it must not be negative", err)
	}
	r, err := NewRate(1000)
	if err != nil || r.Get() != 1000 || !r.limited() {
		t.Fatalf("NewRate(1000) = %v (%d), %v", r, r.Get(), err)
	}
	if err := r.Set(-5); err == nil || r.Get() != 1000 {
		t.Errorf("Set(-5) = %v, limit %d; want an error and 1000 kept", err, r.Get())
	}
	if r.Set(0); r.limited() || r.Get() != 0 {
		t.Error("Set(0) left a limit")
	}
}
