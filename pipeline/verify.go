package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// A torrent that is not running still has progress: what its resume record says (or, for
// a torrent never run in this process, the record a run would trust), and after Verify,
// what its files hold. Verify rechecks a torrent's files against its piece hashes and
// saves what it finds as the resume record, so that the next run starts from it.

// ErrVerifyStorage is Verify's error for a torrent whose options give it a storage of
// their own (WithStorage, WithStorageFor): only BitStorm's own files can be rechecked
// apart from a run.
var ErrVerifyStorage = errors.New("verify: the torrent's storage is not BitStorm's files")

// Verify rechecks the torrent's files against its piece hashes, while ctx lasts. A
// running or queued torrent stops for the check (its state is Checking) and goes on
// afterwards from what the check found (or queues again); a paused one stays paused, its progress (Stats)
// now what its files hold. The result is saved as the resume record: bytes that went bad
// on disk are fetched again, and bytes put there by hand are trusted. Pause or Remove
// during the check ends it (the record is then left as it was), as does ctx.
func (t *Torrent) Verify(ctx context.Context) error {
	m := t.Meta()
	if m == nil {
		return fmt.Errorf("verify: %w", ErrNoInfo)
	}
	q := t.options()
	if q.store != nil || q.storeFor != nil {
		return ErrVerifyStorage
	}
	outDir := q.cfg.OutDir

	t.mu.Lock()
	switch t.state {
	case Removed:
		t.mu.Unlock()
		return errors.New("verify: torrent removed")
	case Checking:
		done := t.done
		t.mu.Unlock()
		<-done // one check at a time: this one's result is the caller's
		return nil
	}
	wasActive := t.state == Running || t.state == Queued
	t.state = Checking // the run's end now leaves the state alone, and Resume waits for us
	t.resumeAfterCheck = wasActive
	cancelRun, runDone := t.cancel, t.done
	t.mu.Unlock()
	t.s.queue.leave(t) // its slot, or its place in the queue: it asks again after the check
	if cancelRun != nil {
		cancelRun()
		<-runDone // the run saves its record as it ends; ours replaces it
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.s.ctx, cancel)
	defer stop()
	done := make(chan struct{})
	t.mu.Lock()
	if t.state != Checking { // paused or removed while the run ended
		t.mu.Unlock()
		return errors.New("verify: interrupted")
	}
	t.cancel, t.done = cancel, done
	t.p = nil // its Stats are the check's from now on
	t.idle = &stages.Stats{Total: m.Info.Length, NumPieces: m.Info.NumPieces()}
	t.mu.Unlock()

	have, err := checkFiles(ctx, outDir, m, func(n int) {
		t.mu.Lock()
		t.idle.Pieces = n // pieces read so far
		t.mu.Unlock()
	})
	if err == nil {
		err = saveChecked(outDir, m, have)
	}

	t.mu.Lock()
	checking := t.state == Checking
	if checking {
		t.state = Paused
	}
	again := checking && t.resumeAfterCheck && err == nil
	t.idle = nil // the record (or the files) tell again
	t.mu.Unlock()
	close(done)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("verify: interrupted: %w", err)
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	case again:
		return t.Resume()
	}
	return nil
}

// checkFiles hashes every piece of m in the files below outDir (and the part file for
// the bytes of files not created), reporting the count of pieces checked to progress.
func checkFiles(ctx context.Context, outDir string, m *metainfo.MetaInfo, progress func(checked int)) (wire.Bitfield, error) {
	stamps, err := resume.Stamp(outDir, &m.Info)
	if err != nil {
		return nil, err
	}
	if !anyData(stamps) {
		return wire.NewBitfield(m.Info.NumPieces()), nil // nothing on disk to read
	}
	r, err := resume.OpenReader(outDir, &m.Info)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := r.UsePart(resume.PartPath(outDir, m.InfoHash)); err != nil {
		return nil, err
	}
	return resume.Recheck(ctx, &m.Info, r, runtime.GOMAXPROCS(0), func(done, _ int) { progress(done) })
}

// saveChecked saves have, the pieces just checked, as m's resume record, stamped with
// its files as they are now.
func saveChecked(outDir string, m *metainfo.MetaInfo, have wire.Bitfield) error {
	stamps, err := resume.Stamp(outDir, &m.Info)
	if err != nil {
		return err
	}
	part, err := resume.StampPart(resume.PartPath(outDir, m.InfoHash))
	if err != nil {
		return err
	}
	for _, i := range m.Info.PadPieces() {
		have.Set(i)
	}
	return resume.Save(resume.Path(outDir, m.InfoHash), &resume.Record{InfoHash: m.InfoHash, Pieces: have, Files: stamps, Part: part})
}

// recordStats is the progress the resume record of m below outDir claims, when the files
// are as it says (a run would trust it); only the sizes otherwise. Wanted follows the
// saved file selection.
func recordStats(outDir string, m *metainfo.MetaInfo) stages.Stats {
	info := &m.Info
	st := stages.Stats{Total: info.Length, Wanted: info.Length, NumPieces: info.NumPieces()}
	prios, err := SavedFilePriorities(outDir, m)
	if err != nil {
		prios = nil
	}
	want := WantedPieces(info, prios)
	st.Wanted = 0
	for i := range info.NumPieces() {
		if want.Has(i) {
			st.Wanted += info.PieceSize(i)
		}
	}
	rec, err := resume.Load(resume.Path(outDir, m.InfoHash), info, m.InfoHash)
	if err != nil {
		return st
	}
	stamps, err := resume.Stamp(outDir, info)
	if err != nil || !rec.Matches(stamps) {
		return st
	}
	if part, err := resume.StampPart(resume.PartPath(outDir, m.InfoHash)); err != nil || !rec.PartMatches(part) {
		return st
	}
	for i := range info.NumPieces() {
		if !rec.Pieces.Has(i) {
			continue
		}
		st.Pieces++
		st.Verified += info.PieceSize(i)
		if want.Has(i) {
			st.WantedDone += info.PieceSize(i)
		}
	}
	return st
}

// options are the torrent's run options applied, without its metadata: its OutDir and
// storage.
func (t *Torrent) options() *Pipeline {
	return newPipeline(append([]Option{WithConfig(t.config())}, t.opts...))
}
