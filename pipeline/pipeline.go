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
	"io/fs"
	"log/slog"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reugn/go-streams"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// defaultCacheBytes is Config.CacheBytes' default.
const defaultCacheBytes = 32 << 20

// ErrNoPeers ends a run that could not connect to any peer for Config.NoPeersTimeout.
var ErrNoPeers = errors.New("no peers")

// Config holds the tunables of a run. The zero value of each field means its default.
type Config struct {
	OutDir         string        // where the files go (default ".")
	Port           uint16        // port we listen on and announce (default 6881)
	ListenAddr     string        // address to accept peers on (default ":Port", IPv4 and IPv6); its real port is announced
	NoListen       bool          // accept no incoming peers (leech only)
	Seed           bool          // keep seeding after the download completes, until the context ends
	SeedRatio      float64       // after completion, seed until uploaded/wanted bytes reaches this (0: not a limit; seedlimits.go)
	SeedIdle       time.Duration // after completion, seed until no block was sent for this long (0: not a limit)
	SeedTime       time.Duration // after completion, seed this long (0: not a limit)
	CacheBytes     int64         // read cache for uploads (default 32 MiB); a Session's Defaults' is for all its torrents together
	Recheck        bool          // hash what a storage given by WithStorage holds before starting (the default files are rechecked whenever their resume record cannot be trusted)
	RecordInterval time.Duration // how often the resume record is saved while pieces complete (default 10s)
	PeerID         [20]byte      // default: "-BS0001-" and 12 random bytes
	MaxPeers       int           // concurrent connections (default 50)
	Queue          int           // most outstanding requests per peer, a hard cap (default: none but the peer's reqq, or 500, and the memory budget)
	MaxInFlight    int64         // bytes of pieces in progress, the memory bound (default 64 MiB); a Session's torrents share SessionConfig.MaxInFlight too
	Verifiers      int           // SHA-1 workers (default GOMAXPROCS)
	NoPeersTimeout time.Duration // fail when no peer is connected for this long while pieces are missing, unless Seed (default 2m)
	DownloadLimit  int64         // bytes per second peers may send this torrent (0: no limit)
	UploadLimit    int64         // bytes per second we send its peers (0: no limit)
	NoPex          bool          // no peer exchange (BEP 11); private torrents never have it
	PexInterval    time.Duration // how often peers are told of our peers (default and BEP 11 minimum 1m; tests shorten it)
	Dial           stages.DialConfig
	Request        stages.RequestConfig
	// Encryption is the MSE/PE policy for dialed and accepted peers. The default (zero) is
	// stages.EncryptOff, plain BitTorrent as before; the CLI defaults to prefer.
	Encryption stages.Encryption
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

// WithEvents has the run's typed events (stages.Event: peers connected and dropped,
// pieces verified, tracker replies, metadata received, completion) delivered to f, from
// the stages' goroutines; f must not block.
func WithEvents(f func(stages.Event)) Option { return func(p *Pipeline) { p.events = f } }

// withListener gives the pipeline a listener of the Session's, fed with the connections
// whose handshake asks for this torrent; the session's port is announced.
func withListener(ln net.Listener) Option { return func(p *Pipeline) { p.ln = ln } }

// withOnMeta has f called once the pipeline knows the torrent's metadata.
func withOnMeta(f func(*metainfo.MetaInfo)) Option { return func(p *Pipeline) { p.onMeta = f } }

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

	events     func(stages.Event)                       // WithEvents
	rates      runRates                                 // the run's rate limits (limits.go)
	ln         net.Listener                             // withListener: a Session's
	onMeta     func(*metainfo.MetaInfo)                 // withOnMeta
	metaMu     sync.Mutex                               // guards meta and sched, set by Run for a magnet link
	mag        *magnet.Magnet                           // a magnet link's pipeline, until its metadata is known
	pickerFor  func(numPieces int) stages.Picker        // WithPickerFor
	storeFor   func(info *metainfo.Info) stages.Storage // WithStorageFor
	web        webSeeds                                 // BEP 19: WithWebSeeds, WithWebSeedConfig (webseed.go)
	readers    *readerHub                               // NewReader (reader.go); a Torrent's with withReaders
	sel        selection                                // file priorities (selection.go)
	shared     *shared                                  // withShared: a Session's (shared.go); nil: the run makes its own
	connBudget *stages.ConnBudget                       // withConnBudget: a Session's (connlimit.go); nil: none
	peers      stages.PeerView                          // the Request stage's sessions, for Peers (peers.go)
	swarm      atomic.Pointer[stages.Swarm]             // the current run's, for Reannounce (peers.go); nil between runs
	seed       *seedLimits                              // its Config's, or withSeedLimits: a Torrent's (seedlimits.go)
}

