package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/storage"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// Selective download. Each file has a priority; a piece's is the highest of the files it
// holds bytes of (as libtorrent's), so a piece shared by a selected and an unselected file
// is fetched whole and verified, and the unselected file's bytes in it go to the part
// file (internal/storage). Unselected files are not created. The selection is kept beside
// the resume record (resume.SelectionPath): a run without one goes on with it, a run
// that chooses otherwise applies its own choice; changes made while running
// (SetFilePriority) last until a run chooses otherwise.

// FilePriority is how much a file is wanted. The values are those kept in the selection
// file; FileLow came last, so they are not in order (rank orders them).
type FilePriority int8

const (
	// FileSkip is a file not wanted: not created (unless on disk already), its pieces not
	// fetched, and the download complete without it.
	FileSkip FilePriority = -1
	// FileNormal is the default.
	FileNormal FilePriority = 0
	// FileHigh is a file whose pieces go before the others (stages.PriorityHigh).
	FileHigh FilePriority = 1
	// FileLow is a file whose pieces go after the others (stages.PriorityLow):
	// Transmission's low priority.
	FileLow FilePriority = -2
)

// rank orders the priorities: skip, low, normal, high.
func (fp FilePriority) rank() int {
	switch fp {
	case FileSkip:
		return 0
	case FileLow:
		return 1
	case FileHigh:
		return 3
	}
	return 2
}

// valid reports whether fp is one of the priorities.
func (fp FilePriority) valid() bool { return fp >= FileLow && fp <= FileHigh }

func (fp FilePriority) String() string {
	switch fp {
	case FileSkip:
		return "skip"
	case FileLow:
		return "low"
	case FileNormal:
		return "normal"
	case FileHigh:
		return "high"
	}
	return fmt.Sprintf("FilePriority(%d)", int8(fp))
}

// WithFilePriorities sets each file's priority to f(i, file), file i of the torrent's
// info (as `bitstorm info` lists them, from 0), once the files are known.
func WithFilePriorities(f func(i int, file metainfo.File) FilePriority) Option {
	return WithFileSelection(func(info *metainfo.Info) ([]FilePriority, error) {
		prios := make([]FilePriority, len(info.Files))
		for i, file := range info.Files {
			prios[i] = f(i, file)
		}
		return prios, nil
	})
}

// WithFileSelection sets the files' priorities to what f returns for the torrent, one per
// file, once its files are known: at New for a .torrent, after the metadata for a magnet
// link. An error from f (a selection that does not fit the torrent) is Run's, before any
// file is created.
func WithFileSelection(f func(info *metainfo.Info) ([]FilePriority, error)) Option {
	return func(p *Pipeline) { p.sel.choose = f }
}

// selection is the pipeline's file priorities.
type selection struct {
	choose func(*metainfo.Info) ([]FilePriority, error) // WithFileSelection

	mu       sync.Mutex
	resolved bool
	own      bool           // our own files under OutDir (no WithStorage): the selection is kept
	err      error          // choose's, returned by Run
	prios    []FilePriority // one per file
	chosen   []FilePriority // choose's answer; nil without
	saved    *resume.Selection
	files    *storage.Files    // our own files once open, for Want
	part     *resume.FileStamp // the part file's stamp before the files were opened
}

// failed is choose's error.
func (sel *selection) failed() error {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	return sel.err
}

