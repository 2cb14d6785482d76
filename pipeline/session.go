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
	"sync"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
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
