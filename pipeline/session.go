package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/stages"
)

// A Session runs many torrents in one process: one listen port, where an incoming
// connection goes to the torrent its handshake asks for (BEP 3: the info hash is in the
// first 48 bytes), one peer id, one DHT node, and per-torrent pipelines that can be added,
// paused, resumed and removed while the others run. Its torrents share one free list of
// block buffers, one upload cache budget (Defaults.CacheBytes for all of them) and one
// clock for their once-a-second checks (shared.go).
type Session struct {
	cfg    SessionConfig
	ln     net.Listener
	port   uint16
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	shared *shared

	mu       sync.Mutex
	torrents map[[20]byte]*Torrent

	down, up *stages.Rate // the session's rate limits (limits.go); SetLimits changes them

	conns *stages.ConnBudget // MaxConns (connlimit.go)
	queue *queue             // MaxActiveDownloads, MaxActiveSeeds (queue.go)
}

// SessionConfig holds a session's settings; the zero value of each means its default.
type SessionConfig struct {
	ListenAddr string                       // where peers connect (default ":6881"); port 0 picks one
	PeerID     [20]byte                     // default: NewPeerID
	DHT        stages.DHTNode               // shared by every torrent that is not private; nil: no DHT
	Log        *slog.Logger                 // default: discard
	Defaults   Config                       // each torrent's Config, before its own options (OutDir, limits...)
	Events     func(*Torrent, stages.Event) // every torrent's events; must not block
	// MaxInFlight is the bytes of pieces in progress of the session's torrents together,
	// the memory bound of their downloads (default 128 MiB); each torrent's
	// Defaults.MaxInFlight caps it alone too, and each may always have stages.MinActive
	// pieces in progress (see stages.InFlightBudget).
	MaxInFlight int64
	// DownloadLimit and UploadLimit cap the session's torrents together, in bytes per
	// second (0: no limit); each torrent's Config may cap it alone too.
	DownloadLimit, UploadLimit int64
	// MaxConns caps the peer connections of the session's torrents together (default
	// 200, Transmission's peer-limit-global; -1: no cap); each torrent's Config.MaxPeers
	// caps its own too (connlimit.go).
	MaxConns int
	// MaxActiveDownloads and MaxActiveSeeds bound the torrents downloading, and seeding,
	// at once (0: no limit); the others wait, Queued, and start in turn (queue.go).
	MaxActiveDownloads, MaxActiveSeeds int
}

// ErrDuplicate is Add's error for a torrent the session holds already.
var ErrDuplicate = errors.New("torrent added twice")

// NewSession starts a session listening on cfg.ListenAddr.
func NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":6881"
	}
	if cfg.PeerID == [20]byte{} {
		cfg.PeerID = NewPeerID()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	down, up, err := newRates(cfg.DownloadLimit, cfg.UploadLimit)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("session: listen: %w", err)
	}
	cacheBytes := cfg.Defaults.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = defaultCacheBytes
	}
	inFlight := cfg.MaxInFlight
	if inFlight <= 0 {
		inFlight = defaultSessionInFlight
	}
	s := &Session{cfg: cfg, ln: ln, port: uint16(ln.Addr().(*net.TCPAddr).Port), torrents: make(map[[20]byte]*Torrent),
		shared: newShared(cacheBytes, inFlight)}
	s.down, s.up = down, up
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.conns = stages.NewConnBudget(cmp.Or(cfg.MaxConns, defaultMaxConns))
	s.queue = newQueue(cfg.MaxActiveDownloads, cfg.MaxActiveSeeds, func() bool { return s.ctx.Err() != nil })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.accept()
	}()
	return s, nil
}

// Port is the port the session accepts peers on and announces.
func (s *Session) Port() uint16 { return s.port }

