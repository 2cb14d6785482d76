package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

// daemon is the RPC's Backend over a pipeline.Session. Lock order: d.mu, then an entry's
// mu; neither is held across a call that waits for a run (Pause, Resume, Remove), since
// the run's events take them.
type daemon struct {
	log      *slog.Logger
	cfg      pipeline.Config // each torrent's, before its own directory and peer limit
	slots    int
	root     string // the download root: absolute, symbolic links resolved
	stateDir string
	info     transmission.SessionInfo
	sess     *pipeline.Session
	began    time.Time
	ctx      context.Context // ends when the daemon stops: the goroutines of wg return
	stop     context.CancelFunc
	wg       sync.WaitGroup // the sampler, awaitInfo, rechecks, saves after an event
	closeReq chan struct{}  // closed by session-close (Close): the daemon stops as on SIGTERM
	closeOne sync.Once

	mu       sync.Mutex
	entries  []*entry // in id order
	byHash   map[[20]byte]*entry
	nextID   int
	settings transmission.SessionSettings
	cum      transmission.StatsBlock // before this run
	added    int64                   // torrents added in this run
	closed   bool
	// restoring is set while restore adds the state file's torrents: a save then would
	// write only those added so far, and a kill before the next would lose the others.
	restoring bool

	saveMu sync.Mutex // one state write at a time, in order
}

var _ transmission.Backend = (*daemon)(nil)

// entry is one torrent of the daemon.
type entry struct {
	id   int
	hash [20]byte
	link string // the magnet link it was added from, if it was

	mu       sync.Mutex
	t        *pipeline.Torrent // nil until Session.Add returns
	dir      string
	name     string
	file     string // its .torrent below the state dir, once known
	paused   bool   // stopped by the user or by its seed limit: stays stopped across restarts
	finished bool   // stopped by its seed limit, not started since (daemon_seed.go)
	added    time.Time
	done     time.Time // when it was first complete
	startAt  time.Time
	active   time.Time // last byte moved
	settings transmission.TorrentSettings
	wanted   []bool
	prios    []transmission.Priority
	have     wire.Bitfield // pieces known verified: the resume record, then PieceVerified events
	checking bool          // a recheck of a stopped torrent runs
	moving   bool          // a torrent-set-location runs (daemon_location.go)
	failed   bool          // its failure was logged

	// Counters: those of earlier runs (base) plus the current run's, unless stale (a run is
	// being replaced and its counters are in base already).
	downBase, upBase   int64
	stale              bool
	lastDown, lastUp   int64 // ever, at the last tick
	down0, up0         int64 // ever, when the daemon started
	rateDown, rateUp   float64
	secsDown, secsSeed int64
	peers              []transmission.Peer                 // its run's at the last tick (daemon_peers.go)
	trackers           map[string]transmission.TrackerStat // each tracker's last announce, by URL (daemon_stats.go)
	queued             *int                                // its place in the queue at the last save (daemon_queue.go)
}

func newDaemon(f *daemonFlags, log *slog.Logger, st *daemonState) *daemon {
	d := &daemon{log: log, cfg: f.cfg, slots: f.slots, root: f.root, stateDir: f.stateDir, began: time.Now(),
		byHash: map[[20]byte]*entry{}, nextID: 1, settings: st.Session, cum: st.Cumulative, closeReq: make(chan struct{})}
	d.cfg.PeerID = pipeline.NewPeerID()
	if d.settings.DownloadDir == "" || d.within(d.settings.DownloadDir) != nil {
		d.settings.DownloadDir = f.root
	}
	if st.Version == stateVersion && len(st.Torrents) == 0 && st.Session == (transmission.SessionSettings{}) {
		d.settings.StartAddedTorrents = true // a first start: transmission's defaults
		d.settings.PeerLimitGlobal, d.settings.PeerLimitPerTorrent = 200, f.cfg.MaxPeers
	}
	queueDefaults(&d.settings) // daemon_queue.go
	d.cum.SessionCount++
	enc := map[stages.Encryption]string{stages.EncryptOff: "tolerated", stages.EncryptPrefer: "preferred", stages.EncryptRequire: "required"}
	d.info = transmission.SessionInfo{Version: "3.00 (BitStorm)", ConfigDir: f.stateDir, PEXEnabled: !f.cfg.NoPex, Encryption: enc[f.cfg.Encryption]}
	return d
}

// start takes the session and starts the once-a-second sampling of the torrents.
func (d *daemon) start(sess *pipeline.Session) {
	d.sess = sess
	d.cfg.Port = sess.Port()
	d.info.PeerPort = int(sess.Port())
	d.ctx, d.stop = context.WithCancel(context.Background())
	d.goWait(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-d.ctx.Done():
				return
			case now := <-tick.C:
				d.sample(now, now.Sub(last))
				last = now
			}
		}
	})
}

