package swarmtest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// TestDelayCopyTiming: in virtual time, every chunk arrives exactly the one-way delay after
// it was sent, chunks in flight do not wait for one another, the end of the stream comes
// after the data, and a direction that holds its bound of bytes stops reading.
func TestDelayCopyTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 100 * time.Millisecond
		sender, src := net.Pipe()
		dst, receiver := net.Pipe()
		quit := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			delayCopy(dst, src, delay, 10, quit)
		}()
		t0 := time.Now()
		type arrival struct {
			data string
			at   time.Duration
		}
		got := make(chan arrival, 10)
		go func() {
			buf := make([]byte, 64)
			for {
				n, err := receiver.Read(buf)
				if n > 0 {
					got <- arrival{string(buf[:n]), time.Since(t0)}
				}
				if err != nil {
					got <- arrival{"EOF", time.Since(t0)}
					close(got)
					return
				}
			}
		}()
		// Three chunks 10 ms apart: the second pushes the bytes held past the bound of
		// 10, so the third is read only once the first is delivered.
		var third time.Duration
		for i, s := range []string{"aaaaaaaa", "bbbbbbbb", "cccccccc"} {
			if _, err := sender.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
			if i == 2 {
				third = time.Since(t0)
			}
			time.Sleep(10 * time.Millisecond)
		}
		sender.Close()
		want := []arrival{
			{"aaaaaaaa", 100 * time.Millisecond},
			{"bbbbbbbb", 110 * time.Millisecond},
			{"cccccccc", 200 * time.Millisecond}, // read at 100 ms, when the first went out
			{"EOF", 210 * time.Millisecond},      // closed at 110 ms, after the third write and 10 ms
		}
		for _, w := range want {
			a, ok := <-got
			if !ok || a != w {
				t.Fatalf("arrival %+v, want %+v", a, w)
			}
		}
		if third != 100*time.Millisecond {
			t.Errorf("third chunk read at %v, want 100ms: the bound of 10 bytes held it back", third)
		}
		<-done
		receiver.Close()
	})
}

// TestDelayProxy: through the proxy on loopback, an echo takes at least the round trip,
// and 8 MiB each way arrive intact.
func TestDelayProxy(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	const rtt = 60 * time.Millisecond
	p, err := StartDelayProxy(ln.Addr().String(), rtt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t0 := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	// Two legs through the proxy's delay: request and echo.
	if took := time.Since(t0); took < rtt {
		t.Errorf("echo took %v, less than the round trip %v", took, rtt)
	}

	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("echoed %d bytes, differing from the %d sent", len(back), len(data))
	}
	if n := p.Conns.Load(); n != 1 {
		t.Errorf("proxy accepted %d connections, want 1", n)
	}
}