// WithPickerFor builds the piece picker once the number of pieces is known: for a magnet
// link, after its metadata has been fetched.
func WithPickerFor(f func(numPieces int) stages.Picker) Option {
	return func(p *Pipeline) { p.pickerFor = f }
}

// WithStorageFor builds the storage once the torrent's layout is known, in place of the
// files under Config.OutDir. The pipeline closes it when Run returns.
func WithStorageFor(f func(info *metainfo.Info) stages.Storage) Option {
	return func(p *Pipeline) { p.storeFor = f }
}

// New builds a pipeline for m. It opens no file and no connection until Run.
func New(m *metainfo.MetaInfo, opts ...Option) (*Pipeline, error) {
	p := newPipeline(opts)
	if _, err := p.limits(); err != nil {
		return nil, err
	}
	p.meta = m
	dht := p.dht != nil && !m.Info.Private // BEP 27: a private torrent's peers come from its trackers only
	if len(p.sources) == 0 {
		if tiers := m.Trackers(); len(tiers) > 0 {
			p.sources = []stages.PeerSource{trackers(tiers, dht)}
		}
	}
	if dht {
		p.sources = append(p.sources, &stages.DHT{Node: p.dht, Nodes: m.Nodes})
	}
	if len(p.sources) == 0 && len(p.webSeedURLs(m)) == 0 && !p.seeding() {
		// A seed may wait for peers to come; a download would wait for nothing.
		return nil, errors.New("torrent has no tracker and no web seed, and no peers were given")
	}
	p.setMeta(m)
	return p, nil
}

// NewMagnet builds a pipeline for the torrent a magnet link names (BEP 9). Its Run first
// fetches the info dictionary from peers (the link's trackers and x.pe peers, the DHT
// with WithDHT, or WithPeerSource), over the connections the download then goes on with;
// the metadata is kept in Config.OutDir's .bitstorm folder, and a later run finds it
// there. Pickers and storage are built once the piece count is known (WithPickerFor,
// WithStorageFor).
func NewMagnet(mag *magnet.Magnet, opts ...Option) (*Pipeline, error) {
	p := newPipeline(opts)
	if _, err := p.limits(); err != nil {
		return nil, err
	}
	m, err := loadMetadata(p.cfg.OutDir, mag)
	switch {
	case err == nil:
		p.log.Info("metadata from an earlier run", "name", m.Info.Name, "path", resume.MetadataPath(p.cfg.OutDir, mag.InfoHash))
	case !errors.Is(err, fs.ErrNotExist):
		p.log.Warn("ignoring saved metadata", "err", err)
	}
	dht := p.dht != nil && (m == nil || !m.Info.Private) // BEP 27
	if len(p.sources) == 0 {
		if tiers := mag.Tiers(); len(tiers) > 0 {
			p.sources = append(p.sources, trackers(tiers, dht))
		}
		if len(mag.Peers) > 0 {
			p.sources = append(p.sources, stages.StaticPeers(mag.Peers))
		}
	}
	if dht {
		p.sources = append(p.sources, &stages.DHT{Node: p.dht})
	}
	if len(p.sources) == 0 {
		return nil, errors.New("magnet: no tracker (tr) and no peer (x.pe) to ask, and no DHT")
	}
	if m != nil {
		p.setMeta(m)
	} else {
		p.mag = mag
	}
	return p, nil
}