// goWait runs f in a goroutine that close waits for; once the daemon closes, it does not
// run f. It must not be called with d.mu held.
func (d *daemon) goWait(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// close stops every torrent (each saves its resume record) and saves the state.
func (d *daemon) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.stop()
	d.wg.Wait()
	d.save() // with the counters as they are, before the runs end
	d.sess.Close()
	d.save()
}

// restore adds the torrents of the state file with the ids they had; one that cannot be
// added is logged and dropped.
func (d *daemon) restore(st *daemonState) {
	d.mu.Lock()
	d.restoring = true
	d.mu.Unlock()
	for _, rec := range restoreOrder(st.Torrents) { // daemon_queue.go
		sp := addSpec{rec: rec}
		var err error
		if rec.TorrentFile != "" {
			sp.m, err = metainfo.Load(filepath.Join(d.stateDir, rec.TorrentFile))
		} else {
			sp.mag, err = magnet.Parse(rec.Magnet)
			sp.link = rec.Magnet
		}
		if err == nil {
			_, _, err = d.add(sp)
		}
		if err != nil {
			d.noteTorrent(evDropped, rec.ID, rec.Name, "hash", rec.Hash, "err", err)
		}
	}
	d.mu.Lock()
	d.restoring = false
	d.mu.Unlock()
	d.save()
}

// addSpec is a torrent to add: m (its .torrent bytes in raw, to keep) or the magnet link
// mag, and its record: settings, directory, counters.
type addSpec struct {
	m    *metainfo.MetaInfo
	raw  []byte
	mag  *magnet.Magnet
	link string
	rec  torrentRecord
}

// add adds a torrent to the session; the one it holds already, with true, when it has it.
func (d *daemon) add(sp addSpec) (*entry, bool, error) {
	hash := sp.infoHash()
	rec := sp.rec
	e := &entry{hash: hash, link: sp.link, dir: rec.DownloadDir, name: rec.Name, file: rec.TorrentFile, paused: rec.Paused, finished: rec.Finished,
		added: unix(rec.Added), done: unix(rec.Done), settings: rec.Settings, wanted: rec.Wanted, prios: rec.Priorities,
		downBase: rec.Downloaded, upBase: rec.Uploaded, lastDown: rec.Downloaded, lastUp: rec.Uploaded,
		down0: rec.Downloaded, up0: rec.Uploaded, secsDown: rec.SecsDown, secsSeed: rec.SecsSeed}
	if e.added.IsZero() {
		e.added = time.Now()
	}
	if e.settings.PeerLimit == 0 { // session-set's peer-limit-per-torrent, else --max-peers
		d.mu.Lock()
		e.settings.PeerLimit = d.settings.PeerLimitPerTorrent
		d.mu.Unlock()
	}
	if e.settings.PeerLimit <= 0 {
		e.settings.PeerLimit = d.cfg.MaxPeers
	}
	if e.name == "" && sp.mag != nil {
		e.name = sp.mag.Name
	}
	if sp.m != nil {
		e.name = sp.m.Info.Name
		e.have = loadHave(e.dir, sp.m)
	}
	if err := d.within(e.dir); err != nil {
		return nil, false, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, false, errors.New("the daemon is stopping")
	}
	if old := d.byHash[hash]; old != nil {
		d.mu.Unlock()
		return old, true, nil
	}
	e.id = d.nextID
	if rec.ID > 0 && !d.idTaken(rec.ID) { // restored: the id it had
		e.id = rec.ID
	}
	d.nextID = max(d.nextID, e.id+1)
	d.byHash[hash] = e // before Session.Add: its events may come first
	d.mu.Unlock()

	t, err := d.addToSession(e, sp)
	if err != nil {
		d.mu.Lock()
		delete(d.byHash, hash)
		d.mu.Unlock()
		return nil, false, err
	}
	t.SetHonorsSessionLimits(e.settings.HonorsSessionLimits) // its speed limits came with its Config (daemon_limits.go)
	t.AddUploaded(rec.Uploaded)                              // toward its seed ratio, which came with its Config too (daemon_seed.go)
	e.mu.Lock()
	e.t = t
	if !e.paused {
		e.startAt = time.Now()
	}
	e.mu.Unlock()
	d.mu.Lock()
	i, _ := slices.BinarySearchFunc(d.entries, e.id, func(x *entry, id int) int { return x.id - id })
	d.entries = slices.Insert(d.entries, i, e)
	d.mu.Unlock()
	if sp.mag != nil {
		d.goWait(func() { d.awaitInfo(e, t) })
	}
	return e, false, nil
}

