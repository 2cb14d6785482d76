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
	"runtime"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/storage"
	"github.com/bitstorm/bitstorm/stages"
)

// ErrNoPeers ends a run that could not connect to any peer for Config.NoPeersTimeout.
var ErrNoPeers = errors.New("no peers")

// Config holds the tunables of a run. The zero value of each field means its default.
type Config struct {
	OutDir         string        // where the files go (default ".")
	Port           uint16        // port announced to trackers (default 6881)
	PeerID         [20]byte      // default: "-BS0001-" and 12 random bytes
	MaxPeers       int           // concurrent connections (default 50)
	Queue          int           // outstanding requests per peer (default 64)
	MaxInFlight    int64         // bytes of pieces in progress, the memory bound (default 64 MiB)
	Verifiers      int           // SHA-1 workers (default GOMAXPROCS)
	NoPeersTimeout time.Duration // fail when no peer is connected for this long (default 2m)
	Dial           stages.DialConfig
	Request        stages.RequestConfig
}

// Option changes how New builds the pipeline.
type Option func(*Pipeline)

// WithConfig sets the run's tunables.
func WithConfig(c Config) Option { return func(p *Pipeline) { p.cfg = c } }

// WithPeerSource replaces the trackers of the torrent as the source of peers.
func WithPeerSource(s stages.PeerSource) Option { return func(p *Pipeline) { p.source = s } }

// WithPicker replaces the piece picker.
func WithPicker(pk stages.Picker) Option { return func(p *Pipeline) { p.picker = pk } }

// WithStorage replaces the files under Config.OutDir as the place pieces are written.
// The pipeline closes it when Run returns.
func WithStorage(s stages.Storage) Option { return func(p *Pipeline) { p.store = s } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(p *Pipeline) { p.log = l } }

// Pipeline is one download of one torrent.
type Pipeline struct {
	meta   *metainfo.MetaInfo
	cfg    Config
	source stages.PeerSource
	picker stages.Picker
	store  stages.Storage
	log    *slog.Logger
	sched  *stages.Scheduler
}

// New builds a pipeline for m. It opens no file and no connection until Run.
func New(m *metainfo.MetaInfo, opts ...Option) (*Pipeline, error) {
	p := &Pipeline{meta: m}
	for _, o := range opts {
		o(p)
	}
	c := &p.cfg
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
	if c.Queue > 0 {
		c.Request.Queue = c.Queue
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64 << 20
	}
	if c.Verifiers <= 0 {
		c.Verifiers = runtime.GOMAXPROCS(0)
	}
	if c.NoPeersTimeout <= 0 {
		c.NoPeersTimeout = 2 * time.Minute
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.source == nil {
		tiers := m.Trackers()
		if len(tiers) == 0 {
			return nil, errors.New("torrent has no tracker, and no peers were given")
		}
		p.source = &stages.Tracker{Tiers: tiers}
	}
	if p.picker == nil {
		p.picker = stages.NewSequential(m.Info.NumPieces())
	}
	maxActive := int(max(c.MaxInFlight/m.Info.PieceLength, 4))
	p.sched = stages.NewScheduler(&m.Info, p.picker, maxActive)
	return p, nil
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
	if store == nil {
		fs, err := storage.Open(p.cfg.OutDir, &p.meta.Info)
		if err != nil {
			return err
		}
		store = fs
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var once sync.Once
	var fatal error
	env := &stages.Env{
		Info: &p.meta.Info, InfoHash: p.meta.InfoHash, PeerID: p.cfg.PeerID, Port: p.cfg.Port,
		Log: p.log, Sched: p.sched,
		Fail: func(err error) {
			once.Do(func() { fatal = err; cancel(err) })
		},
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.watch(ctx, env, cancel)
	}()
	p.log.Info("download starting", "name", p.meta.Info.Name, "size", p.meta.Info.Length, "pieces", p.meta.Info.NumPieces())
	p.graph(ctx, env, store)
	cancel(nil)
	wg.Wait()
	cerr := store.Close()
	select {
	case <-p.sched.Complete():
		if cerr != nil {
			return cerr
		}
		return nil
	default:
	}
	once.Do(func() {}) // no Fail after this point
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

// watch ends the run when the download completes or when no peer has been connected for
// NoPeersTimeout.
func (p *Pipeline) watch(ctx context.Context, env *stages.Env, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastPeer := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.sched.Complete():
			p.log.Info("download complete", "name", p.meta.Info.Name)
			cancel(nil)
			return
		case now := <-tick.C:
			if p.sched.Stats().Peers > 0 {
				lastPeer = now
			} else if now.Sub(lastPeer) > p.cfg.NoPeersTimeout {
				env.Fail(fmt.Errorf("%w: none connected for %s", ErrNoPeers, p.cfg.NoPeersTimeout))
				return
			}
		}
	}
}
