package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/stages"
)

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

// stopping marks a running torrent paused, ahead of the end of its run.
func (t *Torrent) stopping() {
	t.mu.Lock()
	if t.state == Running {
		t.state = Paused
	}
	t.mu.Unlock()
}
