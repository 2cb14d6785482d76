package stages

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/webseed"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// WebSeedConfig tunes the web seeds (BEP 19). The zero value of each field means its default.
type WebSeedConfig struct {
	URLs         []string      // the torrent's url-list
	Blocks       *bufpool.Pool // block buffers, wire.BlockSize each: the pool the Write sink returns them to
	Client       *http.Client  // default: the stage's own, with its idle connections closed at the end
	Requests     int           // HTTP requests in flight per web seed (default 2)
	RequestBytes int           // bytes asked of the Scheduler per request, a piece at least (default 1 MiB)
	Timeout      time.Duration // a request that brings no byte for this long fails (default 30s)
	Backoff      time.Duration // pause after a failed request, doubled for each one in a row (default 5s)
	MaxBackoff   time.Duration // the longest pause (default 2m)
	MaxFailures  int           // requests failed in a row that drop the web seed (default 5)
	Tick         time.Duration // how often an idle web seed asks for work unprompted (default 1s)
	Down         []*Rate       // the download limits each block waits for once read, as a peer's (Limit); nil: none
}

func (c *WebSeedConfig) defaults() {
	c.Requests = cmp0(c.Requests, 2)
	c.RequestBytes = cmp0(c.RequestBytes, 1<<20)
	c.Timeout = cmp0(c.Timeout, 30*time.Second)
	c.Backoff = cmp0(c.Backoff, 5*time.Second)
	c.MaxBackoff = max(cmp0(c.MaxBackoff, 2*time.Minute), c.Backoff)
	c.MaxFailures = cmp0(c.MaxFailures, 5)
	c.Tick = cmp0(c.Tick, time.Second)
	if c.Blocks == nil {
		c.Blocks = bufpool.New(wire.BlockSize, 64)
	}
}

// WebSeedStats is what one web seed did.
type WebSeedStats struct {
	URL      string
	Addr     netip.AddrPort // its synthetic address, by which blame and the logs name it
	Bytes    int64          // bytes of the blocks it delivered that the Scheduler wanted
	Requests int64          // HTTP requests made
	Failures int64          // requests that failed (status, short body, timeout, network)
	Dropped  error          // why it was given up; nil while it runs or when the run ended first
}

// ErrWebSeedBanned is why a web seed is dropped once its pieces failed their hash often
// enough for the Scheduler to ban it.
var ErrWebSeedBanned = fmt.Errorf("web seed %w", errBanned)

// WebSeedSource emits the blocks of the web seeds; see WebSeeds.
type WebSeedSource struct {
	out   chan any
	seeds []*webSeed
}

var _ streams.Source = (*WebSeedSource)(nil)

// WebSeeds downloads from the torrent's web seeds (BEP 19) beside the peers: each URL is a
// session that the Scheduler sees as a peer holding every piece, under a synthetic address
// in the discard prefix 100::/64 (RFC 6666). It asks for blocks as a peer does, fetches
// each run of contiguous blocks with HTTP Range requests over the files they span (BEP 47
// padding is filled with zeros, never asked for), and splits the bodies into pooled blocks.
// Out: *Block, as the Request stage's, in arrival order; merged before Assemble, they are
// verified and written like any other, and a piece that fails its hash blames the web seed,
// which the Scheduler's strikes ban. A failed request (an HTTP error, a short body, no byte
// for Timeout) backs the web seed off, MaxFailures in a row drop it; at most Requests are in
// flight per web seed. The outlet closes once every web seed has ended: dropped, the
// download complete, or ctx done.
func WebSeeds(ctx context.Context, env *Env, cfg WebSeedConfig) *WebSeedSource {
	cfg.defaults()
	var own *http.Transport
	if cfg.Client == nil {
		own = &http.Transport{Proxy: http.ProxyFromEnvironment}
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			own = t.Clone()
		}
		own.MaxIdleConnsPerHost = cfg.Requests
		cfg.Client = &http.Client{Transport: own}
	}
	s := &WebSeedSource{out: make(chan any, 64)}
	for i, u := range cfg.URLs {
		a := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0: 0x01, 14: byte((i + 1) >> 8), 15: byte(i + 1)}), 0)
		s.seeds = append(s.seeds, &webSeed{env: env, cfg: &cfg, url: u, p: NewPeer(a), out: s.out,
			client: &webseed.Client{HTTP: cfg.Client, Timeout: cfg.Timeout},
			log:    env.Log.With("stage", "webseed", "peer", a, "url", u), pending: make(reqSet)})
	}
	go func() {
		defer close(s.out)
		var wg sync.WaitGroup
		for _, w := range s.seeds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(ctx)
			}()
		}
		wg.Wait()
		if own != nil {
			own.CloseIdleConnections()
		}
	}()
	return s
}

