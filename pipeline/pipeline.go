// Package pipeline assembles BitStorm's download graph from stages and runs it.
//
// New takes the metainfo and options; every stage that an experiment may want to replace
// (the peer source, the piece picker, the storage sink) has an option, and everything else
// comes from Config's defaults. Run blocks until the download is verified complete, a fatal
// error occurs, or the context ends, and returns only after every goroutine of the graph
// has finished.
package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/storage"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// ErrNoPeers ends a run that could not connect to any peer for Config.NoPeersTimeout.
var ErrNoPeers = errors.New("no peers")

// Config holds the tunables of a run. The zero value of each field means its default.
type Config struct {
	OutDir         string        // where the files go (default ".")
	Port           uint16        // port we listen on and announce (default 6881)
	ListenAddr     string        // address to accept peers on (default ":Port", IPv4 and IPv6); its real port is announced
	NoListen       bool          // accept no incoming peers (leech only)
	Seed           bool          // keep seeding after the download completes, until the context ends
	SeedRatio      float64       // after completion, seed until uploaded/size reaches this (0: not a limit)
	SeedTime       time.Duration // after completion, seed this long (0: not a limit)
	CacheBytes     int64         // read cache for uploads (default 32 MiB)
	Recheck        bool          // hash what a storage given by WithStorage holds before starting (the default files are rechecked whenever their resume record cannot be trusted)
	RecordInterval time.Duration // how often the resume record is saved while pieces complete (default 10s)
	PeerID         [20]byte      // default: "-BS0001-" and 12 random bytes
	MaxPeers       int           // concurrent connections (default 50)
	Queue          int           // outstanding requests per peer (default 64)
	MaxInFlight    int64         // bytes of pieces in progress, the memory bound (default 64 MiB)
	Verifiers      int           // SHA-1 workers (default GOMAXPROCS)
	NoPeersTimeout time.Duration // fail when no peer is connected for this long while pieces are missing, unless Seed (default 2m)
	NoPex          bool          // no peer exchange (BEP 11); private torrents never have it
	PexInterval    time.Duration // how often peers are told of our peers (default and BEP 11 minimum 1m; tests shorten it)
	Dial           stages.DialConfig
	Request        stages.RequestConfig
}

// Option changes how New builds the pipeline.
type Option func(*Pipeline)

// WithConfig sets the run's tunables.
func WithConfig(c Config) Option { return func(p *Pipeline) { p.cfg = c } }

// WithPeerSource replaces the trackers of the torrent as the source of peers.
func WithPeerSource(s stages.PeerSource) Option {
	return func(p *Pipeline) { p.sources = []stages.PeerSource{s} }
}

// WithDHT adds the DHT (BEP 5) beside the other peer sources, through node, which the
// caller starts and closes (it outlives the run: one node serves every torrent of a
// process). Private torrents (BEP 27) never use it.
func WithDHT(node stages.DHTNode) Option { return func(p *Pipeline) { p.dht = node } }

// WithPicker replaces the piece picker.
func WithPicker(pk stages.Picker) Option { return func(p *Pipeline) { p.picker = pk } }

// WithChoker replaces the choker that decides which peers may download from us.
func WithChoker(ch stages.Choker) Option { return func(p *Pipeline) { p.choker = ch } }

// WithStorage replaces the files under Config.OutDir as the place pieces are written.
// The pipeline closes it when Run returns.
func WithStorage(s stages.Storage) Option { return func(p *Pipeline) { p.store = s } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(p *Pipeline) { p.log = l } }

// Pipeline is one download of one torrent.
type Pipeline struct {
	meta    *metainfo.MetaInfo
	cfg     Config
	sources []stages.PeerSource // merged before Dial (graph.go)
	dht     stages.DHTNode      // nil: no DHT source
	picker  stages.Picker
	choker  stages.Choker
	store   stages.Storage
	log     *slog.Logger
	sched   *stages.Scheduler
	port    uint16 // announced: the listener's real port, or Config.Port
}

