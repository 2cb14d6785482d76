package storage

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

func openSelected(t *testing.T, dir string, info *metainfo.Info, part string, want ...int) *Files {
	t.Helper()
	s, err := OpenSelected(dir, info, Selection{Want: func(i int) bool { return slices.Contains(want, i) }, PartPath: part})
	if err != nil {
		t.Fatalf("OpenSelected() = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fileBytes(t *testing.T, dir string, f metainfo.File) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{dir}, f.Path...)...))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func readAll(t *testing.T, s *Files, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if m, err := s.ReadAt(b, 0); m != len(b) || err != nil {
		t.Fatalf("ReadAt(whole torrent) = %d, %v", m, err)
	}
	return b
}

// TestPartFile: files not wanted are not created; their bytes go to the part file at their
// offsets and read back from there; a file wanted later (Want, or a new OpenSelected)
// takes its bytes from the part file, which goes once no file needs it.
func TestPartFile(t *testing.T) {
	info := layout("t", 3000, 5000, 2500, 700)
	data := payload(9, info.Length)
	dir := t.TempDir()
	part := filepath.Join(dir, ".bitstorm", "x.parts")

	s := openSelected(t, dir, info, part, 1, 3)
	if got := readAll(t, s, info.Length); !bytes.Equal(got[:3000], make([]byte, 3000)) {
		t.Fatal("an unwanted file reads other than zeros before anything is written")
	}
	if _, err := os.Stat(part); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("part file before any write: %v, want none", err)
	}
	// The whole torrent is written, as the pieces of a download are: across files.
	for off := int64(0); off < info.Length; off += 1024 {
		if _, err := s.WriteVAt([][]byte{data[off:min(off+1024, info.Length)]}, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, info.Length); !bytes.Equal(got, data) {
		t.Fatal("bytes read back differ from those written")
	}
	for i, f := range info.Files {
		b, ok := fileBytes(t, dir, f)
		wanted := i == 1 || i == 3
		if ok != wanted || wanted && !bytes.Equal(b, data[f.Offset:f.Offset+f.Length]) {
			t.Errorf("file %d: on disk %v (%d bytes), want on disk %v with its bytes", i, ok, len(b), wanted)
		}
	}
	pb, err := os.ReadFile(part)
	if err != nil || !bytes.Equal(pb[:3000], data[:3000]) || !bytes.Equal(pb[8000:10500], data[8000:10500]) {
		t.Fatalf("part file: %d bytes, %v; want files 0 and 2 at their offsets", len(pb), err)
	}

	// File 0 wanted now: created with its bytes; file 2 stays in the part file.
	if err := s.Want(0); err != nil {
		t.Fatal(err)
	}
	if b, ok := fileBytes(t, dir, info.Files[0]); !ok || !bytes.Equal(b, data[:3000]) {
		t.Fatalf("file 0 after Want(0): on disk %v, %d bytes; want its bytes", ok, len(b))
	}
	if got := readAll(t, s, info.Length); !bytes.Equal(got, data) {
		t.Fatal("bytes read back after Want(0) differ")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Want(2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Want after Close = %v, want ErrClosed", err)
	}

	// A new run with file 0 unwanted again: on disk already, it is kept and used (as
	// libtorrent does); every file wanted: file 2 comes out of the part file, which goes.
	s = openSelected(t, dir, info, part, 1, 3)
	if got := readAll(t, s, info.Length); !bytes.Equal(got, data) {
		t.Fatal("bytes read back in a new run differ")
	}
	s.Close()
	s = openSelected(t, dir, info, part, 0, 1, 2, 3)
	if got := readAll(t, s, info.Length); !bytes.Equal(got, data) {
		t.Fatal("bytes read back with every file wanted differ")
	}
	for i, f := range info.Files {
		if b, ok := fileBytes(t, dir, f); !ok || !bytes.Equal(b, data[f.Offset:f.Offset+f.Length]) {
			t.Errorf("file %d: on disk %v, %d bytes; want its bytes", i, ok, len(b))
		}
	}
	if _, err := os.Stat(part); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("part file with every file on disk: %v, want it removed", err)
	}
}

func TestPartFileUnsafe(t *testing.T) {
	info := layout("t", 100, 100)
	dir := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, ".bitstorm")); err != nil {
		t.Fatal(err)
	}
	// Every file wanted: no part file needed, and nothing is done through the link.
	os.WriteFile(filepath.Join(elsewhere, "x.parts"), []byte("keep"), 0o644)
	s := openSelected(t, dir, info, filepath.Join(dir, ".bitstorm", "x.parts"), 0, 1)
	s.Close()
	if b, err := os.ReadFile(filepath.Join(elsewhere, "x.parts")); err != nil || string(b) != "keep" {
		t.Fatalf("a file behind the link: %q, %v; want it left alone", b, err)
	}
	// File 1 not wanted: writing its bytes would go through the link, and fails.
	os.RemoveAll(filepath.Join(dir, "t"))
	s = openSelected(t, dir, info, filepath.Join(dir, ".bitstorm", "x.parts"), 0)
	if _, err := s.WriteAt(make([]byte, 200), 0); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("a write to a file kept in a part file behind a link = %v, want ErrUnsafePath", err)
	}
	if _, err := OpenSelected(dir, info, Selection{Want: func(i int) bool { return i == 0 }}); err == nil {
		t.Fatal("OpenSelected with a file not wanted and no part file = nil error")
	}
}
