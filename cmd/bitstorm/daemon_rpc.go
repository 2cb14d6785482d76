package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/pipeline"
)

// The daemon's transmission.Backend methods.

// Torrents is a snapshot of every torrent, in id order.
func (d *daemon) Torrents() []*transmission.Torrent {
	es := d.list()
	out := make([]*transmission.Torrent, len(es))
	for i, e := range es {
		out[i] = e.view()
	}
	numberQueue(out) // daemon_queue.go
	return out
}

// Add adds a torrent from the RPC.
func (d *daemon) Add(a transmission.AddArgs) (*transmission.Torrent, bool, error) {
	var sp addSpec
	var err error
	switch {
	case a.Torrent != nil:
		sp.raw = a.Torrent
		sp.m, err = metainfo.Parse(strings.NewReader(string(a.Torrent)))
	case a.Magnet != "":
		sp.link = a.Magnet
		sp.mag, err = magnet.Parse(a.Magnet)
	default:
		// A local .torrent only from inside the download root: the RPC must not make the
		// daemon read files elsewhere.
		path := filepath.Clean(a.Path)
		if err = d.within(path); err == nil {
			sp.raw, sp.m, err = readTorrentFile(path)
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("invalid or corrupt torrent: %w", err)
	}
	d.mu.Lock()
	dir := d.settings.DownloadDir
	d.mu.Unlock()
	if a.DownloadDir != "" {
		dir = filepath.Clean(a.DownloadDir)
	}
	if err := d.within(dir); err != nil {
		return nil, false, fmt.Errorf("download-dir %w", err)
	}
	sp.rec = torrentRecord{DownloadDir: dir, Paused: a.Paused, Settings: transmission.TorrentSettings{
		PeerLimit: a.PeerLimit, BandwidthPriority: a.BandwidthPriority, HonorsSessionLimits: true, Labels: a.Labels}}
	if sp.m != nil {
		sp.rec.Wanted, sp.rec.Priorities, err = addSelection(len(sp.m.Info.Files), a)
		if err != nil {
			return nil, false, err
		}
	}
	e, dup, err := d.add(sp)
	if err != nil {
		return nil, false, err
	}
	if !dup {
		d.mu.Lock()
		d.added++
		d.mu.Unlock()
		d.note(evAdded, e, "hash", hex.EncodeToString(e.hash[:]), "dir", e.dir, "paused", a.Paused)
		d.save()
	}
	return e.view(), dup, nil
}

// addSelection is a torrent-add's file choice for n files: nil, nil when it makes none.
func addSelection(n int, a transmission.AddArgs) ([]bool, []transmission.Priority, error) {
	if len(a.FilesWanted)+len(a.FilesUnwanted)+len(a.PriorityHigh)+len(a.PriorityLow)+len(a.PriorityNormal) == 0 {
		return nil, nil, nil
	}
	wanted, prios := make([]bool, n), make([]transmission.Priority, n)
	for i := range wanted {
		wanted[i] = len(a.FilesWanted) == 0 // files-wanted alone wants only those
	}
	for _, set := range []struct {
		name string
		l    []int
		f    func(i int)
	}{
		{"files-wanted", a.FilesWanted, func(i int) { wanted[i] = true }},
		{"files-unwanted", a.FilesUnwanted, func(i int) { wanted[i] = false }},
		{"priority-high", a.PriorityHigh, func(i int) { prios[i] = transmission.PriorityHigh }},
		{"priority-low", a.PriorityLow, func(i int) { prios[i] = transmission.PriorityLow }},
		{"priority-normal", a.PriorityNormal, func(i int) { prios[i] = transmission.PriorityNormal }},
	} {
		for _, i := range set.l {
			if i < 0 || i >= n {
				return nil, nil, fmt.Errorf("%s: file %d does not exist (the torrent has %d files)", set.name, i, n)
			}
			set.f(i)
		}
	}
	return wanted, prios, nil
}

// Start resumes a torrent: one stopped, or one that failed; it may wait in the queue.
func (d *daemon) Start(id int) error { return d.startWith(id, (*pipeline.Torrent).Resume) }

// StartNow resumes a torrent at once, past the queue (daemon_queue.go).
func (d *daemon) StartNow(id int) error { return d.startWith(id, (*pipeline.Torrent).ResumeNow) }

func (d *daemon) startWith(id int, resume func(*pipeline.Torrent) error) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.paused = false
	e.mu.Unlock()
	d.restartPastRatio(e) // daemon_seed.go
	err = e.resume(resume)
	d.save()
	if err == nil {
		d.note(evStarted, e)
	}
	return err
}

