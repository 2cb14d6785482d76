package resume

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// newInfo generates seeded random files of the given sizes and the info that describes
// them as a multi-file torrent named name: files f0.bin, f1.bin, ... in directory name.
func newInfo(t testing.TB, seed uint64, name string, pieceLen int64, sizes ...int64) (*metainfo.Info, []byte) {
	t.Helper()
	info := &metainfo.Info{Name: name, PieceLength: pieceLen, MultiFile: true}
	for i, s := range sizes {
		info.Files = append(info.Files, metainfo.File{
			Path: []string{name, fmt.Sprintf("f%d.bin", i)}, Length: s, Offset: info.Length,
		})
		info.Length += s
	}
	data := make([]byte, info.Length)
	var seedBytes [32]byte
	seedBytes[0], seedBytes[1] = byte(seed), byte(seed>>8)
	rand.NewChaCha8(seedBytes).Read(data)
	for off := int64(0); off < info.Length; off += pieceLen {
		sum := sha1.Sum(data[off:min(off+pieceLen, info.Length)])
		info.Pieces = append(info.Pieces, sum[:]...)
	}
	return info, data
}

// writeFiles writes data as the files of info below dir.
func writeFiles(t testing.TB, dir string, info *metainfo.Info, data []byte) {
	t.Helper()
	for _, f := range info.Files {
		name := filepath.Join(append([]string{dir}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var hash1 = [20]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}

func sampleRecord(info *metainfo.Info) *Record {
	pieces := wire.NewBitfield(info.NumPieces())
	pieces.Set(0)
	pieces.Set(info.NumPieces() - 1)
	files := make([]FileStamp, len(info.Files))
	for i := range files {
		files[i] = FileStamp{Size: int64(1000 + i), ModTime: time.Unix(1_700_000_000, int64(123456789+i))}
	}
	files[len(files)-1] = FileStamp{Size: -1} // missing
	return &Record{InfoHash: hash1, Pieces: pieces, Files: files}
}

func TestPath(t *testing.T) {
	got := Path("out", hash1)
	want := filepath.Join("out", ".bitstorm", "0102030405060708090a0b0c0d0e0f1011121314.resume")
	if got != want {
		t.Errorf("Path = %q, want %q", got, want)
	}
}

func TestSaveLoad(t *testing.T) {
	info, _ := newInfo(t, 1, "t", 16, 40, 0, 30) // 5 pieces
	path := Path(t.TempDir(), hash1)
	rec := sampleRecord(info)
	for range 2 { // the second Save replaces the first
		if err := Save(path, rec); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	got, err := Load(path, info, hash1)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.InfoHash != rec.InfoHash || !bytes.Equal(got.Pieces, rec.Pieces) {
		t.Errorf("Load = %x %08b, want %x %08b", got.InfoHash, got.Pieces, rec.InfoHash, rec.Pieces)
	}
	if !got.Matches(rec.Files) {
		t.Errorf("Load files = %v, want %v", got.Files, rec.Files)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(path) {
		t.Errorf("directory holds %v, want only %s (no temporary files)", entries, filepath.Base(path))
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{`"version":1`, `"sha256":"`, `"info_hash":"0102`, `"mtime_ns":1700000000123456789`, `"size":-1,"mtime_ns":0`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("record %s does not contain %s", data, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	info, _ := newInfo(t, 1, "t", 16, 40, 0, 30)
	dir := t.TempDir()
	good := Path(dir, hash1)
	if err := Save(good, sampleRecord(info)); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, data []byte) string {
		path := filepath.Join(t.TempDir(), "r.resume")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	other, _ := newInfo(t, 1, "t", 16, 40, 30) // 2 files instead of 3
	shorter, _ := newInfo(t, 1, "t", 16, 40, 0, 90)
	tests := []struct {
		name string
		path func(t *testing.T) string
		info *metainfo.Info
		hash [20]byte
		want error
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(dir, "none.resume") }, info, hash1, fs.ErrNotExist},
		{"empty", func(t *testing.T) string { return write(t, nil) }, info, hash1, ErrCorrupt},
		{"not json", func(t *testing.T) string { return write(t, []byte("hello")) }, info, hash1, ErrCorrupt},
		{"version 2", func(t *testing.T) string {
			return write(t, bytes.Replace(valid, []byte(`"version":1`), []byte(`"version":2`), 1))
		}, info, hash1, ErrCorrupt},
		{"oversized", func(t *testing.T) string {
			return write(t, append(bytes.TrimSpace(valid), bytes.Repeat([]byte(" "), 1<<20)...))
		}, info, hash1, ErrCorrupt},
		{"other info hash", func(t *testing.T) string { return good }, info, [20]byte{9}, ErrOtherTorrent},
		{"other file count", func(t *testing.T) string { return good }, other, hash1, ErrCorrupt},
		{"other piece count", func(t *testing.T) string { return good }, shorter, hash1, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path(t), tt.info, tt.hash)
			if !errors.Is(err, tt.want) {
				t.Errorf("Load = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "resume: ") {
				t.Errorf("Load error %q does not start with the package name", err)
			}
		})
	}

	// A torn or garbled record is never trusted: every single-byte flip and every
	// truncation (except of the final newline) is ErrCorrupt.
	t.Run("flipped byte", func(t *testing.T) {
		for i := range valid {
			data := bytes.Clone(valid)
			data[i] ^= 0x01
			if _, err := Load(write(t, data), info, hash1); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d flipped (%q): Load = %v, want ErrCorrupt", i, data, err)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := range len(valid) - 1 {
			if _, err := Load(write(t, valid[:n]), info, hash1); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d bytes: Load = %v, want ErrCorrupt", n, err)
			}
		}
	})
}

func TestSaveErrors(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		rec  *Record
	}{
		{"nil record", filepath.Join(dir, "a.resume"), nil},
		{"directory is a file", filepath.Join(blocker, "a.resume"), &Record{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Save(tt.path, tt.rec); err == nil || !strings.HasPrefix(err.Error(), "resume: save") {
				t.Errorf("Save = %v, want a resume: save error", err)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	info, data := newInfo(t, 2, "t", 16, 40, 0, 30)
	dir := t.TempDir()
	writeFiles(t, dir, info, data)
	mtime := time.Unix(1_600_000_000, 987654321)
	first := filepath.Join(dir, "t", "f0.bin")
	if err := os.Chtimes(first, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "t", "f2.bin")); err != nil {
		t.Fatal(err)
	}
	got, err := Stamp(dir, info)
	if err != nil {
		t.Fatalf("Stamp: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("Stamp = %v, want 3 stamps", got)
	}
	if got[0].Size != 40 || !got[0].ModTime.Equal(mtime) {
		t.Errorf("Stamp[0] = %v, want size 40 at %v", got[0], mtime)
	}
	if got[1].Size != 0 || got[1].ModTime.IsZero() {
		t.Errorf("Stamp[1] = %v, want size 0 and a time", got[1])
	}
	if got[2] != (FileStamp{Size: -1}) {
		t.Errorf("Stamp[2] = %v, want size -1 (missing)", got[2])
	}

	// Stamps survive a round trip through a record.
	path := Path(dir, hash1)
	if err := Save(path, &Record{InfoHash: hash1, Pieces: wire.NewBitfield(info.NumPieces()), Files: got}); err != nil {
		t.Fatal(err)
	}
	rec, err := Load(path, info, hash1)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Matches(got) {
		t.Errorf("loaded stamps %v do not match %v", rec.Files, got)
	}

	if err := os.Mkdir(filepath.Join(dir, "t", "f2.bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Stamp(dir, info); err == nil {
		t.Errorf("Stamp with a directory in place of a file = nil error, want one")
	}
}

func TestMatches(t *testing.T) {
	base := time.Unix(1_700_000_000, 5)
	rec := &Record{Files: []FileStamp{{Size: 10, ModTime: base}, {Size: -1}}}
	tests := []struct {
		name   string
		stamps []FileStamp
		want   bool
	}{
		{"same", []FileStamp{{Size: 10, ModTime: base}, {Size: -1}}, true},
		{"same instant, other zone", []FileStamp{{Size: 10, ModTime: base.In(time.FixedZone("x", 3600))}, {Size: -1}}, true},
		{"size differs", []FileStamp{{Size: 11, ModTime: base}, {Size: -1}}, false},
		{"mtime differs by 1ns", []FileStamp{{Size: 10, ModTime: base.Add(time.Nanosecond)}, {Size: -1}}, false},
		{"file appeared", []FileStamp{{Size: 10, ModTime: base}, {Size: 0, ModTime: base}}, false},
		{"fewer files", []FileStamp{{Size: 10, ModTime: base}}, false},
		{"more files", []FileStamp{{Size: 10, ModTime: base}, {Size: -1}, {Size: -1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rec.Matches(tt.stamps); got != tt.want {
				t.Errorf("Matches(%v) = %v, want %v", tt.stamps, got, tt.want)
			}
		})
	}
}
