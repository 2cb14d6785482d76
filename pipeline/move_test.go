package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
)

// TestMoveData: a torrent's files and its kept records move, modification times kept; a
// file of someone else in the old directory stays; a file already at the target makes
// MoveData refuse and move nothing.
func TestMoveData(t *testing.T) {
	hash := [20]byte{1, 2, 3}
	m := &metainfo.MetaInfo{InfoHash: hash, Info: metainfo.Info{Name: "t", Files: []metainfo.File{
		{Path: []string{"t", "a"}, Length: 3},
		{Path: []string{"t", "sub", "b"}, Length: 4},
		{Path: []string{"t", ".pad", "5"}, Length: 5, Attr: metainfo.AttrPad},
	}}}
	stamp := time.Unix(1_700_000_000, 123456789)
	write := func(path, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	setup := func() (from, to string) {
		from, to = t.TempDir(), filepath.Join(t.TempDir(), "new")
		write(filepath.Join(from, "t", "a"), "aaa")
		write(filepath.Join(from, "t", "sub", "b"), "bbbb")
		write(filepath.Join(from, "t", "other"), "not the torrent's")
		write(resume.Path(from, hash), "record")
		write(resume.PartPath(from, hash), "part")
		return from, to
	}
	moved := map[string]string{"t/a": "aaa", "t/sub/b": "bbbb"}
	rel := func(dir, p string) string { r, _ := filepath.Rel(dir, p); return r }
	moved[rel("/x", resume.Path("/x", hash))] = "record"
	moved[rel("/x", resume.PartPath("/x", hash))] = "part"

	t.Run("moves", func(t *testing.T) {
		from, to := setup()
		if err := MoveData(m, hash, from, to); err != nil {
			t.Fatalf("MoveData: %v", err)
		}
		for p, want := range moved {
			b, err := os.ReadFile(filepath.Join(to, p))
			if err != nil || string(b) != want {
				t.Errorf("%s at the target = %q, %v; want %q", p, b, err, want)
			}
			if st, err := os.Stat(filepath.Join(to, p)); err == nil && !st.ModTime().Equal(stamp) {
				t.Errorf("%s: modification time %v, want %v", p, st.ModTime(), stamp)
			}
			if _, err := os.Lstat(filepath.Join(from, p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still at the old place (%v)", p, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(from, "t", "sub")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the emptied directory t/sub stays (%v)", err)
		}
		if b, err := os.ReadFile(filepath.Join(from, "t", "other")); err != nil || string(b) != "not the torrent's" {
			t.Errorf("another file of the old directory: %q, %v", b, err)
		}
	})
	t.Run("target exists", func(t *testing.T) {
		from, to := setup()
		write(filepath.Join(to, "t", "sub", "b"), "theirs")
		err := MoveData(m, hash, from, to)
		if !errors.Is(err, ErrMoveTarget) {
			t.Fatalf("MoveData = %v, want ErrMoveTarget", err)
		}
		for p, want := range moved {
			if b, err := os.ReadFile(filepath.Join(from, p)); err != nil || string(b) != want {
				t.Errorf("%s at the old place = %q, %v; want it unmoved", p, b, err)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(to, "t", "sub", "b")); string(b) != "theirs" {
			t.Errorf("the existing target was overwritten: %q", b)
		}
		if _, err := os.Lstat(filepath.Join(to, "t", "a")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("t/a moved although the move was refused (%v)", err)
		}
	})
	t.Run("copy across file systems", func(t *testing.T) {
		from, to := setup()
		src, dst := filepath.Join(from, "t", "a"), filepath.Join(to, "a")
		os.MkdirAll(to, 0o755)
		if err := copyFile(src, dst); err != nil {
			t.Fatalf("copyFile: %v", err)
		}
		if st, err := os.Stat(dst); err != nil || !st.ModTime().Equal(stamp) || st.Size() != 3 {
			t.Errorf("copy: %v, %v", st, err)
		}
		if err := copyFile(src, dst); err == nil {
			t.Error("copyFile over an existing file succeeded")
		}
		if b, _ := os.ReadFile(dst); string(b) != "aaa" {
			t.Errorf("a refused copy changed the target: %q", b)
		}
	})
}
