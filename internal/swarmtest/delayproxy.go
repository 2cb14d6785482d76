package swarmtest

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DelayProxy gives a peer on loopback the round trip of a long path (this kernel has no
// netem): it accepts TCP connections on 127.0.0.1, connects each to a target, and holds
// every chunk it forwards for half the round trip, in each direction. Each direction reads
// as fast as its sender writes, stamps each chunk with the time it is due, and a writer
// delivers the chunks in order when they are due. The bandwidth is loopback's; only the
// latency is added. A direction holds at most MaxBuffered bytes not yet due, then stops
// reading, and TCP holds the sender back.
type DelayProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration // one way
	quit   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	// Conns counts the connections accepted.
	Conns atomic.Int64
}

// MaxBuffered bounds the bytes a DelayProxy holds in each direction of a connection:
// 200 ms of a fast loopback transfer, with room to spare.
const MaxBuffered = 128 << 20

// StartDelayProxy listens on 127.0.0.1 at a free port and forwards each connection to
// target (host:port) with rtt added to its round trip.
func StartDelayProxy(target string, rtt time.Duration) (*DelayProxy, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("swarmtest: delay proxy: %w", err)
	}
	p := &DelayProxy{ln: ln, target: target, delay: rtt / 2, quit: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where the proxy listens.
func (p *DelayProxy) Addr() netip.AddrPort { return p.ln.Addr().(*net.TCPAddr).AddrPort() }

// Close stops the proxy: it closes the listener and every connection, and waits for its
// goroutines.
func (p *DelayProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *DelayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.Conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// track registers c to be closed by Close; it reports false when the proxy is closing.
func (p *DelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.quit:
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DelayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *DelayProxy) serve(client net.Conn) {
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		delayCopy(server, client, p.delay, MaxBuffered, p.quit)
	}()
	go func() {
		defer wg.Done()
		delayCopy(client, server, p.delay, MaxBuffered, p.quit)
	}()
	wg.Wait()
}

// chunk is what one read returned, and when it is due at the other side; eof marks the end
// of the stream.
type chunk struct {
	data []byte
	due  time.Time
	eof  bool
}

// delayCopy copies src to dst, each chunk delay after it was read, holding at most
// maxBuf bytes not yet written. When src ends, dst is closed for writing once everything
// before the end is delivered; when dst fails, both are closed. It returns when both
// halves are done or quit is closed.
func delayCopy(dst, src net.Conn, delay time.Duration, maxBuf int64, quit <-chan struct{}) {
	q := make(chan chunk, 1<<16)
	var held atomic.Int64
	drained := make(chan struct{}, 1) // the writer wrote: the reader may go on
	done := make(chan struct{})       // the writer has returned
	go func() {
		defer close(done)
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		for {
			var c chunk
			select {
			case c = <-q:
			case <-quit:
				return
			}
			if d := time.Until(c.due); d > 0 {
				t.Reset(d)
				select {
				case <-t.C:
				case <-quit:
					return
				}
			}
			if c.eof {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				} else {
					dst.Close()
				}
				return
			}
			_, err := dst.Write(c.data)
			held.Add(-int64(len(c.data)))
			select {
			case drained <- struct{}{}:
			default:
			}
			if err != nil {
				src.Close()
				dst.Close()
				return
			}
		}
	}()
	buf := make([]byte, 256<<10)
	for {
		n, err := src.Read(buf)
		now := time.Now()
		if n > 0 {
			held.Add(int64(n))
			select {
			case q <- chunk{data: append([]byte(nil), buf[:n]...), due: now.Add(delay)}:
			case <-done:
				return
			}
		}
		if err != nil {
			select {
			case q <- chunk{due: now.Add(delay), eof: true}:
			case <-done:
			}
			<-done
			return
		}
		for held.Load() > maxBuf {
			select {
			case <-drained:
			case <-done:
				return
			}
		}
	}
}