// setMeta makes the pipeline's piece state for m: the picker and the Scheduler.
func (p *Pipeline) setMeta(m *metainfo.MetaInfo) {
	if p.onMeta != nil {
		defer p.onMeta(m)
	}
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	p.meta = m
	if p.picker == nil && p.pickerFor != nil {
		p.picker = p.pickerFor(m.Info.NumPieces())
	}
	if p.picker == nil {
		p.picker = stages.NewRarest(m.Info.NumPieces(), uint64(time.Now().UnixNano()))
	}
	maxActive := int(max(p.cfg.MaxInFlight/m.Info.PieceLength, 4))
	p.sched = stages.NewScheduler(&m.Info, p.picker, maxActive)
	p.applyFiles(m) // before the Readers raise their pieces above the files' priorities
	p.readers.setSched(&m.Info, p.sched)
}

// Meta returns the torrent's metainfo: nil for a magnet link until its metadata is known.
func (p *Pipeline) Meta() *metainfo.MetaInfo {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	return p.meta
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
	if p.readers == nil {
		p.readers = newReaderHub(false)
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
		c.CacheBytes = defaultCacheBytes
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
	if p.seed == nil {
		p.seed = newSeedLimits()
	}
	p.seed.init(c.SeedRatio, c.SeedIdle)
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

// Stats returns a snapshot of the download's progress; safe to call while Run runs. Before
// a magnet link's metadata is known, it is all zeros.
func (p *Pipeline) Stats() stages.Stats {
	p.metaMu.Lock()
	sched := p.sched
	p.metaMu.Unlock()
	if sched == nil {
		return stages.Stats{}
	}
	return sched.Stats()
}

// Run downloads the torrent. It returns nil once every piece is verified and written, the
// first fatal error (tracker unreachable, no peers, disk error), or the context's error.
// Verified pieces stay on disk whatever the outcome. For a magnet link it fetches the
// metadata first (NewMagnet).
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.swarm.Store(nil)
	err := p.runOnce(ctx)
	if err != nil && ctx.Err() == nil && p.events != nil {
		p.events(stages.Failed{Err: err})
	}
	return err
}

func (p *Pipeline) runOnce(ctx context.Context) error {
	defer p.readers.runEnded()
	if p.meta == nil {
		return p.runMagnet(ctx)
	}
	store, err := p.openStore(ctx)
	if err != nil {
		return err
	}
	ln, err := p.listen()
	if err != nil {
		store.Close()
		return err
	}
	r := p.startRun(ctx, p.meta.InfoHash)
	defer r.cancel(nil)
	defer p.leaveBudget(r.sw)
	p.attach(r) // before the sources open: the trackers' first announce says what is left
	pex := p.newPex(&p.meta.Info)
	return p.download(r, store, p.conns(r.ctx, r.sw, ln, pexSource(pex)...), pex)
}

// runMagnet runs a magnet link's download: the metadata phase on the swarm's connections,
// which wait at the MetadataGate, then the piece graph on the same connections.
func (p *Pipeline) runMagnet(ctx context.Context) error {
	ln, err := p.listen()
	if err != nil {
		return err
	}
	r := p.startRun(ctx, p.mag.InfoHash)
	defer r.cancel(nil)
	defer p.leaveBudget(r.sw)
	pex := p.newPex(nil) // the torrent may turn out private: then it is given to no session
	gate, wait := p.metadataGraph(r.ctx, r.sw, ln, pexSource(pex)...)
	m, err := p.awaitMetadata(r, gate)
	if err != nil {
		r.cancel(nil)
		wait()
		return err
	}
	p.setMeta(m)
	store, err := p.openStore(r.ctx)
	if err != nil {
		r.fail(err)
		wait()
		return err
	}
	if m.Info.Private {
		pex = nil
	}
	p.attach(r)
	err = p.download(r, store, gate.Source(), pex)
	wait()
	return err
}

// awaitMetadata waits for the gate's verified metadata, within NoPeersTimeout, and keeps
// it beside the resume record.
func (p *Pipeline) awaitMetadata(r *run, gate *stages.MetadataGate) (*metainfo.MetaInfo, error) {
	p.log.Info("fetching metadata", "info_hash", fmt.Sprintf("%x", p.mag.InfoHash), "name", p.mag.Name)
	timer := time.AfterFunc(p.cfg.NoPeersTimeout, func() {
		r.fail(fmt.Errorf("%w within %s", ErrNoMetadata, p.cfg.NoPeersTimeout))
	})
	defer timer.Stop()
	var raw []byte
	select {
	case raw = <-gate.Found():
	case <-r.ctx.Done():
		if err := r.err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("metadata fetch interrupted: %w", context.Canceled)
	}
	m, err := metainfo.FromInfo(raw, p.mag.Tiers())
	if err != nil {
		return nil, fmt.Errorf("metadata from peers: %w", err)
	}
	if err := resume.SaveMetadata(p.cfg.OutDir, m.InfoHash, metainfo.Torrent(m.RawInfo, m.AnnounceList)); err != nil {
		p.log.Warn("could not keep the metadata for a restart", "err", err)
	}
	return m, nil
}

// openStore opens the storage of the torrent and restores what is already on it.
func (p *Pipeline) openStore(ctx context.Context) (stages.Storage, error) {
	if p.store == nil && p.storeFor != nil {
		p.store = p.storeFor(&p.meta.Info) // from here on as if given by WithStorage
	}
	store := p.store
	var stamps []resume.FileStamp
	if store == nil {
		stamps = p.preStamp()
		fs, err := p.openFiles() // the selected files (selection.go)
		if err != nil {
			return nil, err
		}
		store = fs
	} else if err := p.sel.failed(); err != nil {
		return nil, err
	}
	if err := p.restore(ctx, store, stamps); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// listen opens the peer listener, unless NoListen; the port it got is the one announced.
func (p *Pipeline) listen() (net.Listener, error) {
	if p.ln != nil {
		return p.ln, nil // a Session's; Config.Port is the session's
	}
	if p.cfg.NoListen {
		return nil, nil
	}
	l, err := net.Listen("tcp", p.cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p.port = uint16(l.Addr().(*net.TCPAddr).Port)
	return l, nil
}

// newPex returns the run's peer exchange, or nil: off by Config, or for a private torrent
// (BEP 27: its peers come from its trackers only). info is nil while unknown.
func (p *Pipeline) newPex(info *metainfo.Info) *stages.PEX {
	if p.cfg.NoPex || info != nil && info.Private {
		return nil
	}
	return stages.NewPEX(p.cfg.PexInterval)
}

// pexSource is pex as extra peer sources for conns.
func pexSource(pex *stages.PEX) []stages.PeerSource {
	if pex == nil {
		return nil
	}
	return []stages.PeerSource{pex}
}

// run is the state of one Run: its context, its swarm, and the first fatal error.
type run struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	sw     *stages.Swarm
	once   sync.Once
	fatal  error
}

func (p *Pipeline) startRun(ctx context.Context, infoHash [20]byte) *run {
	r := &run{}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	r.sw = stages.NewSwarm(infoHash, p.cfg.PeerID, p.port, p.log, r.fail)
	r.sw.Events = p.events
	r.sw.Encryption = p.cfg.Encryption
	r.sw.Peers.UseBudget(p.connBudget)
	p.swarm.Store(r.sw)
	if c, ok := p.dht.(stages.DHTContact); ok && (p.meta == nil || !p.meta.Info.Private) {
		r.sw.DHT = c
	}
	return r
}

// fail ends the run with err; the first error wins.
func (r *run) fail(err error) { r.once.Do(func() { r.fatal = err; r.cancel(err) }) }

// err is the run's fatal error or its context's cause, other than a plain cancel.
func (r *run) err() error {
	r.once.Do(func() {}) // no fail after this point
	if r.fatal != nil {
		return r.fatal
	}
	if err := context.Cause(r.ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// attach gives the run's swarm the piece state: its bans and its progress.
func (p *Pipeline) attach(r *run) {
	p.sched.SetBans(r.sw.Bans)
	r.sw.Attach(p.sched)
}

// download runs the piece graph over conns until the download completes (and seeding
// ends), a fatal error, or the run's end, and returns the run's outcome.
func (p *Pipeline) download(r *run, store stages.Storage, conns streams.Source, pex *stages.PEX) error {
	env := &stages.Env{Swarm: r.sw, Info: &p.meta.Info, Sched: p.sched, RawInfo: p.meta.RawInfo}
	sh := p.shared
	if sh == nil {
		// A run of its own: its in-flight budget is its cap (setMeta: at least 4 pieces).
		sh = newShared(p.cfg.CacheBytes, max(p.cfg.MaxInFlight, 4*p.meta.Info.PieceLength))
	}
	p.sched.SetBudget(sh.inFlight)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.watch(r, env, sh.clock)
	}()
	go func() {
		defer wg.Done()
		p.keepRecord(r.ctx, store, p.cfg.RecordInterval)
	}()
	p.log.Info("download starting", "name", p.meta.Info.Name, "size", p.meta.Info.Length, "pieces", p.meta.Info.NumPieces())
	p.readers.attachStore(store)
	p.graph(r.ctx, env, store, conns, pex, sh)
	p.sched.EndRun() // every stage has returned: its pieces in progress give their bytes back
	r.cancel(nil)
	wg.Wait()
	if !p.sched.IsComplete() || p.seeding() {
		// A download that just completed skips this save and its sync of every dirty
		// page: its last periodic record no longer matches the files, so a later run
		// rechecks them, which is as safe and keeps the exit prompt.
		if err := p.saveRecord(store); err != nil {
			p.log.Warn("saving resume record", "err", err)
		}
	}
	p.readers.detachStore() // no Reader reads from it once it closes
	cerr := store.Close()
	fatal := r.err()
	if p.sched.IsComplete() && (r.fatal == nil || !p.seeding()) {
		// Complete and verified; a failure while seeding afterwards is not the download's.
		return cerr
	}
	if fatal != nil {
		return fatal
	}
	if cerr != nil {
		return cerr
	}
	return fmt.Errorf("download interrupted: %w", context.Canceled)
}

// watch ends the run when the download completes (or, when seeding, once a seed limit is
// reached: seedlimits.go) and when no peer has been connected for NoPeersTimeout while
// pieces are missing. It looks each tick of clock (a second; a Session's torrents share
// it), and when the seed limits change.
func (p *Pipeline) watch(r *run, env *stages.Env, clock *clock) {
	defer clock.start()()
	lastPeer := time.Now()
	complete := p.sched.Complete()
	var sd *seedRun // while seeding
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-complete:
			complete = nil
			p.log.Info("download complete", "name", p.meta.Info.Name)
			env.Emit(stages.Completed{})
			if !p.seeding() {
				r.cancel(nil)
				return
			}
			sd = p.startSeeding(r, env, clock.period)
		case <-p.seed.wake:
			if sd != nil {
				sd.arm()
			}
		case <-clock.C():
			now := time.Now()
			if complete == nil && !p.sched.IsComplete() { // more wanted since (SetFilePriority)
				complete = p.sched.Complete()
				if sd != nil {
					sd.stop()
					sd = nil
				}
			}
			st := p.sched.Stats()
			switch {
			case sd != nil:
				if sd.tick(now, st) {
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

// Have returns the bitfield of pieces verified so far; safe to call while Run runs.
func (p *Pipeline) Have() wire.Bitfield {
	bf, _ := p.sched.Snapshot()
	return bf
}

// Port is the port announced to trackers: the listener's once Run has started.
func (p *Pipeline) Port() uint16 { return p.port }
