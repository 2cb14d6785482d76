package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// attrLayout is a torrent "t" of a (10 bytes, executable), 6 bytes of padding, a link to
// a, b (16 bytes, hidden) and 16 more bytes of padding at the end, in pieces of 16.
func attrLayout() *metainfo.Info {
	return &metainfo.Info{Name: "t", PieceLength: 16, Length: 48, MultiFile: true, Files: []metainfo.File{
		{Path: []string{"t", "a"}, Length: 10, Offset: 0, Attr: metainfo.AttrExecutable},
		{Path: []string{"t", ".pad", "6"}, Length: 6, Offset: 10, Attr: metainfo.AttrPad},
		{Path: []string{"t", "sub", "link"}, Offset: 16, Attr: metainfo.AttrSymlink, SymlinkPath: []string{"t", "a"}},
		{Path: []string{"t", "self"}, Offset: 16, Attr: metainfo.AttrSymlink, SymlinkPath: []string{"t", "self"}},
		{Path: []string{"t", "b"}, Length: 16, Offset: 16, Attr: metainfo.AttrHidden},
		{Path: []string{"t", ".pad", "16"}, Length: 16, Offset: 32, Attr: metainfo.AttrPad},
	}}
}

// TestPadding: padding is never created, reads of it are zeros, writes to it are dropped
// (whatever a peer sent there), and the data around it lands where it belongs.
func TestPadding(t *testing.T) {
	dir := t.TempDir()
	info := attrLayout()
	s := open(t, dir, info)
	data := payload(7, info.Length) // nonzero in the padding too
	for _, write := range []func([]byte, int64) (int, error){
		s.WriteAt,
		func(p []byte, off int64) (int, error) { return s.WriteVAt([][]byte{p[:3], p[3:20], p[20:]}, off) },
	} {
		if n, err := write(data, 0); err != nil || n != len(data) {
			t.Fatalf("write = %d, %v, want %d", n, err, len(data))
		}
		want := bytes.Clone(data)
		clear(want[10:16])
		clear(want[32:48])
		got := make([]byte, len(data))
		if n, err := s.ReadAt(got, 0); err != nil || n != len(got) || !bytes.Equal(got, want) {
			t.Errorf("ReadAt = %d, %v, %x; want the data with zeros for padding %x", n, err, got, want)
		}
		// A read of padding alone, and one that starts inside it.
		if n, err := s.ReadAt(got[:18], 30); err != nil || n != 18 || !bytes.Equal(got[:18], want[30:48]) {
			t.Errorf("ReadAt(30) = %d, %v, %x, want %x", n, err, got[:18], want[30:48])
		}
	}
	for name, want := range map[string][]byte{"a": data[:10], "b": data[16:32]} {
		if got, err := os.ReadFile(filepath.Join(dir, "t", name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s on disk = %x, %v, want %x", name, got, err, want)
		}
	}
	for _, absent := range []string{".pad", "sub", "self"} {
		if _, err := os.Lstat(filepath.Join(dir, "t", absent)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("t/%s exists before Finish (%v); padding is never on disk, links come last", absent, err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Errorf("Sync = %v", err)
	}
}

// TestAttributes: 'x' makes the file executable, Finish makes the links (relative, so the
// download can move), again without complaint, and never over a file.
func TestAttributes(t *testing.T) {
	dir := t.TempDir()
	info := attrLayout()
	s := open(t, dir, info)
	if _, err := s.WriteAt(payload(8, info.Length), 0); err != nil {
		t.Fatal(err)
	}
	for name, exec := range map[string]bool{"a": true, "b": false} {
		st, err := os.Stat(filepath.Join(dir, "t", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm()&0o100 != 0; got != exec {
			t.Errorf("%s: mode %v, executable = %v, want %v", name, st.Mode(), got, exec)
		}
	}
	for range 2 {
		if err := s.Finish(); err != nil {
			t.Fatalf("Finish = %v", err)
		}
		link := filepath.Join(dir, "t", "sub", "link")
		if target, err := os.Readlink(link); err != nil || target != filepath.Join("..", "a") {
			t.Errorf("Readlink(t/sub/link) = %q, %v, want ../a", target, err)
		}
		if got, err := os.ReadFile(link); err != nil || len(got) != 10 {
			t.Errorf("reading through t/sub/link = %d bytes, %v, want a's 10", len(got), err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "t", "self")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a link to itself was created (%v)", err)
		}
	}
	// A stale link is replaced; a regular file in a link's place is kept, and an error.
	link := filepath.Join(dir, "t", "sub", "link")
	os.Remove(link)
	symlink(t, "elsewhere", link)
	if err := s.Finish(); err != nil {
		t.Fatalf("Finish over a stale link = %v", err)
	}
	if target, _ := os.Readlink(link); target != filepath.Join("..", "a") {
		t.Errorf("stale link now points to %q, want ../a", target)
	}
	os.Remove(link)
	if err := os.WriteFile(link, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("Finish with a file in the link's place = %v, want ErrUnsafePath", err)
	}
	if got, _ := os.ReadFile(link); string(got) != "mine" {
		t.Errorf("the file in the link's place now holds %q", got)
	}
}

// TestFinishRefusesLinkedDirectory: a link's directory that someone replaced with a
// symbolic link is not followed.
func TestFinishRefusesLinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "out"), attrLayout())
	outside := filepath.Join(dir, "outside")
	mkdir(t, outside)
	symlink(t, outside, filepath.Join(dir, "out", "t", "sub"))
	if err := s.Finish(); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("Finish through a linked directory = %v, want ErrUnsafePath", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("Finish wrote %v outside the root", entries)
	}
}