// New builds a pipeline for m. It opens no file and no connection until Run.
func New(m *metainfo.MetaInfo, opts ...Option) (*Pipeline, error) {
	p := newPipeline(opts)
	p.meta = m
	dht := p.dht != nil && !m.Info.Private // BEP 27: a private torrent's peers come from its trackers only
	if len(p.sources) == 0 {
		if tiers := m.Trackers(); len(tiers) > 0 {
			p.sources = []stages.PeerSource{trackers(tiers, dht)}
		}
	}
	if dht {
		p.sources = append(p.sources, &stages.DHT{Node: p.dht})
	}
	if len(p.sources) == 0 {
		return nil, errors.New("torrent has no tracker, and no peers were given")
	}
	if p.picker == nil {
		p.picker = stages.NewRarest(m.Info.NumPieces(), uint64(time.Now().UnixNano()))
	}
	maxActive := int(max(p.cfg.MaxInFlight/m.Info.PieceLength, 4))
	p.sched = stages.NewScheduler(&m.Info, p.picker, maxActive)
	return p, nil
}

// trackers is the Tracker source of tiers. Beside the DHT, trackers that never answer do
// not end the run: the DHT may find the peers, and NoPeersTimeout bounds a run that
// finds none.
func trackers(tiers [][]string, dht bool) *stages.Tracker {
	t := &stages.Tracker{Tiers: tiers}
	if dht {
		t.MaxFailures = math.MaxInt
	}
	return t
}