// Out is the source's outlet.
func (s *WebSeedSource) Out() <-chan any { return s.out }

// Via streams the source's output into f and returns f.
func (s *WebSeedSource) Via(f streams.Flow) streams.Flow {
	go transmit(s, f)
	return f
}

// Stats returns a snapshot of what each web seed did, in the order of the URLs.
func (s *WebSeedSource) Stats() []WebSeedStats {
	var st []WebSeedStats
	for _, w := range s.seeds {
		w.mu.Lock()
		dropped := w.dropped
		w.mu.Unlock()
		st = append(st, WebSeedStats{URL: w.url, Addr: w.p.Addr, Bytes: w.bytes.Load(),
			Requests: w.client.Requests.Load(), Failures: w.failures.Load(), Dropped: dropped})
	}
	return st
}

type webSeed struct {
	env    *Env
	cfg    *WebSeedConfig
	url    string
	p      *Peer
	client *webseed.Client
	out    chan<- any
	log    *slog.Logger

	bytes, failures atomic.Int64

	mu      sync.Mutex
	pending reqSet // blocks asked of the Scheduler and not yet delivered
	dropped error
}

// run is the web seed's session: it keeps up to Requests fetches going until it is dropped,
// the download completes, or ctx ends.
func (w *webSeed) run(ctx context.Context) {
	if u, err := url.Parse(w.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		w.drop(errors.New("not an HTTP URL"))
		return
	}
	n := w.env.Info.NumPieces()
	all := wire.NewBitfield(n)
	for i := range n {
		all.Set(i)
	}
	// A seed that never leaves makes no piece rarer than another: as libtorrent counts
	// web seeds, it adds nothing to the picker's availability (PeerHas).
	w.env.Sched.PeerJoined(w.p)
	w.log.Info("web seed started")
	ctx, cancel := context.WithCancel(ctx)
	nblocks := int((max(int64(w.cfg.RequestBytes), w.env.Info.PieceLength) + wire.BlockSize - 1) / wire.BlockSize)
	results := make(chan error, w.cfg.Requests)
	tick := time.NewTicker(w.cfg.Tick)
	backoff := time.NewTimer(time.Hour)
	backoff.Stop()
	var until time.Time
	var cancels []BlockReq
	inflight, inRow := 0, 0
	var fail error
loop:
	for !w.p.Banned() {
		cancels = w.p.takeCancels(cancels[:0]) // endgame: such blocks arrive unwanted and are dropped
		if inflight < w.cfg.Requests && !time.Now().Before(until) {
			if reqs := w.env.Sched.Next(w.p, all, nblocks, w.isPending, nil); len(reqs) > 0 {
				w.mu.Lock()
				for _, r := range reqs {
					w.pending.add(r)
				}
				w.mu.Unlock()
				inflight++
				go func() { results <- w.fetch(ctx, reqs) }()
				continue
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case <-w.env.Sched.Complete():
			break loop
		case err := <-results:
			inflight--
			switch {
			case err == nil:
				inRow = 0
			case errors.Is(err, errBanned), ctx.Err() != nil:
			default:
				inRow++
				w.failures.Add(1)
				w.env.Emit(WebSeedFailed{URL: w.url, Err: err})
				if inRow >= w.cfg.MaxFailures {
					fail = fmt.Errorf("%d requests failed in a row, the last: %w", inRow, err)
					break loop
				}
				d := min(w.cfg.Backoff<<min(inRow-1, 16), w.cfg.MaxBackoff)
				until = time.Now().Add(d)
				backoff.Reset(d)
				w.log.Info("web seed request failed, backing off", "err", err, "wait", d)
			}
		case <-w.p.Kicked():
		case <-tick.C:
		case <-backoff.C:
		}
	}
	if fail == nil && w.p.Banned() {
		fail = ErrWebSeedBanned
	}
	cancel()
	for ; inflight > 0; inflight-- {
		<-results
	}
	tick.Stop()
	backoff.Stop()
	w.env.Sched.PeerLeft(w.p, wire.NewBitfield(n), nil) // each fetch gave back what it did not deliver
	if fail != nil {
		w.drop(fail)
		return
	}
	w.log.Info("web seed done", "bytes", w.bytes.Load())
}

func (w *webSeed) drop(err error) {
	w.mu.Lock()
	w.dropped = err
	w.mu.Unlock()
	w.log.Warn("dropping web seed", "reason", err)
	w.env.Emit(WebSeedDropped{URL: w.url, Addr: w.p.Addr, Reason: err})
}

func (w *webSeed) isPending(r BlockReq) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending.has(r)
}

