package pipeline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
)

// ErrMoveTarget is MoveData's error when a file it would move is already at the target.
var ErrMoveTarget = errors.New("already exists at the new location")

// MoveData moves a torrent's data from the directory from to the directory to: m's files
// (only the torrent's own, as Remove(true) knows them) and what BitStorm keeps beside
// them in from/.bitstorm (resume record, metadata, selection, part file), so that the
// torrent added again with OutDir to goes on from its record. The torrent must not run.
// m nil (a magnet link without its metadata) moves the kept files alone.
//
// Nothing is overwritten: when any file is already at the target, MoveData moves nothing
// and the error wraps ErrMoveTarget. A file that cannot be renamed (another file system)
// is copied, synced and then removed, its modification time kept (the resume record's
// stamps compare it). When a move fails midway, the files moved so far go back.
func MoveData(m *metainfo.MetaInfo, hash [20]byte, from, to string) error {
	from, to = filepath.Clean(from), filepath.Clean(to)
	if from == to {
		return nil
	}
	var rels []string // paths below from
	for _, p := range []string{resume.Path(from, hash), resume.MetadataPath(from, hash),
		resume.SelectionPath(from, hash), resume.PartPath(from, hash)} {
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return fmt.Errorf("move: %w", err)
		}
		rels = append(rels, rel)
	}
	if m != nil {
		for _, f := range m.Info.Files {
			if f.OnDisk() {
				rels = append(rels, filepath.Join(f.Path...))
			}
		}
	}
	var todo []string // those that exist at from
	for _, rel := range rels {
		if _, err := os.Lstat(filepath.Join(from, rel)); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("move: %w", err)
		}
		if _, err := os.Lstat(filepath.Join(to, rel)); err == nil {
			return fmt.Errorf("move: %s: %w", filepath.Join(to, rel), ErrMoveTarget)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("move: %w", err)
		}
		todo = append(todo, rel)
	}
	for i, rel := range todo {
		if err := moveFile(filepath.Join(from, rel), filepath.Join(to, rel)); err != nil {
			for _, back := range todo[:i] {
				moveFile(filepath.Join(to, back), filepath.Join(from, back))
			}
			return fmt.Errorf("move: %w", err)
		}
	}
	// Directories left empty go, as Remove's do; one holding anything else stays.
	for _, rel := range todo {
		for dir := filepath.Dir(rel); dir != "." && dir != "/"; dir = filepath.Dir(dir) {
			os.Remove(filepath.Join(from, dir))
		}
	}
	return nil
}

// moveFile renames from to to, creating to's directory; across file systems it copies
// (never over an existing file), syncs, keeps the modification time and removes from.
func moveFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	err := os.Rename(from, to)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if err := copyFile(from, to); err != nil {
		return err
	}
	return os.Remove(from)
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(to, st.ModTime(), st.ModTime())
	}
	if err != nil {
		os.Remove(to) // ours: O_EXCL made it
	}
	return err
}