// Close stops every torrent (their resume records are saved) and the listener, and waits.
func (s *Session) Close() error {
	s.mu.Lock()
	ts := make([]*Torrent, 0, len(s.torrents))
	for _, t := range s.torrents {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	// Each torrent is marked paused before the session's context ends its run: a run
	// that ended first would be taken for finished (a complete, seeding torrent's Run
	// returns nil) rather than stopped.
	for _, t := range ts {
		t.stopping()
	}
	s.stop()
	err := s.ln.Close()
	for _, t := range ts {
		t.Pause()
		t.readers.end(errSessionClosed)
	}
	s.wg.Wait()
	return err
}

// stopping marks a running torrent paused, ahead of the end of its run.
func (t *Torrent) stopping() {
	t.mu.Lock()
	if t.state == Running {
		t.state = Paused
	}
	t.mu.Unlock()
}

// Source is what a torrent is added from: FromFile, FromBytes, FromMetaInfo or FromMagnet.
type Source struct {
	meta *metainfo.MetaInfo
	mag  *magnet.Magnet
	err  error
}

// FromFile is the .torrent file at path.
func FromFile(path string) Source {
	m, err := metainfo.Load(path)
	return Source{meta: m, err: err}
}

// FromBytes is a .torrent file's bytes.
func FromBytes(b []byte) Source {
	m, err := metainfo.Parse(bytes.NewReader(b))
	return Source{meta: m, err: err}
}

// FromMetaInfo is a parsed torrent.
func FromMetaInfo(m *metainfo.MetaInfo) Source { return Source{meta: m} }

// FromMagnet is a magnet link (BEP 9); its metadata is fetched once the torrent runs.
func FromMagnet(uri string) Source {
	mag, err := magnet.Parse(uri)
	return Source{mag: mag, err: err}
}

func (src Source) infoHash() [20]byte {
	if src.meta != nil {
		return src.meta.InfoHash
	}
	return src.mag.InfoHash
}

// Add adds a torrent and starts it (unless it is added paused: Resume starts it). opts
// come after the session's Defaults; the session sets the listener, the peer id and the
// DHT. A torrent the session holds already is ErrDuplicate.
func (s *Session) Add(src Source, paused bool, opts ...Option) (*Torrent, error) {
	if src.err != nil {
		return nil, src.err
	}
	if src.meta == nil && src.mag == nil {
		return nil, errors.New("session: empty source")
	}
	t := &Torrent{s: s, src: src, hash: src.infoHash(), gotInfo: make(chan struct{}), opts: opts, readers: newReaderHub(true),
		seed: newSeedLimits()}
	if src.meta != nil {
		t.setMeta(src.meta)
	}
	if paused {
		// A run is built now, and dropped, so that a torrent that cannot run (no tracker,
		// no peer, bad options) is refused now rather than at Resume.
		if _, _, err := t.pipeline(t.Meta()); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return nil, errors.New("session: closed")
	}
	if _, dup := s.torrents[t.hash]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("session: %x: %w", t.hash, ErrDuplicate)
	}
	s.torrents[t.hash] = t
	s.mu.Unlock()
	if !paused {
		if err := t.Resume(); err != nil {
			s.forget(t)
			return nil, err
		}
	}
	return t, nil
}

// Torrents returns the session's torrents.
func (s *Session) Torrents() []*Torrent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Torrent, 0, len(s.torrents))
	for _, t := range s.torrents {
		out = append(out, t)
	}
	return out
}

func (s *Session) forget(t *Torrent) {
	s.mu.Lock()
	if s.torrents[t.hash] == t {
		delete(s.torrents, t.hash)
	}
	s.mu.Unlock()
}

// accept routes incoming connections by the info hash of their handshake.
func (s *Session) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil {
				s.cfg.Log.Warn("session: accept failed, no more incoming peers", "err", err)
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.route(nc)
		}()
	}
}

// routeTimeout bounds the wait for an incoming peer's first 48 bytes.
const routeTimeout = 10 * time.Second