// addToSession keeps the torrent's .torrent in the state dir and adds it to the session.
func (d *daemon) addToSession(e *entry, sp addSpec) (*pipeline.Torrent, error) {
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	if sp.raw != nil {
		e.file = torrentPath(e.hash)
		if err := writeAtomic(filepath.Join(d.stateDir, e.file), sp.raw); err != nil {
			return nil, fmt.Errorf("keeping the .torrent: %w", err)
		}
	}
	t, err := d.sess.Add(source(sp.m, sp.link), e.paused, d.torrentOptions(e)...)
	if err != nil && sp.raw != nil {
		os.Remove(filepath.Join(d.stateDir, e.file))
	}
	return t, err
}

// source is a torrent to add to the session: from m when its metadata is known, else
// from its magnet link.
func source(m *metainfo.MetaInfo, link string) pipeline.Source {
	if m != nil {
		return pipeline.FromMetaInfo(m)
	}
	return pipeline.FromMagnet(link)
}

func (sp addSpec) infoHash() [20]byte {
	if sp.m != nil {
		return sp.m.InfoHash
	}
	return sp.mag.InfoHash
}

// torrentOptions are e's options: the daemon's config with e's directory and peer limit
// (the session's port and peer id with them: WithConfig replaces the whole Config), a
// choker, and e's file selection.
func (d *daemon) torrentOptions(e *entry) []pipeline.Option {
	cfg := d.cfg
	cfg.OutDir = e.dir
	if e.settings.PeerLimit > 0 {
		cfg.MaxPeers = e.settings.PeerLimit
	}
	cfg.DownloadLimit, cfg.UploadLimit = torrentLimits(e.settings) // its first run's; SetTorrent changes them
	cfg.SeedRatio, cfg.SeedIdle = seedLimits(d.Settings(), e.settings)
	opts := []pipeline.Option{pipeline.WithConfig(cfg), pipeline.WithChoker(&stages.RateChoker{Slots: d.slots})}
	return append(opts, fileSelectionOptions(e.wanted, e.prios)...)
}

// awaitInfo keeps a magnet link's .torrent in the state dir once its metadata arrives.
func (d *daemon) awaitInfo(e *entry, t *pipeline.Torrent) {
	select {
	case <-t.GotInfo():
	case <-d.ctx.Done():
		return
	}
	m := t.Meta()
	file := torrentPath(e.hash)
	if err := writeAtomic(filepath.Join(d.stateDir, file), metainfo.Torrent(m.RawInfo, m.AnnounceList)); err != nil {
		d.log.Warn("cannot keep the metadata; the magnet link stays", "id", e.id, "err", err)
		return
	}
	e.mu.Lock()
	e.name, e.file = m.Info.Name, file
	if e.have == nil {
		e.have = wire.NewBitfield(m.Info.NumPieces())
	}
	e.mu.Unlock()
	d.note(evMetadata, e, "hash", hex.EncodeToString(e.hash[:]))
	d.save()
}

// torrent is e's Torrent, set under e.mu when the entry's torrent joins the session.
func (e *entry) torrent() *pipeline.Torrent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.t
}

// loadHave is the bitfield of m's resume record in dir, or an empty one.
func loadHave(dir string, m *metainfo.MetaInfo) wire.Bitfield {
	rec, err := resume.Load(resume.Path(dir, m.InfoHash), &m.Info, m.InfoHash)
	if err != nil {
		return wire.NewBitfield(m.Info.NumPieces())
	}
	return rec.Pieces
}

// idTaken reports whether a torrent has id. Called with d.mu.
func (d *daemon) idTaken(id int) bool {
	for _, e := range d.byHash {
		if e.id == id {
			return true
		}
	}
	return false
}

// list is the daemon's entries, in id order.
func (d *daemon) list() []*entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.entries)
}

func (d *daemon) byID(id int) (*entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.entries {
		if e.id == id {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no torrent with id %d", id)
}

// within checks that dir is inside the download root, symbolic links resolved as far as
// dir exists.
func (d *daemon) within(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%q: not an absolute path", dir)
	}
	real := filepath.Clean(dir)
	// Resolve the longest existing prefix: a link inside the root may point out of it.
	for p, rest := real, ""; ; p, rest = filepath.Dir(p), filepath.Join(filepath.Base(p), rest) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			real = filepath.Join(r, rest)
			break
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	if real != d.root && !strings.HasPrefix(real, d.root+string(filepath.Separator)) {
		return fmt.Errorf("%q: outside the download directory %s", dir, d.root)
	}
	return nil
}

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

func unixOr0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// readTorrentFile reads a local .torrent for torrent-add or the watch dir, at most
// metainfo.MaxTorrentSize bytes.
func readTorrentFile(path string) ([]byte, *metainfo.MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, metainfo.MaxTorrentSize+1))
	if err != nil {
		return nil, nil, err
	}
	m, err := metainfo.Parse(bytes.NewReader(b))
	return b, m, err
}

// freeSpace is statfs of path.
func freeSpace(path string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}
