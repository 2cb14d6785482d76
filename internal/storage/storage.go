// Package storage maps a torrent's concatenated byte space onto its files on disk.
//
// BEP 3 lays the files of a multi-file torrent end to end, so a piece may span the tail of
// one file and the head of the next. Files turns an offset in that space into positioned
// reads and writes (pread/pwrite) on the files, and refuses to touch anything outside its
// root directory.
//
// BEP 47 padding files are part of that space but never on disk: reads of their ranges
// return zeros and writes to them are dropped, so pieces that hold padding are hashed,
// verified and served as the torrent's creator hashed them. Symbolic links hold no bytes;
// Finish creates them once the data is complete. An executable file ('x') is created
// with the executable bit.
//
// A selective download (OpenSelected) does not create the files it does not want; the
// bytes of their ranges that pieces shared with wanted files hold go to one sparse part
// file instead (partfile.go), until the file is wanted (Want).
package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// ErrUnsafePath is returned when a file of the torrent would resolve outside the root
// directory, or through a symbolic link.
var ErrUnsafePath = errors.New("unsafe path")

// ErrFileChanged is returned by Sync and Close when a file was deleted, replaced or
// truncated by someone else while open: what was written to it is no longer on disk.
var ErrFileChanged = errors.New("file changed while in use")

// Files is the on-disk storage of one torrent. It is safe for concurrent use: every
// read and write is positioned, and the file set is fixed after Open.
type Files struct {
	// mu is held shared by every read and write, and exclusively by Want, which moves a
	// file's bytes out of the part file and its range to the new file.
	mu     sync.RWMutex
	files  []*os.File // nil once closed, and for padding, symlinks and files in the part file
	names  []string   // the path each file was opened at
	layout []metainfo.File
	size   int64
	root   string // absolute
	wb     *writeBehind
	inPart []bool    // file i is not on disk: its bytes are in the part file; nil when none is
	part   *partFile // nil without OpenSelected
	closed bool
}

// WriteBehindBytes bounds the written bytes whose write-out is in flight before the oldest
// are waited for and dropped from the page cache (see writeBehind).
const WriteBehindBytes = 32 << 20

// Open creates or opens every file of info below root, creating directories as needed.
// Existing data is kept; files shorter than their length are extended (sparse).
func Open(root string, info *metainfo.Info) (*Files, error) {
	return OpenSelected(root, info, Selection{})
}

// Selection is which files OpenSelected creates, and where the bytes of the others go.
type Selection struct {
	// Want reports whether file i is wanted; nil wants every file.
	Want func(i int) bool
	// PartPath is the part file, for the bytes of the files not wanted and not on disk
	// (libtorrent's <hash>.parts): created when first written to, removed once no file
	// needs it. Its directory must not be a symbolic link.
	PartPath string
}

