package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// partFile holds the bytes of files that are not wanted and not on disk, which pieces
// shared with wanted files still carry: such a piece is written and verified whole, and
// its bytes of a file wanted later are not fetched again. As libtorrent's part file, one
// per torrent; here a sparse file where a byte lives at its offset in the torrent, so that
// it needs no index: only the ranges written take room on disk.
type partFile struct {
	path   string
	unsafe error // the path goes through a symbolic link: never used, never removed

	mu sync.Mutex
	f  *os.File // nil until the file exists
}

// openPart opens the part file at path if it exists; it is created on the first write.
// A path through a symbolic link is not an error until the part file is written to: a
// download that needs none goes on.
func openPart(path string) (*partFile, error) {
	pf := &partFile{path: path}
	if pf.unsafe = pf.checkPath(); pf.unsafe != nil {
		return pf, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	switch {
	case err == nil:
		pf.f = f
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("storage: part file: %w", err)
	}
	return pf, nil
}

// checkPath refuses a part file, or a directory of it, that is a symbolic link: it lies in
// the output directory, where a planted link could point anywhere.
func (pf *partFile) checkPath() error {
	for _, name := range []string{filepath.Dir(pf.path), pf.path} {
		st, err := os.Lstat(name)
		if err == nil && st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("storage: %s: %w: symbolic link", name, ErrUnsafePath)
		}
	}
	return nil
}

// file returns the part file, creating it (and its directory) if need be.
func (pf *partFile) file() (*os.File, error) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.f != nil {
		return pf.f, nil
	}
	if pf.unsafe != nil {
		return nil, pf.unsafe
	}
	if err := os.MkdirAll(filepath.Dir(pf.path), 0o755); err != nil {
		return nil, fmt.Errorf("storage: part file: %w", err)
	}
	if err := pf.checkPath(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(pf.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: part file: %w", err)
	}
	pf.f = f
	return f, nil
}

// readAt reads the torrent's bytes at off from the part file: zeros where nothing was
// written, as in a hole or past the end.
func (pf *partFile) readAt(p []byte, off int64) (int, error) {
	pf.mu.Lock()
	f := pf.f
	pf.mu.Unlock()
	if f == nil {
		clear(p)
		return len(p), nil
	}
	n, err := f.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		clear(p[n:])
		return len(p), nil
	}
	return n, err
}

// export copies what the part file holds of the torrent's range [off, off+n) into dst,
// from dst's start, and frees that range in the part file. dst is new, all zeros: runs of
// zeros are not copied.
func (pf *partFile) export(dst *os.File, off, n int64) error {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.f == nil || n == 0 {
		return nil
	}
	buf := make([]byte, min(n, 1<<20))
	end := off + n
	for at := off; at < end; {
		from, to, err := nextData(pf.f, at, end)
		if err != nil {
			return fmt.Errorf("part file: %w", err)
		}
		if from >= end {
			break
		}
		for pos := from; pos < to; {
			b := buf[:min(int64(len(buf)), to-pos)]
			m, err := pf.f.ReadAt(b, pos)
			if m < len(b) && !errors.Is(err, io.EOF) {
				return fmt.Errorf("part file: %w", err)
			}
			if m == 0 {
				to = pos // the end of the file
				break
			}
			if b = b[:m]; !allZero(b) {
				if _, err := dst.WriteAt(b, pos-off); err != nil {
					return err
				}
			}
			pos += int64(m)
		}
		at = to
	}
	punchHole(pf.f, off, n) // room only: the bytes are in dst
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 64 {
		if !bytes.Equal(b[:64], zeros64[:]) {
			return false
		}
		b = b[64:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var zeros64 [64]byte

// remove deletes the part file: no file needs it any more.
func (pf *partFile) remove() error {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.f != nil {
		pf.f.Close()
		pf.f = nil
	}
	if pf.unsafe != nil {
		return nil
	}
	if err := os.Remove(pf.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: part file: %w", err)
	}
	return nil
}

func (pf *partFile) sync() error {
	if pf == nil {
		return nil
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.f == nil {
		return nil
	}
	if err := pf.f.Sync(); err != nil {
		return fmt.Errorf("storage: part file: %w", err)
	}
	return nil
}

func (pf *partFile) close() error {
	if pf == nil {
		return nil
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.f == nil {
		return nil
	}
	err := pf.f.Close()
	pf.f = nil
	if err != nil {
		return fmt.Errorf("storage: part file: %w", err)
	}
	return nil
}
