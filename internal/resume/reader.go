package resume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// Reader reads a torrent's concatenated byte space from its files without creating,
// extending or writing any of them, for rechecking data that may be partly absent. It is
// safe for concurrent use: every read is positioned. Padding (BEP 47) reads as zeros and
// symlinks hold no bytes: neither is opened.
type Reader struct {
	files  []*os.File // nil for a missing file, padding and symlinks
	part   *os.File   // UsePart: where missing files are read from; nil without
	layout []metainfo.File
	size   int64
}

var _ io.ReaderAt = (*Reader)(nil)

// OpenReader opens every file of info below outDir read-only. A file that does not
// exist is not an error: Missing reports it, and reads that touch it fail.
func OpenReader(outDir string, info *metainfo.Info) (*Reader, error) {
	r := &Reader{layout: info.Files, size: info.Length, files: make([]*os.File, len(info.Files))}
	for i, f := range info.Files {
		if !f.OnDisk() {
			continue
		}
		fh, err := os.Open(filepath.Join(append([]string{outDir}, f.Path...)...))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("resume: %w", err)
		}
		r.files[i] = fh
	}
	return r, nil
}

// Missing reports whether file i of the torrent did not exist when r was opened. Padding
// and symlinks, which are not files to read, are never missing.
func (r *Reader) Missing(i int) bool { return r.files[i] == nil && r.layout[i].OnDisk() }

// ReadAt reads len(p) bytes at offset off of the torrent's byte space, across file
// boundaries. A range that touches a missing file or lies beyond the end of a short
// file fails with an error naming the file; past the torrent's end it returns io.EOF.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("resume: read at negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	var eof error
	if rest := r.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	// The first file whose end lies beyond off holds the first byte.
	i := sort.Search(len(r.layout), func(i int) bool { return r.layout[i].Offset+r.layout[i].Length > off })
	done := 0
	for ; done < len(p) && i < len(r.layout); i++ {
		f := r.layout[i]
		at := off + int64(done) - f.Offset
		n := int(min(int64(len(p)-done), f.Length-at))
		if n <= 0 {
			continue
		}
		if f.IsPad() {
			clear(p[done : done+n])
			done += n
			continue
		}
		if r.files[i] == nil && r.part != nil {
			m, err := r.readPart(p[done:done+n], f.Offset+at)
			done += m
			if err != nil {
				return done, fmt.Errorf("resume: part file: %w", err)
			}
			continue
		}
		if r.files[i] == nil {
			return done, fmt.Errorf("resume: %s: %w", filepath.Join(f.Path...), fs.ErrNotExist)
		}
		m, err := r.files[i].ReadAt(p[done:done+n], at)
		done += m
		if m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the file is shorter than the torrent says
			}
			return done, fmt.Errorf("resume: %s: %w", filepath.Join(f.Path...), err)
		}
	}
	return done, eof
}

// Close closes every file; it returns the first error.
func (r *Reader) Close() error {
	var first error
	for i, f := range r.files {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = fmt.Errorf("resume: %w", err)
		}
		r.files[i] = nil
	}
	if r.part != nil {
		if err := r.part.Close(); err != nil && first == nil {
			first = fmt.Errorf("resume: %w", err)
		}
		r.part = nil
	}
	return first
}
