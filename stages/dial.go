package stages

import (
	"bufio"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// DialConfig bounds the Dial stage.
type DialConfig struct {
	MaxPeers         int           // connected peers (default 50)
	MaxHalfOpen      int           // dials and handshakes in progress (default 64)
	DialTimeout      time.Duration // TCP connect (default 5s)
	HandshakeTimeout time.Duration // BitTorrent handshake once connected (default 10s)
	RetryDelay       time.Duration // first retry of a failed dial; doubles after (default 10s)
	Retries          int           // retries of a failed dial (default 2)
	MaxQueue         int           // addresses waiting for a slot; more are dropped (default 4096)
}

func (c *DialConfig) defaults() {
	c.MaxPeers = cmp0(c.MaxPeers, 50)
	c.MaxHalfOpen = cmp0(c.MaxHalfOpen, 64)
	c.DialTimeout = cmp0(c.DialTimeout, 5*time.Second)
	c.HandshakeTimeout = cmp0(c.HandshakeTimeout, 10*time.Second)
	c.RetryDelay = cmp0(c.RetryDelay, 10*time.Second)
	c.Retries = cmp0(c.Retries, 2)
	c.MaxQueue = cmp0(c.MaxQueue, 4096)
}

func cmp0[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Dial connects to peers and performs the BitTorrent handshake (BEP 3).
// In: *PeerAddr. Out: *Conn, handshake done, in the order handshakes finish.
// At most MaxHalfOpen dials and handshakes run at once and at most MaxPeers peers are
// connected; further addresses wait in a queue, which never makes the stage stop reading its
// input. Dials run in parallel with their own timeouts, so a crowd of dead or silent peers
// holds up the live ones for no longer than it takes to dial them. A connected slot frees when
// its Conn is closed. Failed dials are retried with backoff; banned and already-known
// addresses are skipped.
func Dial(ctx context.Context, env *Swarm, cfg DialConfig) streams.Flow {
	cfg.defaults()
	return newNode(0, func(in <-chan any, out chan<- any) {
		d := &dialer{ctx: ctx, env: env, cfg: cfg, out: out, log: env.Log.With("stage", "dial"),
			slots: make(chan struct{}, cfg.MaxPeers), dialing: make(chan struct{}, cfg.MaxHalfOpen),
			freed: make(chan struct{}, 1), results: make(chan dialResult, cfg.MaxHalfOpen), known: make(map[netip.AddrPort]int)}
		d.run(in)
	})
}

type dialResult struct {
	addr  netip.AddrPort
	err   error
	retry bool
}

type retryAt struct {
	addr netip.AddrPort
	at   time.Time
}

// retries is a min-heap of retries by time (container/heap): a tracker may hand out
// thousands of dead peers, and scanning them all at each failure made intake quadratic.
type retries []retryAt

func (h retries) Len() int           { return len(h) }
func (h retries) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h retries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retries) Push(x any)        { *h = append(*h, x.(retryAt)) }
func (h *retries) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

type dialer struct {
	ctx     context.Context
	env     *Swarm
	cfg     DialConfig
	out     chan<- any
	log     interface{ Debug(string, ...any) }
	slots   chan struct{} // connected peers
	dialing chan struct{} // dials and handshakes in progress
	freed   chan struct{}
	results chan dialResult
	known   map[netip.AddrPort]int // address -> failed attempts
	queue   []netip.AddrPort
	later   retries
	wg      sync.WaitGroup
}

func (d *dialer) run(in <-chan any) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for d.ctx.Err() == nil {
		d.dispatch()
		select {
		case e, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			d.enqueue(e.(*PeerAddr).Addr)
		case <-d.freed:
		case r := <-d.results:
			d.failed(r, timer)
		case <-timer.C:
			d.due(timer)
		case <-d.ctx.Done():
		}
	}
	for range in {
	}
	d.wg.Wait()
}

func (d *dialer) enqueue(a netip.AddrPort) {
	if _, seen := d.known[a]; seen || !a.IsValid() || a.Port() == 0 || d.env.Bans.Banned(a) {
		return
	}
	if len(d.queue) >= d.cfg.MaxQueue {
		d.log.Debug("dial queue full, dropping address", "peer", a)
		return
	}
	d.known[a] = 0
	d.queue = append(d.queue, a)
}

// dispatch starts dials while there is room for them and for the peers they may bring.
func (d *dialer) dispatch() {
	for len(d.queue) > 0 && len(d.slots) < cap(d.slots) {
		select {
		case d.dialing <- struct{}{}:
		default:
			return
		}
		a := d.queue[0]
		d.queue = d.queue[1:]
		d.wg.Add(1)
		go d.attempt(a)
	}
}