// route reads the start of nc's handshake (BEP 3: 19, "BitTorrent protocol", 8 reserved
// bytes, the info hash) and hands nc, those bytes to be read again first, to the running
// torrent with that info hash; otherwise it closes nc. An encrypted (MSE) handshake hides
// the info hash: the MSE receiver tries every torrent's as its key, and the decrypted
// connection goes to the torrent whose key the peer used.
func (s *Session) route(nc net.Conn) {
	nc.SetReadDeadline(time.Now().Add(routeTimeout))
	var head [48]byte // a plain handshake is 68 bytes, an MSE one starts with 96 of key
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		nc.Close()
		return
	}
	nc.SetReadDeadline(time.Time{})
	var hash [20]byte
	conn := replay(nc, head[:])
	if head[0] == 19 && string(head[1:20]) == "BitTorrent protocol" {
		copy(hash[:], head[28:48])
	} else {
		c, h, _, err := stages.EncryptIncomingAny(s.ctx, s.cfg.Defaults.Encryption, conn, routeTimeout, s.hashes())
		if err != nil {
			nc.Close()
			return
		}
		conn, hash = c, h
	}
	s.mu.Lock()
	t := s.torrents[hash]
	s.mu.Unlock()
	if t == nil || !t.deliver(conn) {
		nc.Close()
	}
}

// hashes are the info hashes of the session's torrents.
func (s *Session) hashes() [][20]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][20]byte, 0, len(s.torrents))
	for h := range s.torrents {
		out = append(out, h)
	}
	return out
}

// replay returns nc with head, its first bytes, read already: Read returns them first.
// A TCP connection stays one, so that uploads still write with writev (net.Buffers).
func replay(nc net.Conn, head []byte) net.Conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		return &replayTCPConn{TCPConn: tc, head: head}
	}
	return &replayConn{Conn: nc, head: head}
}

type replayConn struct {
	net.Conn
	head []byte
}

func (c *replayConn) Read(b []byte) (int, error) { return replayRead(&c.head, c.Conn, b) }

type replayTCPConn struct {
	*net.TCPConn
	head []byte
}

func (c *replayTCPConn) Read(b []byte) (int, error) { return replayRead(&c.head, c.TCPConn, b) }

func replayRead(head *[]byte, r io.Reader, b []byte) (int, error) {
	if len(*head) > 0 {
		n := copy(b, *head)
		*head = (*head)[n:]
		return n, nil
	}
	return r.Read(b)
}

// Torrent is one torrent of a Session.
type Torrent struct {
	s    *Session
	src  Source
	hash [20]byte
	opts []Option

	readers *readerHub // its Readers' (reader.go), across runs

	gotInfo  chan struct{}
	infoOnce sync.Once

	mu       sync.Mutex
	meta     *metainfo.MetaInfo
	p        *Pipeline
	ln       *chanListener
	cancel   context.CancelFunc
	done     chan struct{} // closed when the current run ends
	err      error         // the last run's outcome
	state    State
	starting bool // Resume is building a run

	rates keptRates   // its own rate limits, across runs (limits.go)
	seed  *seedLimits // its seed limits and earlier runs' upload (seedlimits.go)

	idle             *stages.Stats // progress without a run: Verify's, or the resume record's
	resumeAfterCheck bool          // Verify resumes the torrent when its check ends
}

// State is where a torrent is in its life.
type State int

// A torrent's states.
const (
	Paused   State = iota // not running (added paused, paused, or stopped by an error)
	Running               // fetching metadata, downloading or seeding
	Finished              // its run ended with every piece verified (and seeding over)
	Failed                // its run ended with an error (Err)
	Removed
	Checking // Verify is rechecking its files
	Queued   // waiting for a download or seed slot (queue.go)
)

func (st State) String() string {
	return [...]string{"paused", "running", "finished", "failed", "removed", "checking", "queued"}[st]
}

// InfoHash is the torrent's info hash.
func (t *Torrent) InfoHash() [20]byte { return t.hash }

// GotInfo is closed once the torrent's metadata is known: at once for a .torrent, after
// the metadata phase for a magnet link.
func (t *Torrent) GotInfo() <-chan struct{} { return t.gotInfo }

// Meta is the torrent's metainfo, nil until GotInfo is closed.
func (t *Torrent) Meta() *metainfo.MetaInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.meta
}

func (t *Torrent) setMeta(m *metainfo.MetaInfo) {
	t.mu.Lock()
	t.meta = m
	t.mu.Unlock()
	t.infoOnce.Do(func() { close(t.gotInfo) })
}

