package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// layout returns the info of a multi-file torrent named name with files of the given sizes,
// f0.bin, f1.bin, ... laid end to end (BEP 3). Hashes are not needed here.
func layout(name string, sizes ...int64) *metainfo.Info {
	info := &metainfo.Info{Name: name, PieceLength: 1 << 10, MultiFile: true}
	for i, n := range sizes {
		info.Files = append(info.Files, metainfo.File{
			Path: []string{name, "f" + string(rune('0'+i)) + ".bin"}, Length: n, Offset: info.Length})
		info.Length += n
	}
	return info
}

func payload(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func open(t *testing.T, dir string, info *metainfo.Info) *Files {
	t.Helper()
	s, err := Open(dir, info)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSpans writes and reads ranges that start, end and cross file boundaries, through
// zero-length files, and checks the bytes of every file on disk.
func TestSpans(t *testing.T) {
	// Files of 100, 0, 37, 0, 0, 200 and 1 bytes: [0,100) [100,100) [100,137) ... [337,338).
	info := layout("t", 100, 0, 37, 0, 0, 200, 1)
	data := payload(1, info.Length)
	tests := []struct {
		name     string
		off, end int64
	}{
		{"whole torrent", 0, info.Length},
		{"inside the first file", 10, 20},
		{"end of first file to start of third, across an empty file", 90, 110},
		{"exactly the third file", 100, 137},
		{"third file to sixth, across two empty files", 130, 140},
		{"last byte", info.Length - 1, info.Length},
		{"empty range at a boundary", 100, 100},
	}
	// write is WriteAt, or WriteVAt with the range cut in uneven parts (an empty one too).
	writers := map[string]func(s *Files, p []byte, off int64) (int, error){
		"WriteAt": (*Files).WriteAt,
		"WriteVAt": func(s *Files, p []byte, off int64) (int, error) {
			var bufs [][]byte
			for i, cut := 0, 7; len(p) > 0; i++ {
				n := min(len(p), cut)
				bufs = append(bufs, p[:n], p[n:n]) // and an empty buffer between
				p, cut = p[n:], cut*3%41+1
			}
			return s.WriteVAt(bufs, off)
		},
	}
	for _, tc := range tests {
		for name, write := range writers {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				s := open(t, dir, info)
				if n, err := write(s, data[tc.off:tc.end], tc.off); err != nil || int64(n) != tc.end-tc.off {
					t.Fatalf("%s([%d, %d)) = %d, %v", name, tc.off, tc.end, n, err)
				}
				got := make([]byte, tc.end-tc.off)
				if n, err := s.ReadAt(got, tc.off); err != nil || n != len(got) {
					t.Fatalf("ReadAt([%d, %d)) = %d, %v", tc.off, tc.end, n, err)
				}
				if !bytes.Equal(got, data[tc.off:tc.end]) {
					t.Fatal("ReadAt returned other bytes than were written")
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close() = %v", err)
				}
				// On disk: every file exists at its full length, holding the written range.
				for _, f := range info.Files {
					b, err := os.ReadFile(filepath.Join(append([]string{dir}, f.Path...)...))
					if err != nil {
						t.Fatal(err)
					}
					if int64(len(b)) != f.Length {
						t.Fatalf("%s: %d bytes, want %d", filepath.Join(f.Path...), len(b), f.Length)
					}
					for i := range b {
						at := f.Offset + int64(i)
						want := byte(0)
						if at >= tc.off && at < tc.end {
							want = data[at]
						}
						if b[i] != want {
							t.Fatalf("%s byte %d = %#x, want %#x", filepath.Join(f.Path...), i, b[i], want)
						}
					}
				}
			})
		}
	}
}

// TestOutOfRange: reads and writes outside the torrent's byte space fail and touch nothing.
func TestOutOfRange(t *testing.T) {
	info := layout("t", 10, 20)
	s := open(t, t.TempDir(), info)
	for _, r := range []struct{ off, n int64 }{{-1, 2}, {25, 6}, {30, 1}, {1 << 62, 1}} {
		if _, err := s.WriteAt(make([]byte, r.n), r.off); err == nil || !strings.Contains(err.Error(), "outside torrent") {
			t.Errorf("WriteAt(%d bytes at %d) = %v, want an error", r.n, r.off, err)
		}
		if _, err := s.WriteVAt([][]byte{make([]byte, r.n/2), make([]byte, r.n-r.n/2)}, r.off); err == nil || !strings.Contains(err.Error(), "outside torrent") {
			t.Errorf("WriteVAt(%d bytes at %d) = %v, want an error", r.n, r.off, err)
		}
		if _, err := s.ReadAt(make([]byte, r.n), r.off); err == nil {
			t.Errorf("ReadAt(%d bytes at %d) = nil error", r.n, r.off)
		}
	}
}

