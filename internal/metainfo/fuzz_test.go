package metainfo

import (
	"bytes"
	"crypto/sha1"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// FuzzParse checks that Parse never panics and that whatever it accepts keeps the
// promises the rest of BitStorm relies on: safe paths, a consistent layout, one hash per
// piece, and the info hash of the raw info bytes.
func FuzzParse(f *testing.F) {
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "*.torrent"))
	for _, path := range fixtures {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	m := multiInfo()
	for _, seed := range [][]byte{
		torrent(singleInfo()),
		torrent(m),
		torrent(with(m, "private", 1)),
		torrent(withFile(m, 2, map[string]any{"length": 90, "path": []string{"sub", ".."}})),
		torrent(withFile(m, 2, map[string]any{"length": 90, "path": []string{"a.txt"}})),
		enc(map[string]any{"announce-list": []any{[]any{"http://a/"}, "http://b/"}, "info": singleInfo()}),
		enc(dict{{"info", dict{{"pieces", hashes(1)}, {"name", "x"}, {"length", 1}, {"piece length", 1}}}}),
		[]byte("d4:infod6:lengthi-1eee"),
		append(torrent(singleInfo()), "trailing\n"...),
		torrent(filesInfo(file(100, "x", "run.sh"), file(16284, "p", ".pad", "16284"), file(5, "h", "b"),
			link("l", []string{"run.sh"}, "c"))),
		torrent(hybridInfo()),
		torrent(with(with(with(with(singleInfo(), "piece length", 16384), "pieces", hashes(1)), "meta version", 2),
			"file tree", map[string]any{"file.bin": map[string]any{"": map[string]any{"attr": "l", "symlink path": []string{"x"}}}})),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mi, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		info := &mi.Info
		raw, err := bencode.DictValue(data[:valueEnd(data)], "info")
		if err != nil || sha1.Sum(raw) != mi.InfoHash {
			t.Fatalf("InfoHash = %x, want sha1 of DictValue = %q, %v", mi.InfoHash, raw, err)
		}
		if info.PieceLength <= 0 || info.Length <= 0 || len(info.Files) == 0 {
			t.Fatalf("accepted %+v", info)
		}
		if want := (info.Length-1)/info.PieceLength + 1; int64(info.NumPieces()) != want {
			t.Fatalf("NumPieces() = %d, want %d", info.NumPieces(), want)
		}
		last := info.NumPieces() - 1
		if s := info.PieceSize(last); s <= 0 || s > info.PieceLength || info.PieceOffset(last)+s != info.Length {
			t.Fatalf("last piece %d: size %d at %d, length %d", last, s, info.PieceOffset(last), info.Length)
		}
		var off int64
		seen := make(map[string]bool)
		for i, file := range info.Files {
			if file.Offset != off || file.Length < 0 || len(file.Path) == 0 || file.Path[0] != info.Name {
				t.Fatalf("files[%d] = %+v at offset %d", i, file, off)
			}
			if (len(file.Path) > 1) != info.MultiFile {
				t.Fatalf("files[%d].Path = %q, MultiFile = %v", i, file.Path, info.MultiFile)
			}
			for _, c := range append(slices.Clone(file.Path), file.SymlinkPath...) {
				if err := checkComponent(c); err != nil || len(c) > 255 {
					t.Fatalf("files[%d] = %+v: %q: %v", i, file, c, err)
				}
			}
			if file.IsSymlink() != (file.SymlinkPath != nil) || file.IsSymlink() && (file.Length != 0 || file.SymlinkPath[0] != info.Name) {
				t.Fatalf("files[%d] = %+v", i, file)
			}
			key := filepath.Join(file.Path...)
			if seen[key] && !file.IsPad() {
				t.Fatalf("files[%d].Path = %q twice", i, file.Path)
			}
			seen[key] = !file.IsPad()
			off += file.Length
		}
		if off != info.Length {
			t.Fatalf("files add up to %d, Length = %d", off, info.Length)
		}
	})
}
