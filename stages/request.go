package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// RequestConfig tunes the per-peer sessions of the Request stage.
type RequestConfig struct {
	Queue          int           // most block requests outstanding per peer (default: the Scheduler's pieces in progress, the memory bound; a peer's BEP 10 reqq lowers it, and a peer without one gets at most 500, libtorrent's max_out_request_queue)
	InitialQueue   int           // requests outstanding at first, grown in slow start (download.go) (default 4)
	QueueTime      time.Duration // outstanding requests cover at most this much of the peer's rate (default 3s, libtorrent's request_queue_time)
	SnubTimeout    time.Duration // requests outstanding and no block for this long: the peer is snubbed, its requests go to others (default 60s)
	SilentTimeout  time.Duration // requests outstanding and no block for this long: drop the peer (default 2m)
	IdleTimeout    time.Duration // nothing received for this long: drop the peer (default 3m)
	KeepAlive      time.Duration // send a keep-alive after this long without sending (default 90s)
	Tick           time.Duration // how often timeouts are checked (default 1s)
	Blocks         *bufpool.Pool // block buffers, wire.BlockSize each
	Cache          *PieceCache   // where uploaded blocks are read from; nil: requests are ignored
	Choker         Choker        // who may download from us (default RateChoker with 4 slots)
	ChokeRound     time.Duration // how often the choker re-decides (default 10s)
	MaxUploadQueue int           // requests a peer may have queued at us; past that it is not read from until some are served (default 512)
	Pex            *PEX          // peer exchange (BEP 11); nil: none (private torrents)
	View           *PeerView     // shows the peer sessions while the stage runs (peerinfo.go); nil: nowhere
}

func (c *RequestConfig) defaults() {
	c.QueueTime = cmp0(c.QueueTime, 3*time.Second)
	c.InitialQueue = cmp0(c.InitialQueue, 4)
	if c.Queue > 0 {
		c.InitialQueue = min(c.InitialQueue, c.Queue)
	}
	c.SnubTimeout = cmp0(c.SnubTimeout, 60*time.Second)
	c.SilentTimeout = max(cmp0(c.SilentTimeout, 2*time.Minute), c.SnubTimeout)
	c.IdleTimeout = cmp0(c.IdleTimeout, 3*time.Minute)
	c.KeepAlive = cmp0(c.KeepAlive, 90*time.Second)
	c.Tick = cmp0(c.Tick, time.Second)
	if c.Blocks == nil {
		c.Blocks = bufpool.New(wire.BlockSize, 256)
	}
	if c.Choker == nil {
		c.Choker = &RateChoker{Slots: 4}
	}
	c.ChokeRound = cmp0(c.ChokeRound, 10*time.Second)
	c.MaxUploadQueue = cmp0(c.MaxUploadQueue, 512)
}

// Request runs one session per connected peer: it tells the peer we are interested, keeps
// up to Queue block requests outstanding while unchoked (pipelined, not stop-and-wait), and
// emits the blocks that arrive. In: *Conn. Out: *Block, from all peers, in arrival order.
// The same session uploads: it sends our bitfield and have messages, and serves the requests
// of a peer the Choker unchokes from the PieceCache (upload.go).
// Each session has a reader and a writer goroutine and ends when the peer breaks the protocol
// (logged as the reason it was dropped), disconnects, goes silent, is banned, or ctx ends;
// its outstanding requests then go back to the Scheduler for the other peers.
func Request(ctx context.Context, env *Env, cfg RequestConfig) streams.Flow {
	cfg.defaults()
	return newNode(256, func(in <-chan any, out chan<- any) {
		reg := newRegistry(env, cfg.Choker, cfg.ChokeRound)
		defer cfg.View.show(reg)()
		env.Sched.OnPieceDone(func(int) { reg.pokeHave() })
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			reg.run(ctx)
		}()
		if cfg.Pex != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reg.runPex(ctx, cfg.Pex)
			}()
		}
		for e := range in {
			c := e.(*Conn)
			if ctx.Err() != nil {
				c.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := newSession(env, cfg, c, out, reg)
				reg.add(s)
				s.run(ctx)
				reg.remove(s)
			}()
		}
		wg.Wait()
	})
}

var (
	errUnsolicited = errors.New("sent a block we did not request")
	errBanned      = errors.New("banned for corrupt data")
	errSilent      = errors.New("silent with requests outstanding")
	errIdle        = errors.New("idle too long")
	errBothSeeds   = errors.New("both sides are seeds")
)