// newPipeline applies opts and the defaults of everything that does not depend on the
// torrent's metadata.
func newPipeline(opts []Option) *Pipeline {
	p := &Pipeline{}
	for _, o := range opts {
		o(p)
	}
	c := &p.cfg
	if p.choker != nil {
		c.Request.Choker = p.choker
	}
	if c.OutDir == "" {
		c.OutDir = "."
	}
	if c.Port == 0 {
		c.Port = 6881
	}
	if c.PeerID == [20]byte{} {
		c.PeerID = NewPeerID()
	}
	if c.MaxPeers > 0 {
		c.Dial.MaxPeers = c.MaxPeers
	}
	if c.Dial.MaxPeers <= 0 {
		c.Dial.MaxPeers = 50
	}
	if c.Dial.HandshakeTimeout <= 0 {
		c.Dial.HandshakeTimeout = 10 * time.Second
	}
	if c.Queue > 0 {
		c.Request.Queue = c.Queue
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64 << 20
	}
	if c.Verifiers <= 0 {
		c.Verifiers = runtime.GOMAXPROCS(0)
	}
	if c.RecordInterval <= 0 {
		c.RecordInterval = 10 * time.Second
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 32 << 20
	}
	if c.ListenAddr == "" {
		c.ListenAddr = fmt.Sprintf(":%d", c.Port)
	}
	if c.NoPeersTimeout <= 0 {
		c.NoPeersTimeout = 2 * time.Minute
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p.port = c.Port
	return p
}

// NewPeerID returns a fresh Azureus-style peer id: "-BS0001-" and 12 random bytes.
func NewPeerID() [20]byte {
	var id [20]byte
	copy(id[:], "-BS0001-")
	rand.Read(id[8:])
	return id
}

// Stats returns a snapshot of the download's progress; safe to call while Run runs.
func (p *Pipeline) Stats() stages.Stats { return p.sched.Stats() }

// Run downloads the torrent. It returns nil once every piece is verified and written, the
// first fatal error (tracker unreachable, no peers, disk error), or the context's error.
// Verified pieces stay on disk whatever the outcome.
func (p *Pipeline) Run(ctx context.Context) error {
	store := p.store
	var stamps []resume.FileStamp
	if store == nil {
		stamps = p.preStamp()
		fs, err := storage.Open(p.cfg.OutDir, &p.meta.Info)
		if err != nil {
			return err
		}
		store = fs
	}
	if err := p.restore(ctx, store, stamps); err != nil {
		store.Close()
		return err
	}
	var ln net.Listener
	if !p.cfg.NoListen {
		l, err := net.Listen("tcp", p.cfg.ListenAddr)
		if err != nil {
			store.Close()
			return fmt.Errorf("listen: %w", err)
		}
		ln = l
		p.port = uint16(l.Addr().(*net.TCPAddr).Port)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var once sync.Once
	var fatal error
	sw := stages.NewSwarm(p.meta.InfoHash, p.cfg.PeerID, p.port, p.log, func(err error) {
		once.Do(func() { fatal = err; cancel(err) })
	})
	p.sched.SetBans(sw.Bans)
	sw.Attach(p.sched)
	env := &stages.Env{Swarm: sw, Info: &p.meta.Info, Sched: p.sched, RawInfo: p.meta.RawInfo}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.watch(ctx, env, cancel)
	}()
	go func() {
		defer wg.Done()
		p.keepRecord(ctx, store, p.cfg.RecordInterval)
	}()
	p.log.Info("download starting", "name", p.meta.Info.Name, "size", p.meta.Info.Length, "pieces", p.meta.Info.NumPieces())
	p.graph(ctx, env, store, ln)
	cancel(nil)
	wg.Wait()
	if !p.sched.IsComplete() || p.seeding() {
		// A download that just completed skips this save and its sync of every dirty
		// page: its last periodic record no longer matches the files, so a later run
		// rechecks them, which is as safe and keeps the exit prompt.
		if err := p.saveRecord(store); err != nil {
			p.log.Warn("saving resume record", "err", err)
		}
	}
	cerr := store.Close()
	once.Do(func() {}) // no Fail after this point
	if p.sched.IsComplete() && (fatal == nil || !p.seeding()) {
		// Complete and verified; a failure while seeding afterwards is not the download's.
		return cerr
	}
	if fatal != nil {
		return fatal
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if cerr != nil {
		return cerr
	}
	return fmt.Errorf("download interrupted: %w", context.Canceled)
}

// watch ends the run when the download completes (or, when seeding, once the seed ratio
// or time is reached) and when no peer has been connected for NoPeersTimeout while pieces
// are missing.
func (p *Pipeline) watch(ctx context.Context, env *stages.Env, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastPeer := time.Now()
	complete := p.sched.Complete()
	var completedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-complete:
			complete = nil
			completedAt = time.Now()
			p.log.Info("download complete", "name", p.meta.Info.Name)
			if !p.seeding() {
				cancel(nil)
				return
			}
			p.log.Info("seeding", "ratio", p.cfg.SeedRatio, "time", p.cfg.SeedTime)
		case now := <-tick.C:
			st := p.sched.Stats()
			switch {
			case !completedAt.IsZero():
				ratio := float64(st.Uploaded) / float64(max(st.Total, 1))
				if (p.cfg.SeedRatio > 0 && ratio >= p.cfg.SeedRatio) || (p.cfg.SeedTime > 0 && now.Sub(completedAt) >= p.cfg.SeedTime) {
					p.log.Info("seeding done", "uploaded", st.Uploaded, "ratio", ratio)
					cancel(nil)
					return
				}
			case st.Peers > 0 || p.cfg.Seed:
				lastPeer = now
			case now.Sub(lastPeer) > p.cfg.NoPeersTimeout:
				env.Fail(fmt.Errorf("%w: none connected for %s", ErrNoPeers, p.cfg.NoPeersTimeout))
				return
			}
		}
	}
}

// seeding reports whether the run goes on after completion.
func (p *Pipeline) seeding() bool {
	return p.cfg.Seed || p.cfg.SeedRatio > 0 || p.cfg.SeedTime > 0
}

// Have returns the bitfield of pieces verified so far; safe to call while Run runs.
func (p *Pipeline) Have() wire.Bitfield {
	bf, _ := p.sched.Snapshot()
	return bf
}

// Port is the port announced to trackers: the listener's once Run has started.
func (p *Pipeline) Port() uint16 { return p.port }