// Files are the torrent's files; nil until GotInfo is closed.
func (t *Torrent) Files() []metainfo.File {
	if m := t.Meta(); m != nil {
		return m.Info.Files
	}
	return nil
}

// Stats is the torrent's progress: its run's, or without one what its resume record
// says (Verify's progress while it checks); zeros before its metadata is known.
func (t *Torrent) Stats() stages.Stats {
	t.mu.Lock()
	p, idle, m := t.p, t.idle, t.meta
	t.mu.Unlock()
	switch {
	case p != nil:
		return p.Stats()
	case idle != nil:
		return *idle
	case m == nil:
		return stages.Stats{}
	}
	st := recordStats(t.options().cfg.OutDir, m)
	t.mu.Lock()
	if t.p == nil && t.idle == nil {
		t.idle = &st
	}
	t.mu.Unlock()
	return st
}

// State is where the torrent is; Err is the error of a Failed one.
func (t *Torrent) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// Err is the outcome of the torrent's last run: nil while running and once finished.
func (t *Torrent) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Done is closed when the torrent's current run ends (finished, failed, paused, removed).
func (t *Torrent) Done() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done == nil {
		d := make(chan struct{})
		close(d)
		return d
	}
	return t.done
}

// Resume starts the torrent, from its resume record: a paused torrent, or one that failed.
// With its session's limit of active torrents of its kind reached, it is Queued instead,
// and starts in its turn (queue.go).
func (t *Torrent) Resume() error { return t.resume(false) }