type session struct {
	env *Env
	cfg RequestConfig
	c   *Conn
	p   *Peer
	dec *wire.Decoder
	out chan<- any
	log *slog.Logger
	reg *registry

	mu         sync.Mutex
	choked     bool // the peer chokes us
	interested bool // we told the peer we are interested
	has        wire.Bitfield
	pending    reqSet
	released   reqSet // requests dropped on choke whose blocks may still arrive
	lastBlock  time.Time
	lastRecv   time.Time
	dropErr    error                   // why the writer closed the connection
	window     int                     // requests allowed outstanding now, as flow sizes it
	snubbed    bool                    // no block for SnubTimeout while requests were outstanding
	limit      int                     // where the window stops growing: Queue, the peer's reqq (windowCap)
	flow       windowCtl               // sizes the window from the peer's rate and round trip (download.go)
	fast       fastState               // BEP 6 (fast.go)
	reqq       int                     // the most requests the peer queues (BEP 10 reqq); 0 when it did not say
	peerExt    map[string]uint8        // the peer's extended ids, by extension name (BEP 10 "m")
	peerPort   uint16                  // where the peer listens, from its extended handshake ("p")
	pexSent    map[netip.AddrPort]bool // the peers it was told of (ut_pex, pex.go)
	extOut     []byte                  // extension messages for the writer to send (extensions.go)
	reqs       []BlockReq

	// The upload side (upload.go).
	peerInterested bool
	choking        bool // we choke the peer: what the choker decided
	chokeSent      bool // what the peer was last told; a connection starts choked (BEP 3)
	bitfieldSent   bool
	haveCursor     int
	haves          []int
	upq            []BlockReq
	served         chan struct{} // the writer took requests from upq, or the choke dropped them
	writerDone     chan struct{} // closed when the writer has returned
	recvBytes      atomic.Int64
	sentBytes      atomic.Int64

	meter peerMeter // for snapshots (peerinfo.go)
}

func newSession(env *Env, cfg RequestConfig, c *Conn, out chan<- any, reg *registry) *session {
	n := env.Info.NumPieces()
	now := time.Now()
	// The memory bound: no more requests than the blocks of the pieces the Scheduler keeps
	// in progress (Config.MaxInFlight), which is all it can hand out at once anyway.
	budget := env.Sched.maxActive * int((env.Info.PieceLength+wire.BlockSize-1)/wire.BlockSize)
	if cfg.Queue <= 0 || cfg.Queue > budget {
		cfg.Queue = max(budget, 1)
	}
	cfg.InitialQueue = min(cfg.InitialQueue, cfg.Queue)
	s := &session{
		env: env, cfg: cfg, c: c, p: NewPeer(c.Addr), out: out, reg: reg,
		dec:     wire.NewDecoder(c.R, n),
		log:     env.Log.With("stage", "request", "peer", c.Addr),
		choked:  true,
		window:  cfg.InitialQueue,
		flow:    newWindowCtl(cfg.InitialQueue, cfg.QueueTime),
		fast:    fastState{on: wire.SupportsFast(c.Reserved), rejected: make(reqSet)},
		choking: true, chokeSent: true,
		has:     wire.NewBitfield(n),
		pending: make(reqSet), released: make(reqSet),
		lastBlock: now, lastRecv: now,
		served: make(chan struct{}, 1), writerDone: make(chan struct{}),
		meter: newPeerMeter(now),
	}
	s.limit = s.windowCap()
	return s
}

func (s *session) run(ctx context.Context) {
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(sctx, func() { s.c.Close() })
	s.env.Sched.PeerJoined(s.p)
	s.env.Emit(PeerConnected{Addr: s.c.Addr, Incoming: s.c.Incoming})
	s.log.Debug("peer connected")
	s.p.Kick() // the writer sends our bitfield first
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(s.writerDone) // wakes a reader waiting for the writer (queueUpload)
		s.writer(sctx)
	}()
	err := s.reader(sctx)
	s.drop(err)
	cancel()
	stop()
	wg.Wait()
	s.mu.Lock()
	if s.dropErr != nil {
		err = s.dropErr
	}
	left := s.pending.appendTo(make([]BlockReq, 0, len(s.pending)))
	s.mu.Unlock()
	s.env.Sched.PeerLeft(s.p, s.has, left)
	s.env.Emit(PeerDropped{Addr: s.c.Addr, Reason: err, Fault: isFault(err)})
	switch {
	case !isFault(err) && (errors.Is(err, errBothSeeds) || errors.Is(err, errDuplicate)):
		s.log.Debug("closing connection", "reason", err)
	case !isFault(err):
		s.log.Debug("peer disconnected", "err", err)
	default:
		s.log.Warn("dropping peer", "reason", err)
	}
}