// fetch gets the blocks of reqs, a stream of Range requests per run of contiguous ones,
// and gives those it did not deliver back to the Scheduler. A panic becomes an error.
func (w *webSeed) fetch(ctx context.Context, reqs []BlockReq) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
		var left []BlockReq
		w.mu.Lock()
		for _, r := range reqs {
			if w.pending.remove(r) {
				left = append(left, r)
			}
		}
		w.mu.Unlock()
		if len(left) > 0 {
			w.env.Sched.Release(w.p, left)
		}
	}()
	info := w.env.Info
	at := func(r BlockReq) int64 { return info.PieceOffset(r.Piece) + int64(r.Begin) }
	slices.SortFunc(reqs, func(a, b BlockReq) int { return cmp.Compare(at(a), at(b)) })
	for rest := reqs; len(rest) > 0; {
		k, n := 1, int64(rest[0].Length)
		for k < len(rest) && at(rest[k]) == at(rest[k-1])+int64(rest[k-1].Length) {
			n += int64(rest[k].Length)
			k++
		}
		body := w.client.Open(ctx, w.url, info, at(rest[0]), n)
		for _, r := range rest[:k] {
			buf := w.cfg.Blocks.Get()[:r.Length]
			if _, err = io.ReadFull(body, buf); err == nil {
				waitAll(ctx.Done(), w.cfg.Down, r.Length) // TCP holds the server back meanwhile
				err = w.deliver(ctx, r, buf)
			} else {
				w.cfg.Blocks.Put(buf)
			}
			if err != nil {
				break
			}
		}
		body.Close()
		if err != nil {
			return err
		}
		rest = rest[k:]
	}
	return nil
}

// deliver hands a block on, as a peer session does: once, if the Scheduler still wants it.
func (w *webSeed) deliver(ctx context.Context, r BlockReq, buf []byte) error {
	w.mu.Lock()
	ours := w.pending.remove(r)
	w.mu.Unlock()
	if !ours || !w.env.Sched.Received(w.p, r) {
		w.cfg.Blocks.Put(buf)
		return nil
	}
	select {
	case w.out <- newBlock(r.Piece, r.Begin, buf, w.p):
		w.bytes.Add(int64(r.Length))
	case <-ctx.Done():
		w.cfg.Blocks.Put(buf)
		w.env.Sched.Lost(r)
		return ctx.Err()
	}
	if w.p.Banned() {
		return errBanned
	}
	return nil
}