// resolve works out the priorities of m's files: choose's, unless the saved selection
// was chosen the same way (then the saved priorities, later changes included); without
// choose, the saved ones; else every file normal. Called with sel.mu held.
func (p *Pipeline) resolve(m *metainfo.MetaInfo) {
	sel := &p.sel
	if sel.resolved {
		return
	}
	sel.resolved = true
	sel.own = p.store == nil && p.storeFor == nil
	n := len(m.Info.Files)
	sel.prios = make([]FilePriority, n)
	if sel.own {
		saved, err := resume.LoadSelection(resume.SelectionPath(p.cfg.OutDir, m.InfoHash), n)
		switch {
		case err == nil:
			sel.saved = saved
		case !errors.Is(err, fs.ErrNotExist):
			p.log.Warn("ignoring the saved file selection", "err", err)
		}
	}
	if sel.choose != nil {
		chosen, err := sel.choose(&m.Info)
		if err == nil && len(chosen) != n {
			err = fmt.Errorf("file selection: %d priorities for %d files", len(chosen), n)
		}
		if err != nil {
			sel.err = err
			return
		}
		sel.chosen = slices.Clone(chosen)
	}
	switch saved := sel.saved; {
	case saved != nil && (sel.chosen == nil || slices.Equal(fromInt8(saved.Chosen), sel.chosen)):
		copy(sel.prios, fromInt8(saved.Priorities))
		if sel.chosen == nil && saved.Chosen != nil {
			sel.chosen = fromInt8(saved.Chosen)
		}
	case sel.chosen != nil:
		copy(sel.prios, sel.chosen)
	}
	for i, fp := range sel.prios {
		if !fp.valid() {
			sel.prios[i] = min(max(fp, FileSkip), FileHigh)
		}
	}
}

// applyFiles gives the new Scheduler the piece priorities of the files' (setMeta calls
// it, before the Readers raise theirs).
func (p *Pipeline) applyFiles(m *metainfo.MetaInfo) {
	sel := &p.sel
	sel.mu.Lock()
	defer sel.mu.Unlock()
	p.resolve(m)
	if sel.err != nil || !slices.ContainsFunc(sel.prios, func(fp FilePriority) bool { return fp != FileNormal }) {
		return
	}
	info := &m.Info
	p.sched.SetPriorities(func(piece int) stages.Priority { return piecePriority(info, sel.prios, piece) })
	if !sel.own {
		return
	}
	n, skipped := 0, 0
	for i, f := range info.Files {
		if f.OnDisk() {
			n++
			if sel.prios[i] == FileSkip {
				skipped++
			}
		}
	}
	p.log.Info("file selection", "files", n-skipped, "of", n, "wanted_bytes", p.sched.Stats().Wanted)
}

// openFiles opens our own files for the selection (storage.OpenSelected), and saves the
// selection when it was chosen or changed.
func (p *Pipeline) openFiles() (*storage.Files, error) {
	sel := &p.sel
	sel.mu.Lock()
	defer sel.mu.Unlock()
	if sel.err != nil {
		return nil, sel.err
	}
	info := &p.meta.Info
	fs, err := storage.OpenSelected(p.cfg.OutDir, info, storage.Selection{
		Want:     func(i int) bool { return sel.prios[i] != FileSkip },
		PartPath: resume.PartPath(p.cfg.OutDir, p.meta.InfoHash),
	})
	if err != nil {
		return nil, err
	}
	sel.files = fs
	if err := p.saveSelection(); err != nil {
		p.log.Warn("could not keep the file selection for a restart", "err", err)
	}
	return fs, nil
}