// OpenSelected is Open for a selective download: a file sel does not want is opened when
// it is on disk already (as libtorrent, it keeps its bytes) and otherwise not created;
// its range reads from and writes to the part file. A wanted file created now takes the
// bytes the part file holds for it.
func OpenSelected(root string, info *metainfo.Info, sel Selection) (*Files, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s := &Files{layout: info.Files, size: info.Length, root: root, files: make([]*os.File, len(info.Files)),
		names: make([]string, len(info.Files)), wb: newWriteBehind(WriteBehindBytes)}
	if sel.PartPath != "" {
		if s.part, err = openPart(sel.PartPath); err != nil {
			return nil, err
		}
	}
	for i, f := range info.Files {
		if !f.OnDisk() {
			continue
		}
		if sel.Want != nil && !sel.Want(i) {
			onDisk, err := s.exists(i)
			if err != nil {
				s.Close()
				return nil, err
			}
			if !onDisk {
				if s.part == nil {
					s.Close()
					return nil, fmt.Errorf("storage: %s: not wanted, and no part file for its bytes", filepath.Join(f.Path...))
				}
				if s.inPart == nil {
					s.inPart = make([]bool, len(info.Files))
				}
				s.inPart[i] = true
				continue
			}
		}
		if err := s.openFile(i); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.inPart == nil && s.part != nil {
		// Every file is on disk: what the part file held is in them now.
		if err := s.part.remove(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// exists reports whether file i is on disk below the root.
func (s *Files) exists(i int) (bool, error) {
	name, err := safeJoin(s.root, s.layout[i].Path)
	if err != nil {
		return false, err
	}
	_, err = os.Lstat(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("storage: %w", err)
}

// openFile creates or opens file i, extends it to its length and, when it is created
// now, moves into it the bytes the part file holds for its range.
func (s *Files) openFile(i int) error {
	f := s.layout[i]
	name, err := safeJoin(s.root, f.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	created := false
	fh, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		created = true
	} else if errors.Is(err, fs.ErrExist) {
		fh, err = os.OpenFile(name, os.O_RDWR, 0o644)
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	s.files[i], s.names[i] = fh, name
	st, err := fh.Stat()
	if err == nil && st.Size() < f.Length {
		err = fh.Truncate(f.Length)
	}
	if err == nil && f.Attr&metainfo.AttrExecutable != 0 {
		perm := st.Mode().Perm()
		err = fh.Chmod(perm | perm&0o444>>2) // executable by whoever may read it
	}
	if err == nil && created && s.part != nil {
		err = s.part.export(fh, f.Offset, f.Length)
	}
	if err != nil {
		return fmt.Errorf("storage: %s: %w", name, err)
	}
	return nil
}

// Want has file i kept on disk from now on: it is created, with the bytes the part file
// held for it. A file on disk already is left as it is.
func (s *Files) Want(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if i < 0 || i >= len(s.layout) || s.inPart == nil || !s.inPart[i] {
		return nil
	}
	if err := s.openFile(i); err != nil {
		return err
	}
	s.inPart[i] = false
	if !slices.Contains(s.inPart, true) {
		s.inPart = nil
		return s.part.remove()
	}
	return nil
}

// ErrClosed is returned by Want after Close.
var ErrClosed = errors.New("storage: closed")

// handle is the file to write byte at of file i to, and its offset there: the part file
// holds a file that is not on disk at the file's offset in the torrent.
func (s *Files) handle(i int, at int64) (*os.File, int64, error) {
	if s.inPart == nil || !s.inPart[i] {
		return s.files[i], at, nil
	}
	f, err := s.part.file()
	return f, s.layout[i].Offset + at, err
}

// safeJoin joins path below root and checks that no component is a symbolic link and that
// the result stays inside root. metainfo has already rejected "..", absolute paths and
// separators inside components; this is the last line of defence.
func safeJoin(root string, path []string) (string, error) {
	name := filepath.Join(append([]string{root}, path...)...)
	rel, err := filepath.Rel(root, name)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("storage: %q: %w: outside %s", filepath.Join(path...), ErrUnsafePath, root)
	}
	cur := root
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, c)
		st, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("storage: %w", err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("storage: %s: %w: symbolic link", cur, ErrUnsafePath)
		}
	}
	return name, nil
}

// WriteAt writes p at offset off of the torrent's byte space, across file boundaries.
func (s *Files) WriteAt(p []byte, off int64) (int, error) {
	return s.WriteVAt([][]byte{p}, off)
}

// WriteVAt writes bufs one after another at offset off of the torrent's byte space, as
// WriteAt would their concatenation, with one pwritev(2) per file the range touches.
func (s *Files) WriteVAt(bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if off < 0 || off+int64(total) > s.size {
		return 0, fmt.Errorf("storage: range [%d, %d) outside torrent of %d bytes", off, off+int64(total), s.size)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.layout), func(i int) bool { return s.layout[i].Offset+s.layout[i].Length > off })
	done := 0
	var seg [][]byte
	for done < total && i < len(s.layout) {
		f := s.layout[i]
		at := off + int64(done) - f.Offset
		if at >= f.Length { // a zero-length file, or one that ends at off
			i++
			continue
		}
		if f.IsPad() { // zeros that no file holds: nothing to write
			done += int(min(int64(total-done), f.Length-at))
			i++
			continue
		}
		seg = window(seg[:0], bufs, done, int(min(int64(total-done), f.Length-at)))
		fh, fat, err := s.handle(i, at)
		if err != nil {
			return done, err
		}
		m, err := pwritev(fh, seg, fat)
		s.wb.wrote(fh, fat, int64(m))
		done += m
		if err != nil {
			return done, fmt.Errorf("storage: %s: %w", filepath.Join(f.Path...), err)
		}
		if m == 0 {
			return done, fmt.Errorf("storage: %s: %w", filepath.Join(f.Path...), io.ErrShortWrite)
		}
		// A short write goes round again in the same file.
	}
	return done, nil
}

// window appends to dst the parts of bufs, taken as one byte sequence, that cover
// [from, from+n).
func window(dst, bufs [][]byte, from, n int) [][]byte {
	for _, b := range bufs {
		if n == 0 {
			break
		}
		if from >= len(b) {
			from -= len(b)
			continue
		}
		part := b[from:min(len(b), from+n)]
		dst = append(dst, part)
		n -= len(part)
		from = 0
	}
	return dst
}

// ReadAt reads len(p) bytes at offset off of the torrent's byte space.
func (s *Files) ReadAt(p []byte, off int64) (int, error) {
	return s.span(p, off)
}

func (s *Files) span(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.size {
		return 0, fmt.Errorf("storage: range [%d, %d) outside torrent of %d bytes", off, off+int64(len(p)), s.size)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	// The first file whose end lies beyond off holds the first byte.
	i := sort.Search(len(s.layout), func(i int) bool { return s.layout[i].Offset+s.layout[i].Length > off })
	done := 0
	for done < len(p) && i < len(s.layout) {
		f := s.layout[i]
		at := off + int64(done) - f.Offset
		n := min(int64(len(p)-done), f.Length-at)
		if n > 0 && f.IsPad() {
			clear(p[done : done+int(n)])
			done += int(n)
		} else if n > 0 {
			var m int
			var err error
			if s.inPart != nil && s.inPart[i] {
				m, err = s.part.readAt(p[done:done+int(n)], f.Offset+at)
			} else {
				m, err = s.files[i].ReadAt(p[done:done+int(n)], at)
			}
			done += m
			if err != nil && !(errors.Is(err, io.EOF) && m == int(n)) {
				return done, fmt.Errorf("storage: %s: %w", filepath.Join(f.Path...), err)
			}
		}
		i++
	}
	return done, nil
}

// Finish creates the torrent's symbolic links (BEP 47) below the root, each pointing by a
// relative path at its target inside the torrent, once the data is complete: then what a
// link names exists, and no write of the download can go through a link. A link already
// there is replaced; a file or directory in a link's place is an error, never removed.
// Links that point to themselves (metainfo keeps an unresolvable target so) are skipped.
func (s *Files) Finish() error {
	for _, f := range s.layout {
		if !f.IsSymlink() || slices.Equal(f.SymlinkPath, f.Path) {
			continue
		}
		dir, err := safeJoin(s.root, f.Path[:len(f.Path)-1])
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		name := filepath.Join(dir, f.Path[len(f.Path)-1])
		target, err := filepath.Rel(dir, filepath.Join(append([]string{s.root}, f.SymlinkPath...)...))
		if err != nil {
			return fmt.Errorf("storage: %s: %w", name, err)
		}
		st, err := os.Lstat(name)
		switch {
		case err == nil && st.Mode()&os.ModeSymlink == 0:
			return fmt.Errorf("storage: %s: %w: in the place of a symbolic link", name, ErrUnsafePath)
		case err == nil:
			if cur, err := os.Readlink(name); err == nil && cur == target {
				continue
			}
			if err := os.Remove(name); err != nil {
				return fmt.Errorf("storage: %w", err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("storage: %w", err)
		}
		if err := os.Symlink(target, name); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	return nil
}

// Sync flushes every file's data to stable storage (fdatasync), so that a record of
// verified pieces written afterwards never claims bytes a power loss could take back. It
// fails with ErrFileChanged when a file is no longer on disk as written.
func (s *Files) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := s.part.sync(); err != nil {
		return err
	}
	for _, f := range s.files {
		if f == nil {
			continue
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	return nil
}

// check fails with ErrFileChanged when a file is no longer the one opened at its path
// (deleted, or replaced), or is shorter than its length (truncated): the writes to it are
// lost, and the caller must not count its pieces as on disk. Writes through the open file
// still succeed then, so only this tells.
func (s *Files) check() error {
	for i, f := range s.files {
		if f == nil {
			continue
		}
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		cur, err := os.Lstat(s.names[i])
		switch {
		case err != nil || !os.SameFile(st, cur):
			return fmt.Errorf("storage: %s: %w: deleted or replaced", s.names[i], ErrFileChanged)
		case st.Size() < s.layout[i].Length:
			return fmt.Errorf("storage: %s: %w: truncated to %d bytes of %d", s.names[i], ErrFileChanged, st.Size(), s.layout[i].Length)
		}
	}
	return nil
}

// Close closes every file; it returns the first error, ErrFileChanged first of all: then
// what was written is not all on disk.
func (s *Files) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.wb.forget()
	first := s.check()
	if err := s.part.close(); err != nil && first == nil {
		first = err
	}
	for i, f := range s.files {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = fmt.Errorf("storage: %w", err)
		}
		s.files[i] = nil
	}
	return first
}