// resume starts e's torrent with start if it does not run, its counters carried over to
// the new run.
func (e *entry) resume(start func(*pipeline.Torrent) error) error {
	e.mu.Lock()
	t := e.t
	running := t.State() == pipeline.Running
	if !running && !e.stale { // stale: in base already (a queued torrent's, by sample)
		st := t.Stats()
		e.downBase, e.upBase = e.downBase+st.Downloaded, e.upBase+st.Uploaded
		e.stale = true
	}
	e.mu.Unlock()
	if running {
		return nil
	}
	err := start(t)
	e.mu.Lock()
	// Queued, the run is not replaced yet: base holds its counters until it is (sample).
	e.stale, e.failed = t.State() == pipeline.Queued, false
	if err == nil {
		e.startAt = time.Now()
	}
	e.mu.Unlock()
	return err
}

// Stop pauses a torrent; it stays stopped across restarts until started.
func (d *daemon) Stop(id int) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.paused = true
	t := e.t
	e.mu.Unlock()
	t.Pause() // waits for the run to end, its resume record saved
	d.save()
	d.note(evStopped, e)
	return nil
}

// Verify rechecks a torrent's data (pipeline.Torrent.Verify): a running torrent stops for
// the check and goes on from what it found; a stopped one stays stopped, its progress
// now what its files hold.
func (d *daemon) Verify(id int) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	t, checking := e.t, e.checking
	e.mu.Unlock()
	m := t.Meta()
	if m == nil {
		return errors.New("its metadata is not known yet")
	}
	if checking {
		return nil
	}
	e.mu.Lock()
	e.checking = true
	e.mu.Unlock()
	d.note(evVerifying, e)
	d.goWait(func() {
		err := t.Verify(d.ctx)
		have := loadHave(e.dir, m)
		n := have.Count()
		e.mu.Lock()
		e.have, e.checking = have, false
		e.mu.Unlock()
		if err != nil {
			d.note(evVerifyFailed, e, "err", err)
			return
		}
		d.note(evVerified, e, "pieces", n, "of", m.Info.NumPieces())
	})
	return nil
}

// Remove forgets a torrent; with deleteData its files go too, and what BitStorm keeps
// beside them for it (resume record, metadata, selection, part file).
func (d *daemon) Remove(id int, deleteData bool) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.entries = slices.DeleteFunc(d.entries, func(x *entry) bool { return x == e })
	delete(d.byHash, e.hash)
	d.mu.Unlock()
	e.mu.Lock()
	t, file := e.t, e.file
	e.mu.Unlock()
	m := t.Meta()
	// The pipeline deletes below the session's default directory, not a torrent's own:
	// the daemon deletes itself.
	err = t.Remove(false)
	if deleteData {
		err = errors.Join(err, deleteTorrentData(e.dir, e.hash, m))
	}
	if file != "" {
		os.Remove(filepath.Join(d.stateDir, file))
	}
	d.save()
	d.note(evRemoved, e, "data_deleted", deleteData)
	return err
}

// deleteTorrentData deletes m's files below dir, the directories they leave empty, and
// the files BitStorm keeps for the torrent in dir/.bitstorm (all named by its hash).
func deleteTorrentData(dir string, hash [20]byte, m *metainfo.MetaInfo) error {
	var errs []error
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	kept, _ := filepath.Glob(filepath.Join(dir, ".bitstorm", hex.EncodeToString(hash[:])+"*"))
	for _, k := range kept {
		remove(k)
	}
	os.Remove(filepath.Join(dir, ".bitstorm")) // when empty
	if m == nil {
		return errors.Join(errs...)
	}
	for _, f := range m.Info.Files {
		remove(filepath.Join(append([]string{dir}, f.Path...)...))
	}
	for _, f := range m.Info.Files {
		for sub := filepath.Dir(filepath.Join(f.Path...)); sub != "." && sub != "/"; sub = filepath.Dir(sub) {
			os.Remove(filepath.Join(dir, sub)) // when empty
		}
	}
	return errors.Join(errs...)
}