// saveSelection writes the selection beside the resume record when it differs from the
// one saved; a selection of every file at normal, chosen so or by default, is not kept.
// Called with sel.mu held.
func (p *Pipeline) saveSelection() error {
	sel := &p.sel
	path := resume.SelectionPath(p.cfg.OutDir, p.meta.InfoHash)
	plain := func(l []FilePriority) bool {
		return !slices.ContainsFunc(l, func(fp FilePriority) bool { return fp != FileNormal })
	}
	if plain(sel.prios) && plain(sel.chosen) {
		if sel.saved == nil {
			return nil
		}
		sel.saved = nil
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	next := &resume.Selection{Chosen: toInt8(sel.chosen), Priorities: toInt8(sel.prios)}
	if s := sel.saved; s != nil && slices.Equal(s.Chosen, next.Chosen) && slices.Equal(s.Priorities, next.Priorities) {
		return nil
	}
	if err := resume.SaveSelection(path, next); err != nil {
		return err
	}
	sel.saved = next
	return nil
}

// FilePriorities returns the priority of each file, nil before the metadata is known.
func (p *Pipeline) FilePriorities() []FilePriority {
	m := p.Meta()
	if m == nil {
		return nil
	}
	sel := &p.sel
	sel.mu.Lock()
	defer sel.mu.Unlock()
	p.resolve(m)
	return slices.Clone(sel.prios)
}

// SetFilePriority sets the priority of file i (from 0, in the order of the torrent's
// files), before Run or while it runs: a file wanted now is created with the bytes the
// part file held for it and its missing pieces are fetched; a file skipped now is fetched
// no further (it stays on disk, as what it holds). The choice is kept for the next run.
// Pieces a Reader raised keep their priority.
func (p *Pipeline) SetFilePriority(i int, fp FilePriority) error {
	m := p.Meta()
	if m == nil {
		return ErrNoInfo
	}
	if i < 0 || i >= len(m.Info.Files) {
		return fmt.Errorf("pipeline: file %d: out of range (%d files)", i, len(m.Info.Files))
	}
	if !fp.valid() {
		return fmt.Errorf("pipeline: file %d: priority %d", i, fp)
	}
	sel := &p.sel
	sel.mu.Lock()
	defer sel.mu.Unlock()
	p.resolve(m)
	if sel.err != nil {
		return sel.err
	}
	old := slices.Clone(sel.prios)
	if old[i] == fp {
		return nil
	}
	if fp != FileSkip && sel.files != nil {
		if err := sel.files.Want(i); err != nil && !errors.Is(err, storage.ErrClosed) {
			return fmt.Errorf("pipeline: file %d: %w", i, err)
		}
	}
	sel.prios[i] = fp
	info := &m.Info
	p.metaMu.Lock()
	sched := p.sched
	p.metaMu.Unlock()
	if f := info.Files[i]; f.Length > 0 && sched != nil {
		first, last := int(f.Offset/info.PieceLength), int((f.Offset+f.Length-1)/info.PieceLength)
		for piece := first; piece <= last; piece++ {
			// A piece a Reader raised keeps the Reader's priority, and gets the files'
			// once the Reader lets it go.
			p.readers.setBase(piece, piecePriority(info, sel.prios, piece))
		}
	}
	if sel.own {
		return p.saveSelection()
	}
	return nil
}

// piecePriority is the priority of piece for files of priorities prios: the highest of
// the files it holds bytes of (padding holds none); normal for a piece of no file.
func piecePriority(info *metainfo.Info, prios []FilePriority, piece int) stages.Priority {
	off := info.PieceOffset(piece)
	end := off + info.PieceSize(piece)
	best, any := FileSkip, false
	k := sort.Search(len(info.Files), func(k int) bool { return info.Files[k].Offset+info.Files[k].Length > off })
	for ; k < len(info.Files) && info.Files[k].Offset < end; k++ {
		if f := &info.Files[k]; f.OnDisk() && f.Length > 0 {
			if prios[k].rank() > best.rank() {
				best = prios[k]
			}
			any = true
		}
	}
	switch {
	case !any || best == FileNormal:
		return stages.PriorityNormal
	case best == FileSkip:
		return stages.PrioritySkip
	case best == FileLow:
		return stages.PriorityLow
	}
	return stages.PriorityHigh
}

// WantedPieces returns the pieces that files of priorities prios (one per file of info,
// nil: every file normal) want: those holding bytes of a file not skipped.
func WantedPieces(info *metainfo.Info, prios []FilePriority) wire.Bitfield {
	want := wire.NewBitfield(info.NumPieces())
	for i := range info.NumPieces() {
		if prios == nil || piecePriority(info, prios, i) != stages.PrioritySkip {
			want.Set(i)
		}
	}
	return want
}

// SavedFilePriorities returns the file selection kept in outDir for the torrent m, nil
// when there is none.
func SavedFilePriorities(outDir string, m *metainfo.MetaInfo) ([]FilePriority, error) {
	s, err := resume.LoadSelection(resume.SelectionPath(outDir, m.InfoHash), len(m.Info.Files))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return fromInt8(s.Priorities), nil
}

func toInt8(l []FilePriority) []int8 {
	if l == nil {
		return nil
	}
	out := make([]int8, len(l))
	for i, fp := range l {
		out[i] = int8(fp)
	}
	return out
}

func fromInt8(l []int8) []FilePriority {
	if l == nil {
		return nil
	}
	out := make([]FilePriority, len(l))
	for i, v := range l {
		out[i] = FilePriority(v)
	}
	return out
}