// drop closes the connection for err, the first reason wins; a fault of the peer's is
// told to the peer list first, which then backs off before dialing it again, as after a
// failed dial.
func (s *session) drop(err error) {
	s.mu.Lock()
	first := s.dropErr == nil && err != nil
	if first {
		s.dropErr = err
	}
	s.mu.Unlock()
	if first && isFault(err) {
		s.env.Peers.Fault(s.c)
	}
	s.c.Close()
}

// isFault reports whether a session that ended with err was dropped for a fault of the
// peer's. It is told by the error alone: a protocol violation stays a fault even when the
// download ends at the same moment.
func isFault(err error) bool {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, errBothSeeds), errors.Is(err, errDuplicate): // nothing to trade, or one connection too many
		return false
	}
	return true
}

// reader decodes the peer's messages until an error; a panic becomes an error, never a crash.
func (s *session) reader(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	for {
		m, err := s.dec.Next()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.lastRecv = time.Now()
		s.mu.Unlock()
		if m.KeepAlive {
			continue
		}
		switch m.ID {
		case wire.Choke:
			var left []BlockReq
			s.mu.Lock()
			s.choked = true
			if s.fast.on {
				// BEP 6: the choke does not discard our requests; the peer answers
				// each with its block or a reject.
				s.chokedFast(time.Now())
			} else {
				left = s.releasePending()
			}
			s.mu.Unlock()
			// BEP 3: a choking peer discards our requests; they go to the others.
			s.env.Sched.Release(s.p, left)
		case wire.Unchoke:
			s.mu.Lock()
			s.choked = false
			s.unchokedFast()
			// released is kept: a peer may still send blocks we asked for before its
			// choke after it unchokes us again (libtorrent does, when a disk read was
			// in flight at the choke). They are accepted quietly, not taken for
			// unsolicited blocks.
			s.mu.Unlock()
			s.p.Kick()
		case wire.Have:
			s.mu.Lock()
			fresh := !s.has.Has(int(m.Index))
			s.has.Set(int(m.Index))
			s.mu.Unlock()
			if fresh {
				s.env.Sched.PeerHas(int(m.Index))
				s.p.Kick()
			}
		case wire.BitfieldID:
			s.gotBitfield(m.Bitfield)
		case wire.Piece:
			if err := s.block(ctx, m); err != nil {
				return err
			}
		case wire.Port:
			// BEP 5: the peer's DHT node, at its IP and this UDP port.
			if s.env.DHT != nil && m.Port != 0 {
				s.env.DHT.AddNode(netip.AddrPortFrom(s.c.Addr.Addr(), m.Port))
			}
		case wire.Extended:
			if err := s.extended(m.Extended); err != nil {
				return err
			}
		case wire.Interested, wire.NotInterested:
			s.mu.Lock()
			s.peerInterested = m.ID == wire.Interested
			s.mu.Unlock()
			s.reg.poke()
		case wire.Request:
			if err := s.queueUpload(ctx, m); err != nil {
				return err
			}
		case wire.Cancel:
			s.cancelUpload(m)
		case wire.Suggest, wire.HaveAll, wire.HaveNone, wire.Reject, wire.AllowedFast:
			if err := s.fastMsg(m); err != nil {
				return err
			}
		}
	}
}

// writer sends our messages: bitfield and haves, choke state, interest, requests,
// keep-alives and the blocks we upload; and it watches the peer's timeouts.
func (s *session) writer(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	lastSend := time.Now()
	var w uploadWriter
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.p.Kicked():
		case now := <-tick.C:
			s.adapt()
			if err := s.check(now); err != nil {
				s.drop(err)
				return
			}
			if now.Sub(lastSend) >= s.cfg.KeepAlive {
				w.ctl = wire.AppendKeepAlive(w.ctl)
			}
		}
		if s.p.Banned() { // the Scheduler kicks a peer it bans
			s.drop(errBanned) // the reason, not just the close: the reader would see a closed connection
			return
		}
		w.ctl = s.plan(w.ctl)
		more, err := s.serve(&w)
		if err != nil {
			s.drop(err)
			return
		}
		if w.empty() {
			continue
		}
		if ctx.Err() != nil {
			// The run ended meanwhile (a seed limit reached by the last batch, say): a
			// select with the kick ready too may have come here, and nothing more goes.
			return
		}
		s.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		n, err := w.flush(ctx.Done(), s.c)
		if err != nil {
			s.c.Close()
			return
		}
		s.sentBytes.Add(n)
		s.env.Sched.Uploaded(int(n))
		lastSend = time.Now()
		if more {
			s.p.Kick()
		}
	}
}
