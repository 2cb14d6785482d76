package resume

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// padInfo is a torrent "t" in pieces of 100: f0 (130 bytes), 70 bytes of padding, a
// symlink, 150 bytes of padding (piece 3 is all padding), f1 (120 bytes); the padding
// is zeros in data, as in every torrent its creator hashed.
func padInfo(t *testing.T) (*metainfo.Info, []byte) {
	t.Helper()
	info := &metainfo.Info{Name: "t", PieceLength: 100, MultiFile: true}
	add := func(f metainfo.File) {
		f.Offset = info.Length
		info.Files = append(info.Files, f)
		info.Length += f.Length
	}
	add(metainfo.File{Path: []string{"t", "f0"}, Length: 130})
	add(metainfo.File{Path: []string{"t", ".pad", "70"}, Length: 70, Attr: metainfo.AttrPad})
	add(metainfo.File{Path: []string{"t", "link"}, Attr: metainfo.AttrSymlink, SymlinkPath: []string{"t", "f0"}})
	add(metainfo.File{Path: []string{"t", ".pad", "150"}, Length: 150, Attr: metainfo.AttrPad})
	add(metainfo.File{Path: []string{"t", "f1"}, Length: 120})
	data := make([]byte, info.Length)
	for i := range data {
		data[i] = byte(i%251 + 1)
	}
	for _, f := range info.Files {
		if f.IsPad() {
			clear(data[f.Offset : f.Offset+f.Length])
		}
	}
	for off := int64(0); off < info.Length; off += info.PieceLength {
		sum := sha1.Sum(data[off:min(off+info.PieceLength, info.Length)])
		info.Pieces = append(info.Pieces, sum[:]...)
	}
	return info, data
}

// TestRecheckPadding: padding counts as zeros and is never read, whatever the reader
// holds there, so the pieces around it check and an all-padding piece checks without a
// read; padding files and symlinks are neither opened, nor missing, nor stamped.
func TestRecheckPadding(t *testing.T) {
	info, data := padInfo(t)
	dir := t.TempDir()
	for _, i := range []int{0, 4} {
		f := info.Files[i]
		name := filepath.Join(append([]string{dir}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenReader(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range info.Files {
		if r.Missing(i) {
			t.Errorf("Missing(%d) = true for %q, which is there or is not a file", i, info.Files[i].Path)
		}
	}
	got := make([]byte, info.Length)
	if n, err := r.ReadAt(got, 0); n != len(got) || err != nil || !bytes.Equal(got, data) {
		t.Errorf("Reader.ReadAt = %d, %v; equal to the data with zero padding: %v", n, err, bytes.Equal(got, data))
	}

	// A reader with garbage in the padding, that counts what it is asked for.
	garbage := bytes.Clone(data)
	for _, f := range info.Files {
		if f.IsPad() {
			for i := f.Offset; i < f.Offset+f.Length; i++ {
				garbage[i] = 0xee
			}
		}
	}
	var asked []string
	sloppy := readerFunc(func(p []byte, off int64) (int, error) {
		asked = append(asked, fmt.Sprintf("[%d,%d)", off, off+int64(len(p))))
		return copy(p, garbage[off:]), nil
	})
	for name, ra := range map[string]interface {
		ReadAt([]byte, int64) (int, error)
	}{"Reader": r, "reader with garbage in the padding": sloppy} {
		have, err := Recheck(context.Background(), info, ra, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if have.Count() != info.NumPieces() {
			t.Errorf("Recheck through %s: %d of %d pieces", name, have.Count(), info.NumPieces())
		}
	}
	// Pieces: [0,100) [100,200) [200,300) [300,400) [400,470); padding [130,200) [200,350).
	want := "[[0,100) [100,130) [350,400) [400,470)]"
	if got := fmt.Sprint(asked); got != want {
		t.Errorf("Recheck read %s, want %s: padding is never read", got, want)
	}

	stamps, err := Stamp(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stamps {
		if want := info.Files[i].OnDisk(); (s.Size >= 0) != want {
			t.Errorf("Stamp: files[%d] %q size %d", i, info.Files[i].Path, s.Size)
		}
	}
	// A symlink in the link's place (made after a download) leaves the stamps alone.
	if err := os.Symlink(".", filepath.Join(dir, "t", "link")); err != nil {
		t.Fatal(err)
	}
	again, err := Stamp(dir, info)
	if err != nil || !(&Record{Files: stamps}).Matches(again) {
		t.Errorf("Stamp after the link was made = %v, %v; want %v", again, err, stamps)
	}
}