// resume starts a run; fromQueue when the queue gives a Queued torrent its slot.
func (t *Torrent) resume(fromQueue bool) error {
	started := false
	if fromQueue {
		defer func() {
			if !started { // no longer queued, or it could not start: the slot goes on
				t.s.queue.done(t)
			}
		}()
	}
	t.mu.Lock()
	if fromQueue != (t.state == Queued) { // Resume of a queued torrent: it waits its turn
		t.mu.Unlock()
		return nil
	}
	if t.state == Checking {
		t.resumeAfterCheck = true
		t.mu.Unlock()
		return nil
	}
	if t.state == Running || t.state == Removed || t.starting {
		st := t.state
		t.mu.Unlock()
		if st == Removed {
			return errors.New("session: torrent removed")
		}
		return nil
	}
	t.starting = true
	m := t.meta
	t.mu.Unlock()
	p, ln, err := t.pipeline(m)
	var kind queueKind
	if err == nil {
		kind = t.queueKind(p)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.starting = false
	if err != nil {
		if fromQueue {
			t.state, t.err = Failed, err
		}
		return err
	}
	switch {
	case t.state == Removed:
		return errors.New("session: torrent removed")
	case t.state == Checking: // Verify began meanwhile: it resumes the torrent after its check
		t.resumeAfterCheck = true
		return nil
	case fromQueue && t.state != Queued: // paused meanwhile: the slot goes on
		return nil
	case t.s.ctx.Err() != nil:
		return errors.New("session: closed")
	case !t.s.queue.admit(t, kind):
		t.state, t.err = Queued, nil
		return nil
	}
	started = true
	ctx, cancel := context.WithCancel(t.s.ctx)
	t.p, t.ln, t.cancel, t.done, t.err, t.state, t.idle = p, ln, cancel, make(chan struct{}), nil, Running, nil
	done := t.done
	t.s.wg.Add(1)
	go func() {
		defer t.s.wg.Done()
		err := p.Run(ctx)
		ln.Close()
		t.seed.ranUploaded(p.Stats().Uploaded)
		t.mu.Lock()
		switch {
		case t.state != Running: // paused or removed meanwhile
		case err == nil:
			t.state = Finished
		case ctx.Err() != nil:
			t.state = Paused
		default:
			t.state, t.err = Failed, err
		}
		st := t.state
		t.mu.Unlock()
		t.s.queue.ended(t, st)
		close(done)
	}()
	return nil
}

// pipeline builds a run of the torrent: from m when its metadata is known, else from its
// magnet link.
func (t *Torrent) pipeline(m *metainfo.MetaInfo) (*Pipeline, *chanListener, error) {
	sc := t.s.cfg
	opts := []Option{WithConfig(t.config()), WithLogger(sc.Log.With("torrent", fmt.Sprintf("%x", t.hash[:6])))}
	if sc.DHT != nil {
		opts = append(opts, WithDHT(sc.DHT))
	}
	if sc.Events != nil {
		opts = append(opts, WithEvents(func(e stages.Event) { sc.Events(t, e) }))
	}
	opts = append(opts, t.opts...)
	ln := newChanListener(t.s.ln.Addr())
	opts = append(opts, withListener(ln), withOnMeta(t.setMeta), withReaders(t.readers), t.s.identity(), withShared(t.s.shared), withTorrentLimits(t))
	opts = append(opts, withConnBudget(t.s.conns), withQueueEvents(t), withSeedLimits(t.seed))
	var p *Pipeline
	var err error
	if m != nil {
		p, err = New(m, opts...)
	} else {
		p, err = NewMagnet(t.src.mag, opts...)
	}
	return p, ln, err
}

// identity makes a torrent's run the session's, whatever Config its options gave: the
// session's port (announced) and peer id.
func (s *Session) identity() Option {
	return func(p *Pipeline) { p.cfg.Port, p.cfg.PeerID, p.cfg.NoListen = s.port, s.cfg.PeerID, false }
}

// config is the torrent's Config: the session's defaults, with the session's port and
// peer id.
func (t *Torrent) config() Config {
	c := t.s.cfg.Defaults
	c.Port, c.PeerID, c.NoListen = t.s.port, t.s.cfg.PeerID, false
	return c
}

// Pause stops the torrent's run, or its Verify, and waits for it; its resume record is
// saved, and Resume goes on from there.
func (t *Torrent) Pause() {
	t.mu.Lock()
	if t.state == Running || t.state == Checking || t.state == Queued {
		t.state = Paused
	}
	t.resumeAfterCheck = false
	cancel, done := t.cancel, t.done
	t.mu.Unlock()
	t.s.queue.leave(t)
	if cancel != nil {
		cancel()
		<-done
	}
}

// Remove stops the torrent and forgets it; with deleteData its files, resume record and
// kept metadata are deleted too (only the torrent's own files under its OutDir).
func (t *Torrent) Remove(deleteData bool) error {
	t.Pause()
	t.readers.end(errRemoved)
	t.mu.Lock()
	t.state = Removed
	m := t.meta
	t.mu.Unlock()
	t.s.forget(t)
	if !deleteData {
		return nil
	}
	out := t.options().cfg.OutDir // the torrent's own, if its options set one
	var errs []error
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	remove(resume.Path(out, t.hash))
	remove(resume.MetadataPath(out, t.hash))
	remove(resume.SelectionPath(out, t.hash))
	remove(resume.PartPath(out, t.hash))
	if m != nil {
		for _, f := range m.Info.Files {
			remove(filepath.Join(append([]string{out}, f.Path...)...))
		}
		// Directories of the torrent left empty go too; a directory holding anything
		// else stays.
		for _, f := range m.Info.Files {
			for dir := filepath.Dir(filepath.Join(f.Path...)); dir != "." && dir != "/"; dir = filepath.Dir(dir) {
				os.Remove(filepath.Join(out, dir))
			}
		}
	}
	return errors.Join(errs...)
}

// deliver hands an incoming connection to the torrent's run; false when it is not running.
func (t *Torrent) deliver(c net.Conn) bool {
	t.mu.Lock()
	ln := t.ln
	running := t.state == Running
	t.mu.Unlock()
	return running && ln != nil && ln.deliver(c)
}

// chanListener is a net.Listener fed by the session's router: one per torrent run.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	quit  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), quit: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.quit:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.quit) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// deliver passes c to Accept, unless the listener closes first or nobody accepts for a
// while (the run is busy shutting down).
func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.quit:
		return false
	case <-time.After(routeTimeout):
		return false
	}
}