// SetTorrent keeps a torrent's settings. Its speed and seed limits act at once
// (daemon_limits.go, daemon_seed.go); the peer limit from the torrent's next start in a
// later daemon run.
func (d *daemon) SetTorrent(id int, s transmission.TorrentSettings) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	if err := e.applyLimits(s); err != nil {
		return err
	}
	e.mu.Lock()
	e.settings = s
	e.mu.Unlock()
	if err := e.applySeedLimits(d.Settings()); err != nil {
		return err
	}
	d.save()
	return nil
}

// SetFiles applies a file selection and priorities (daemon_files.go) and keeps them.
func (d *daemon) SetFiles(id int, wanted []bool, prios []transmission.Priority) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	t := e.torrent()
	if err := applyFileSelection(t, wanted, prios); err != nil {
		return err
	}
	e.mu.Lock()
	e.wanted, e.prios = wanted, prios
	e.mu.Unlock()
	d.save()
	return nil
}

// Settings are the session's settings.
func (d *daemon) Settings() transmission.SessionSettings {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settings
}

// SetSettings keeps the session's settings; the download directory must be inside the
// root. Speed and seed limits act at once (daemon_limits.go, daemon_seed.go).
func (d *daemon) SetSettings(s transmission.SessionSettings) error {
	s.DownloadDir = filepath.Clean(s.DownloadDir)
	if err := d.within(s.DownloadDir); err != nil {
		return fmt.Errorf("download-dir %w", err)
	}
	if err := d.applySessionLimits(s); err != nil {
		return err
	}
	d.applyQueue(s) // daemon_queue.go
	d.mu.Lock()
	d.settings = s
	d.mu.Unlock()
	d.applySessionSeedLimits(s)
	d.save()
	return nil
}

// Info is the session's fixed facts.
func (d *daemon) Info() transmission.SessionInfo { return d.info }

// Stats are session-stats' counters.
func (d *daemon) Stats() transmission.SessionStats {
	es := d.list()
	var s transmission.SessionStats
	s.TorrentCount = len(es)
	for _, e := range es {
		e.mu.Lock()
		t := e.t
		s.DownloadSpeed += int64(e.rateDown)
		s.UploadSpeed += int64(e.rateUp)
		e.mu.Unlock()
		if t.State() == pipeline.Running {
			s.ActiveTorrentCount++
		} else {
			s.PausedTorrentCount++
		}
	}
	s.Current = d.current(es)
	d.mu.Lock()
	s.Cumulative = d.cum
	d.mu.Unlock()
	s.Cumulative.DownloadedBytes += s.Current.DownloadedBytes
	s.Cumulative.UploadedBytes += s.Current.UploadedBytes
	s.Cumulative.FilesAdded += s.Current.FilesAdded
	s.Cumulative.SecondsActive += s.Current.SecondsActive
	return s
}

// FreeSpace reports the file system of a directory inside the download root.
func (d *daemon) FreeSpace(path string) (int64, int64, error) {
	if err := d.within(filepath.Clean(path)); err != nil {
		return 0, 0, err
	}
	return freeSpace(path)
}

// Reannounce asks a running torrent's trackers for peers now; a torrent that does not
// run has nobody to ask.
func (d *daemon) Reannounce(id int) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	if !e.torrent().Reannounce() {
		return errors.New("it is not running")
	}
	return nil
}

// Close stops the daemon as SIGTERM does (session-close): the RPC answers the request
// first, as its server shuts down gracefully.
func (d *daemon) Close() { d.closeOne.Do(func() { close(d.closeReq) }) }
