package pipeline

import (
	"fmt"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// A Session's torrents choose their files as a Pipeline does (selection.go): while a
// torrent runs, through its run; otherwise in the selection kept beside its resume
// record, which its next run takes up.

// FilePriorities returns the priority of each of the torrent's files; ErrNoInfo before
// its metadata is known.
func (t *Torrent) FilePriorities() ([]FilePriority, error) {
	p, err := t.filesPipeline()
	if err != nil {
		return nil, err
	}
	if prios := p.FilePriorities(); prios != nil {
		return prios, p.sel.failed()
	}
	return nil, ErrNoInfo
}

// SetFilePriority sets the priority of file i of the torrent (from 0, in the order of
// Files). While the torrent runs, a file wanted now is fetched (from the bytes kept in
// the part file first) and a file skipped now is fetched no further; either way the choice
// is kept for its next runs. A torrent that finished is not resumed: Resume fetches what
// is wanted now.
func (t *Torrent) SetFilePriority(i int, fp FilePriority) error {
	p, err := t.filesPipeline()
	if err != nil {
		return err
	}
	return p.SetFilePriority(i, fp)
}

// filesPipeline is the torrent's running pipeline, or, when it does not run, a pipeline
// of its options that is never run, to read and change the kept selection.
func (t *Torrent) filesPipeline() (*Pipeline, error) {
	t.mu.Lock()
	p, running, m := t.p, t.state == Running, t.meta
	t.mu.Unlock()
	if m == nil {
		return nil, ErrNoInfo
	}
	if running && p != nil && p.Meta() != nil {
		return p, nil
	}
	q := newPipeline(append([]Option{WithConfig(t.config())}, t.opts...))
	q.meta = m
	return q, nil
}

// File is one file of a torrent: its place in the torrent (metainfo.File: path, length,
// offset) and what a caller does file by file, read it while it downloads and choose its
// priority.
type File struct {
	metainfo.File
	t     *Torrent
	index int
}

// File returns file i of the torrent (from 0, in the order of Files); ErrNoInfo before
// its metadata is known.
func (t *Torrent) File(i int) (*File, error) {
	files := t.Files()
	if files == nil {
		return nil, ErrNoInfo
	}
	if i < 0 || i >= len(files) {
		return nil, fmt.Errorf("pipeline: file %d: out of range (%d files)", i, len(files))
	}
	return &File{File: files[i], t: t, index: i}, nil
}

// Index is the file's place in the torrent's files, from 0.
func (f *File) Index() int { return f.index }

// NewReader returns a Reader of the file (Torrent.NewReader).
func (f *File) NewReader() (*Reader, error) { return f.t.NewReader(f.index) }

// SetPriority sets the file's priority (Torrent.SetFilePriority).
func (f *File) SetPriority(fp FilePriority) error { return f.t.SetFilePriority(f.index, fp) }

// Priority is the file's priority (Torrent.FilePriorities).
func (f *File) Priority() (FilePriority, error) {
	prios, err := f.t.FilePriorities()
	if err != nil {
		return FileNormal, err
	}
	return prios[f.index], nil
}