func (d *dialer) release() { d.free(d.slots) }

func (d *dialer) free(sem chan struct{}) {
	<-sem
	select {
	case d.freed <- struct{}{}:
	default:
	}
}

func (d *dialer) failed(r dialResult, timer *time.Timer) {
	d.known[r.addr]++
	n := d.known[r.addr]
	d.log.Debug("dial failed", "peer", r.addr, "attempt", n, "err", r.err)
	if !r.retry || n > d.cfg.Retries {
		return
	}
	at := time.Now().Add(d.cfg.RetryDelay << (n - 1))
	heap.Push(&d.later, retryAt{r.addr, at})
	d.resetTimer(timer)
}

// due moves the retries whose time has come to the queue, within its bound.
func (d *dialer) due(timer *time.Timer) {
	now := time.Now()
	for len(d.later) > 0 && !d.later[0].at.After(now) {
		r := heap.Pop(&d.later).(retryAt)
		switch {
		case d.env.Bans.Banned(r.addr):
		case len(d.queue) >= d.cfg.MaxQueue:
			d.log.Debug("dial queue full, dropping retry", "peer", r.addr)
		default:
			d.queue = append(d.queue, r.addr)
		}
	}
	d.resetTimer(timer)
}

func (d *dialer) resetTimer(timer *time.Timer) {
	next := time.Hour
	if len(d.later) > 0 {
		next = time.Until(d.later[0].at)
	}
	timer.Reset(max(next, 0))
}

// attempt dials a and hands the connection downstream; its connected slot stays taken until
// the Conn is closed. A peer that handshakes while every slot is taken is closed and retried.
func (d *dialer) attempt(a netip.AddrPort) {
	defer d.wg.Done()
	c, err := d.connect(a)
	d.free(d.dialing)
	if err == nil {
		select {
		case d.slots <- struct{}{}:
		default:
			c.Close()
			err = fmt.Errorf("%w: %d peers connected", errFull, cap(d.slots))
		}
	}
	if err != nil {
		var ne net.Error
		// A peer that hangs up during the handshake is retried too, later: real clients do
		// that for a while (rtorrent keeps one connection per IP address and refuses a new
		// one until it has noticed the old one closed; others at their connection limit).
		retry := !errors.Is(err, errNoRetry) && (errors.As(err, &ne) || errors.Is(err, errDialRefused) ||
			errors.Is(err, errFull) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET))
		select {
		case d.results <- dialResult{addr: a, err: err, retry: retry}:
		case <-d.ctx.Done():
		}
		return
	}
	c.release = d.release
	select {
	case d.out <- c:
	case <-d.ctx.Done():
		c.Close()
	}
}

var (
	errNoRetry     = errors.New("not retried")
	errDialRefused = errors.New("connection refused")
	errFull        = errors.New("no free connection slot")
)

func (d *dialer) connect(a netip.AddrPort) (*Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.DialTimeout)
	defer cancel()
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", a.String())
	if err != nil {
		if errors.Is(err, errConnRefused) {
			return nil, fmt.Errorf("%w: %v", errDialRefused, err)
		}
		return nil, err
	}
	c, err := Handshake(d.ctx, d.env, nc, a, d.cfg.HandshakeTimeout, true)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// Handshake exchanges BitTorrent handshakes on nc (BEP 3) within timeout: it sends ours
// first when we dialed, and checks that the peer serves our info hash and is not ourselves.
func Handshake(ctx context.Context, env *Swarm, nc net.Conn, a netip.AddrPort, timeout time.Duration, dialed bool) (*Conn, error) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	nc.SetDeadline(time.Now().Add(timeout))
	ours := wire.Handshake{InfoHash: env.InfoHash, PeerID: env.PeerID}
	ours.Reserved[5] |= wire.ExtensionBit // BEP 10: we send and read the extended handshake
	if dialed {
		if _, err := nc.Write(ours.Append(nil)); err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	theirs, err := wire.ReadHandshake(r)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if err := theirs.CheckInfoHash(env.InfoHash); err != nil {
		return nil, fmt.Errorf("handshake: %w: %w", errNoRetry, err)
	}
	if theirs.PeerID == env.PeerID {
		return nil, fmt.Errorf("handshake: %w: connected to ourselves", errNoRetry)
	}
	if env.Bans.Banned(a) {
		return nil, fmt.Errorf("handshake: %w: %w", errNoRetry, errBanned)
	}
	if !dialed {
		if _, err := nc.Write(ours.Append(nil)); err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return &Conn{Conn: nc, Addr: a, PeerID: theirs.PeerID, Reserved: theirs.Reserved, R: r}, nil
}