// TestOpenKeepsData: opening again keeps what the files hold and extends short ones.
func TestOpenKeepsData(t *testing.T) {
	info := layout("t", 50, 70)
	dir := t.TempDir()
	data := payload(2, info.Length)
	s := open(t, dir, info)
	if _, err := s.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	short := filepath.Join(dir, "t", "f1.bin")
	if err := os.Truncate(short, 30); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, info)
	got := make([]byte, info.Length)
	if _, err := s.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(data)
	clear(want[50+30:])
	if !bytes.Equal(got, want) {
		t.Fatal("reopened files do not hold the kept data followed by zeros")
	}
}

// TestUnsafePaths: a path that resolves outside the root (metainfo rejects these; storage
// is the last line of defence) or through a symbolic link is refused with ErrUnsafePath,
// and nothing is created outside the root.
func TestUnsafePaths(t *testing.T) {
	tests := []struct {
		name  string
		path  []string
		plant func(t *testing.T, root, outside string)
	}{
		{"parent", []string{"..", "x"}, nil},
		{"up and out through a directory", []string{"t", "..", "..", "x"}, nil},
		{"the root itself", []string{"."}, nil},
		{"the root's parent", []string{".."}, nil},
		{"link as the file, to an existing file", []string{"t", "f"}, func(t *testing.T, root, outside string) {
			mkdir(t, filepath.Join(root, "t"))
			symlink(t, filepath.Join(outside, "precious"), filepath.Join(root, "t", "f"))
		}},
		{"link as the file, dangling", []string{"t", "f"}, func(t *testing.T, root, outside string) {
			mkdir(t, filepath.Join(root, "t"))
			symlink(t, filepath.Join(outside, "new"), filepath.Join(root, "t", "f"))
		}},
		{"link as a directory", []string{"t", "sub", "f"}, func(t *testing.T, root, outside string) {
			mkdir(t, filepath.Join(root, "t"))
			symlink(t, outside, filepath.Join(root, "t", "sub"))
		}},
		{"link as the top directory, relative", []string{"t", "f"}, func(t *testing.T, root, outside string) {
			symlink(t, "../outside", filepath.Join(root, "t"))
		}},
		{"link inside the root, to inside the root", []string{"t", "f"}, func(t *testing.T, root, outside string) {
			mkdir(t, filepath.Join(root, "real"))
			symlink(t, filepath.Join(root, "real"), filepath.Join(root, "t"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
			mkdir(t, root)
			mkdir(t, outside)
			if err := os.WriteFile(filepath.Join(outside, "precious"), []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.plant != nil {
				tc.plant(t, root, outside)
			}
			info := &metainfo.Info{Name: "t", PieceLength: 16, Length: 10,
				Files: []metainfo.File{{Path: []string{"ok"}, Length: 0}, {Path: tc.path, Length: 10}}}
			s, err := Open(root, info)
			if !errors.Is(err, ErrUnsafePath) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open(%q) = %v, want %v", tc.path, err, ErrUnsafePath)
			}
			if s != nil {
				t.Error("Open returned storage along with its error")
			}
			entries, err := os.ReadDir(outside)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "precious" {
				t.Errorf("outside the root now holds %v, want only precious", entries)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "precious")); string(b) != "keep" {
				t.Errorf("the file outside now holds %q", b)
			}
			if _, err := os.Stat(filepath.Join(base, "x")); err == nil {
				t.Error("a file was created beside the root")
			}
		})
	}
}

// TestChangedBehindOurBack: a file deleted, replaced or truncated while open makes Sync and
// Close fail with ErrFileChanged, since what was written to it is no longer on disk.
func TestChangedBehindOurBack(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, name string)
	}{
		{"deleted", func(t *testing.T, name string) {
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced", func(t *testing.T, name string) {
			tmp := name + ".new"
			if err := os.WriteFile(tmp, make([]byte, 70), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, name); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, name string) {
			if err := os.Truncate(name, 10); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := layout("t", 50, 70)
			dir := t.TempDir()
			s, err := Open(dir, info)
			if err != nil {
				t.Fatal(err)
			}
			data := payload(3, info.Length)
			if _, err := s.WriteAt(data, 0); err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync() before the change = %v", err)
			}
			tc.change(t, filepath.Join(dir, "t", "f1.bin"))
			if _, err := s.WriteAt(data[:50], 0); err != nil { // the first file only
				t.Fatalf("WriteAt() after the change = %v", err)
			}
			if err := s.Sync(); !errors.Is(err, ErrFileChanged) || !strings.Contains(err.Error(), "f1.bin") {
				t.Errorf("Sync() = %v, want %v naming f1.bin", err, ErrFileChanged)
			}
			if err := s.Close(); !errors.Is(err, ErrFileChanged) {
				t.Errorf("Close() = %v, want %v", err, ErrFileChanged)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}
