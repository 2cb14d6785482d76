package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/storage"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// A resume record (internal/resume) lists the pieces verified on disk. It is trusted only
// when every file's size and modification time are what they were when it was saved; any
// write since (a crash after the last save) changes them, and the data is rechecked instead.
// Saving takes the bitfield first, then syncs the files, then stamps them: the record never
// claims a piece that is not durable, and at most the pieces in flight are fetched again.

// preStamp records the files' stamps before storage.Open extends them, and the part
// file's (selection.go) before files created now take their bytes from it.
func (p *Pipeline) preStamp() []resume.FileStamp {
	stamps, err := resume.Stamp(p.cfg.OutDir, &p.meta.Info)
	if err != nil {
		return nil
	}
	part, err := resume.StampPart(resume.PartPath(p.cfg.OutDir, p.meta.InfoHash))
	if err != nil {
		return nil
	}
	p.sel.mu.Lock()
	p.sel.part = part
	p.sel.mu.Unlock()
	return stamps
}

// restore marks the pieces already verified in store before the run starts.
func (p *Pipeline) restore(ctx context.Context, store stages.Storage, stamps []resume.FileStamp) error {
	info := &p.meta.Info
	p.markPadPieces()
	var have wire.Bitfield
	fromRecord := false
	if p.store == nil { // our own files: the record, or a recheck when they hold anything
		rec, err := resume.Load(resume.Path(p.cfg.OutDir, p.meta.InfoHash), info, p.meta.InfoHash)
		switch {
		case err == nil && rec.Matches(stamps) && rec.PartMatches(p.partStamp()):
			have, fromRecord = rec.Pieces, true
			p.log.Info("resuming from record", "pieces", have.Count(), "of", info.NumPieces())
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			p.log.Warn("resume record unusable, rechecking", "err", err)
		case err == nil:
			p.log.Info("files changed since the resume record, rechecking")
		}
		if have == nil && !anyData(stamps) {
			return nil
		}
	} else if !p.cfg.Recheck {
		return nil
	}
	if have == nil {
		start := time.Now()
		var err error
		have, err = resume.Recheck(ctx, info, store, p.cfg.Verifiers, nil)
		if err != nil {
			return fmt.Errorf("recheck: %w", err)
		}
		secs := time.Since(start).Seconds()
		p.log.Info("rechecked data", "pieces", have.Count(), "of", info.NumPieces(),
			"mib_per_s", fmt.Sprintf("%.0f", float64(info.Length)/(1<<20)/max(secs, 1e-9)))
	}
	for i := range info.NumPieces() {
		if have.Has(i) {
			p.sched.MarkDone(i)
		}
	}
	if p.events != nil {
		p.events(stages.Resumed{Pieces: have.Count(), FromRecord: fromRecord})
	}
	return nil
}

// partStamp is the part file's stamp as preStamp took it.
func (p *Pipeline) partStamp() *resume.FileStamp {
	p.sel.mu.Lock()
	defer p.sel.mu.Unlock()
	return p.sel.part
}

func anyData(stamps []resume.FileStamp) bool {
	for _, s := range stamps {
		if s.Size > 0 {
			return true
		}
	}
	return false
}

// keepRecord saves the resume record every interval while pieces complete, until ctx ends.
// Once the download is complete, it makes the torrent's symbolic links (finishFiles).
func (p *Pipeline) keepRecord(ctx context.Context, store stages.Storage, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	saved := p.sched.Stats().Pieces
	complete := p.sched.Complete()
	for {
		select {
		case <-ctx.Done():
			p.finishFiles(store) // completion may have ended the run before it was seen
			return
		case <-complete:
			complete = nil
			p.finishFiles(store)
		case <-tick.C:
			if n := p.sched.Stats().Pieces; n != saved {
				if err := p.saveRecord(store); err != nil {
					p.log.Warn("saving resume record", "err", err)
					continue
				}
				saved = n
			}
		}
	}
}

// saveRecord writes the record of the pieces verified now; only for our own files.
func (p *Pipeline) saveRecord(store stages.Storage) error {
	if p.store != nil {
		return nil
	}
	have, _ := p.sched.Snapshot()
	if s, ok := store.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return err
		}
	}
	stamps, err := resume.Stamp(p.cfg.OutDir, &p.meta.Info)
	if err != nil {
		return err
	}
	part, err := resume.StampPart(resume.PartPath(p.cfg.OutDir, p.meta.InfoHash))
	if err != nil {
		return err
	}
	path := resume.Path(p.cfg.OutDir, p.meta.InfoHash)
	// The record's directory lies in the output directory: never write through a link
	// planted there, which could point anywhere.
	if fi, err := os.Lstat(filepath.Dir(path)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("resume record: %s: %w: symbolic link", filepath.Dir(path), storage.ErrUnsafePath)
	}
	return resume.Save(path, &resume.Record{InfoHash: p.meta.InfoHash, Pieces: have, Files: stamps, Part: part})
}
