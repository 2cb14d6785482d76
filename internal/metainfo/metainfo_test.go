package metainfo

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseErrors(t *testing.T) {
	s, m := singleInfo(), multiInfo()
	file := func(length any, path any) map[string]any {
		f := map[string]any{}
		if length != nil {
			f["length"] = length
		}
		if path != nil {
			f["path"] = path
		}
		return f
	}
	tests := []struct {
		name string
		in   []byte
		want string // the whole error, or its prefix when it ends in "..."
	}{
		{name: "not bencode", in: []byte("d8:announce"), want: "metainfo: bencode: offset 11: unexpected end of input"},
		{name: "empty", in: nil, want: "metainfo: bencode: offset 0: unexpected end of input"},
		{name: "duplicate info key", in: []byte("d4:info" + string(enc(s)) + "4:info" + string(enc(m)) + "e"),
			want: `metainfo: bencode: offset ...duplicate dictionary key "info"`},
		{name: "top level list", in: []byte("le"), want: "metainfo: top level: want a dictionary, got list"},
		{name: "info missing", in: enc(map[string]any{"announce": "x"}), want: "metainfo: info: missing"},
		{name: "info a string", in: torrent("x"), want: "metainfo: info: want a dictionary, got string"},

		{name: "name missing", in: torrent(with(s, "name", nil)), want: "metainfo: info.name: missing"},
		{name: "name empty", in: torrent(with(s, "name", "")), want: "metainfo: info.name: must not be empty"},
		{name: "name dot dot", in: torrent(with(s, "name", "..")), want: `metainfo: info.name: ".." is not allowed`},
		{name: "name dot", in: torrent(with(m, "name", ".")), want: `metainfo: info.name: "." is not allowed`},
		{name: "name absolute", in: torrent(with(s, "name", "/etc/passwd")), want: `metainfo: info.name: "/etc/passwd" contains '/'`},
		{name: "name an integer", in: torrent(with(s, "name", 7)), want: "metainfo: info.name: want a string, got integer"},

		{name: "piece length missing", in: torrent(with(s, "piece length", nil)), want: "metainfo: info.piece length: missing"},
		{name: "piece length zero", in: torrent(with(s, "piece length", 0)), want: "metainfo: info.piece length: must be > 0"},
		{name: "piece length negative", in: torrent(with(s, "piece length", -32)), want: "metainfo: info.piece length: must be > 0"},
		{name: "piece length too large", in: torrent(with(s, "piece length", MaxPieceLength+1)),
			want: "metainfo: info.piece length: 268435457 exceeds the limit of 268435456"},
		{name: "piece length a string", in: torrent(with(s, "piece length", "32")), want: "metainfo: info.piece length: want an integer, got string"},

		{name: "pieces missing", in: torrent(with(s, "pieces", nil)), want: "metainfo: info.pieces: missing"},
		{name: "pieces missing in v2 torrent", in: torrent(with(with(s, "pieces", nil), "meta version", 2)),
			want: `metainfo: BitTorrent v2-only torrents are not supported yet (the info dictionary has a v2 "file tree" and no v1 "pieces")`},
		{name: "pieces missing beside a file tree", in: torrent(with(with(s, "pieces", nil), "file tree", map[string]any{})),
			want: "metainfo: BitTorrent v2-only torrents are not supported yet..."},
		{name: "unknown meta version", in: torrent(with(s, "meta version", 3)), want: "metainfo: info.meta version: 3 is unknown"},
		{name: "v2 piece length not a power of two", in: torrent(with(with(s, "meta version", 2), "file tree", map[string]any{})),
			want: "metainfo: info.piece length: 32 is not a power of two of at least 16 KiB, as BEP 52 requires"},
		{name: "pieces a list", in: torrent(with(s, "pieces", []any{})), want: "metainfo: info.pieces: want a string, got list"},
		{name: "pieces not a multiple of 20", in: torrent(with(s, "pieces", hashes(2)+"x")),
			want: "metainfo: info.pieces: length 41 is not a multiple of 20"},
		{name: "too few hashes", in: torrent(with(s, "pieces", hashes(3))),
			want: "metainfo: info.pieces: 3 hashes, want 4 for length 100 in pieces of 32"},
		{name: "too many hashes", in: torrent(with(s, "pieces", hashes(5))),
			want: "metainfo: info.pieces: 5 hashes, want 4 for length 100 in pieces of 32"},
		{name: "no hashes", in: torrent(with(s, "pieces", "")),
			want: "metainfo: info.pieces: 0 hashes, want 4 for length 100 in pieces of 32"},
		{name: "too many pieces", in: torrent(with(with(s, "piece length", 1), "length", MaxPieces+1)),
			want: "metainfo: info: length 4000001 in pieces of 1 makes 4000001 pieces, more than 4000000"},
		{name: "huge length", in: torrent(with(s, "length", int64(math.MaxInt64))),
			want: "metainfo: info: length 9223372036854775807 in pieces of 32 makes 288230376151711744 pieces, more than 4000000"},

		{name: "length and files", in: torrent(with(s, "files", m["files"])),
			want: `metainfo: info: has both "length" (single-file) and "files" (multi-file)`},
		{name: "neither length nor files", in: torrent(with(s, "length", nil)),
			want: `metainfo: info: has neither "length" (single-file) nor "files" (multi-file)`},
		{name: "length zero", in: torrent(with(with(s, "length", 0), "pieces", "")), want: "metainfo: info.length: must be > 0"},
		{name: "length negative", in: torrent(with(s, "length", -1)), want: "metainfo: info.length: must be > 0"},
		{name: "length a string", in: torrent(with(s, "length", "100")), want: "metainfo: info.length: want an integer, got string"},

		{name: "files a string", in: torrent(with(m, "files", "a")), want: "metainfo: info.files: want a list, got string"},
		{name: "files empty", in: torrent(with(m, "files", []any{})), want: "metainfo: info.files: must not be empty"},
		{name: "file not a dict", in: torrent(withFile(m, 1, "x")), want: "metainfo: info.files[1]: want a dictionary, got string"},
		{name: "file length missing", in: torrent(withFile(m, 0, file(nil, []string{"a"}))), want: "metainfo: info.files[0].length: missing"},
		{name: "file length negative", in: torrent(withFile(m, 2, file(-1, []string{"b"}))), want: "metainfo: info.files[2].length: must be >= 0"},
		{name: "file length a list", in: torrent(withFile(m, 2, file([]any{}, []string{"b"}))),
			want: "metainfo: info.files[2].length: want an integer, got list"},
		{name: "total length overflows", in: torrent(withFile(withFile(m, 0, file(int64(math.MaxInt64), []string{"a"})), 1, file(1, []string{"b"}))),
			want: "metainfo: info.files[1].length: total length overflows int64"},
		{name: "total length zero", in: torrent(with(with(m, "pieces", ""), "files", []any{file(0, []string{"a"}), file(0, []string{"b"})})),
			want: "metainfo: info.files: total length must be > 0"},
		{name: "path missing", in: torrent(withFile(m, 0, file(10, nil))), want: "metainfo: info.files[0].path: missing"},
		{name: "path a string", in: torrent(withFile(m, 0, file(10, "a.txt"))), want: "metainfo: info.files[0].path: want a list, got string"},
		{name: "path empty", in: torrent(withFile(m, 0, file(10, []string{}))), want: "metainfo: info.files[0].path: must not be empty"},
		{name: "path component an integer", in: torrent(withFile(m, 2, file(90, []any{"sub", 1}))),
			want: "metainfo: info.files[2].path[1]: want a string, got integer"},
		{name: "path dot dot", in: torrent(withFile(m, 2, file(90, []string{"sub", ".."}))),
			want: `metainfo: info.files[2].path[1]: ".." is not allowed`},
		{name: "path dot dot first", in: torrent(withFile(m, 2, file(90, []string{"..", "..", "etc", "passwd"}))),
			want: `metainfo: info.files[2].path[0]: ".." is not allowed`},
		{name: "path dot", in: torrent(withFile(m, 2, file(90, []string{".", "b"}))),
			want: `metainfo: info.files[2].path[0]: "." is not allowed`},
		{name: "path empty component", in: torrent(withFile(m, 2, file(90, []string{"sub", ""}))),
			want: "metainfo: info.files[2].path[1]: must not be empty"},
		{name: "path absolute component", in: torrent(withFile(m, 2, file(90, []string{"/etc/passwd"}))),
			want: `metainfo: info.files[2].path[0]: "/etc/passwd" contains '/'`},
		{name: "path slash inside", in: torrent(withFile(m, 2, file(90, []string{"sub/../../x"}))),
			want: `metainfo: info.files[2].path[0]: "sub/../../x" contains '/'`},
		{name: "path backslash", in: torrent(withFile(m, 2, file(90, []string{`..\..\x`}))),
			want: `metainfo: info.files[2].path[0]: "..\\..\\x" contains '\'`},
		{name: "path NUL", in: torrent(withFile(m, 2, file(90, []string{"b\x00.txt"}))),
			want: `metainfo: info.files[2].path[0]: "b\x00.txt" contains NUL`},
		{name: "duplicate path", in: torrent(withFile(m, 2, file(90, []string{"a.txt"}))),
			want: "metainfo: info.files[2].path: same path as info.files[0]"},
		{name: "duplicate nested path", in: torrent(withFile(m, 2, file(90, []string{"sub", "empty"}))),
			want: "metainfo: info.files[2].path: same path as info.files[1]"},
		{name: "file used as directory", in: torrent(withFile(m, 2, file(90, []string{"a.txt", "b"}))),
			want: `metainfo: info.files[2].path: "a.txt" is a file, info.files[0]`},
		{name: "directory used as file", in: torrent(withFile(m, 2, file(90, []string{"sub"}))),
			want: `metainfo: info.files[2].path: "sub" is a directory of info.files[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse(%.80q) = %+v, want error %q", tt.in, got.Info, tt.want)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("Parse(%.80q) = %q, want prefix %q", tt.in, err, prefix)
				}
				return
			}
			// "...X" in the middle: prefix and suffix.
			if before, after, ok := strings.Cut(tt.want, "..."); ok {
				if !strings.HasPrefix(err.Error(), before) || !strings.HasSuffix(err.Error(), after) {
					t.Errorf("Parse(%.80q) = %q, want %q", tt.in, err, tt.want)
				}
				return
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%.80q) = %q, want %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseSingleFile(t *testing.T) {
	mi, err := Parse(bytes.NewReader(torrent(singleInfo())))
	if err != nil {
		t.Fatal(err)
	}
	want := Info{
		Name:        "file.bin",
		PieceLength: 32,
		Pieces:      []byte(hashes(4)),
		Length:      100,
		Files:       []File{{Path: []string{"file.bin"}, Length: 100, Offset: 0}},
	}
	if !reflect.DeepEqual(mi.Info, want) {
		t.Errorf("Parse: Info = %+v, want %+v", mi.Info, want)
	}
	if mi.Announce != "http://127.0.0.1:1/announce" {
		t.Errorf("Parse: Announce = %q", mi.Announce)
	}
}

func TestParseMultiFile(t *testing.T) {
	mi, err := Parse(bytes.NewReader(torrent(multiInfo())))
	if err != nil {
		t.Fatal(err)
	}
	want := Info{
		Name:        "dir",
		PieceLength: 32,
		Pieces:      []byte(hashes(4)),
		Length:      100,
		MultiFile:   true,
		Files: []File{
			{Path: []string{"dir", "a.txt"}, Length: 10, Offset: 0},
			{Path: []string{"dir", "sub", "empty"}, Length: 0, Offset: 10},
			{Path: []string{"dir", "sub", "b.bin"}, Length: 90, Offset: 10},
		},
	}
	if !reflect.DeepEqual(mi.Info, want) {
		t.Errorf("Parse: Info = %+v, want %+v", mi.Info, want)
	}
}

func TestParseAccepts(t *testing.T) {
	s, m := singleInfo(), multiInfo()
	tests := []struct {
		name  string
		in    []byte
		check func(*MetaInfo) bool
	}{
		{name: "length a multiple of the piece length", in: torrent(with(with(s, "length", 128), "pieces", hashes(4))),
			check: func(mi *MetaInfo) bool { return mi.Info.NumPieces() == 4 && mi.Info.PieceSize(3) == 32 }},
		{name: "one piece longer than the data", in: torrent(with(with(s, "piece length", 1<<20), "pieces", hashes(1))),
			check: func(mi *MetaInfo) bool { return mi.Info.NumPieces() == 1 && mi.Info.PieceSize(0) == 100 }},
		{name: "private 1", in: torrent(with(s, "private", 1)), check: func(mi *MetaInfo) bool { return mi.Info.Private }},
		{name: "private 0", in: torrent(with(s, "private", 0)), check: func(mi *MetaInfo) bool { return !mi.Info.Private }},
		{name: "private a string", in: torrent(with(s, "private", "1")), check: func(mi *MetaInfo) bool { return !mi.Info.Private }},
		{name: "unknown info keys", in: torrent(with(with(s, "source", "x"), "x-extra", []any{1})),
			check: func(mi *MetaInfo) bool { return mi.Info.Name == "file.bin" }},
		{name: "padding file (BEP 47)", in: torrent(withFile(m, 1, map[string]any{"attr": "p", "length": 0, "path": []string{".pad", "0"}})),
			check: func(mi *MetaInfo) bool { return mi.Info.Files[1].Path[1] == ".pad" }},
		{name: "names that look odd but are safe", in: torrent(withFile(m, 2, map[string]any{"length": 90, "path": []string{"...", ".hidden", "a b", "ü"}})),
			check: func(mi *MetaInfo) bool { return len(mi.Info.Files[2].Path) == 5 }},
		{name: "same name in different directories", in: torrent(withFile(m, 2, map[string]any{"length": 90, "path": []string{"sub2", "empty"}})),
			check: func(mi *MetaInfo) bool { return len(mi.Info.Files) == 3 }},
		{name: "file and directory differing in case", in: torrent(withFile(m, 2, map[string]any{"length": 90, "path": []string{"A.txt", "b"}})),
			check: func(mi *MetaInfo) bool { return len(mi.Info.Files) == 3 }},
		{name: "creation date", in: enc(map[string]any{"creation date": 1700000000, "info": s}),
			check: func(mi *MetaInfo) bool { return mi.CreationDate.Equal(time.Unix(1700000000, 0)) }},
		{name: "creation date absent", in: enc(map[string]any{"info": s}),
			check: func(mi *MetaInfo) bool { return mi.CreationDate.IsZero() }},
		{name: "creation date negative", in: enc(map[string]any{"creation date": -5, "info": s}),
			check: func(mi *MetaInfo) bool { return mi.CreationDate.IsZero() }},
		{name: "creation date a string is ignored", in: enc(map[string]any{"creation date": "today", "info": s}),
			check: func(mi *MetaInfo) bool { return mi.CreationDate.IsZero() }},
		{name: "comment and created by", in: enc(map[string]any{"comment": "hi", "created by": "me", "info": s}),
			check: func(mi *MetaInfo) bool { return mi.Comment == "hi" && mi.CreatedBy == "me" }},
		{name: "comment a list is ignored", in: enc(map[string]any{"comment": []any{}, "info": s}),
			check: func(mi *MetaInfo) bool { return mi.Comment == "" }},
		{name: "url-list string", in: enc(map[string]any{"url-list": "http://ws/", "info": s}),
			check: func(mi *MetaInfo) bool { return reflect.DeepEqual(mi.URLList, []string{"http://ws/"}) }},
		{name: "url-list list", in: enc(map[string]any{"url-list": []any{"http://a/", "", 3, "http://b/"}, "info": s}),
			check: func(mi *MetaInfo) bool { return reflect.DeepEqual(mi.URLList, []string{"http://a/", "http://b/"}) }},
		{name: "url-list empty string", in: enc(map[string]any{"url-list": "", "info": s}),
			check: func(mi *MetaInfo) bool { return mi.URLList == nil }},
		{name: "nodes (BEP 5), the malformed skipped", in: enc(map[string]any{"info": s, "nodes": []any{
			[]any{"127.0.0.1", 6881}, []any{"router.example.org", 4804}, []any{"::1", 7000},
			[]any{"", 1}, []any{"host"}, []any{"host", 0}, []any{"host", 70000}, []any{5, 6}, "host:1"}}),
			check: func(mi *MetaInfo) bool {
				return reflect.DeepEqual(mi.Nodes, []string{"127.0.0.1:6881", "router.example.org:4804", "[::1]:7000"})
			}},
		{name: "nodes not a list", in: enc(map[string]any{"info": s, "nodes": "127.0.0.1:6881"}),
			check: func(mi *MetaInfo) bool { return mi.Nodes == nil }},
		{name: "announce-list tier as a bare string", in: enc(map[string]any{"announce-list": []any{"http://a/", []any{"http://b/"}}, "info": s}),
			check: func(mi *MetaInfo) bool {
				return reflect.DeepEqual(mi.AnnounceList, [][]string{{"http://a/"}, {"http://b/"}})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mi, err := Parse(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse(%.80q) = %v", tt.in, err)
			}
			if !tt.check(mi) {
				t.Errorf("Parse(%.80q) = %+v: check failed", tt.in, mi)
			}
		})
	}
}

// TestInfoHashRawBytes proves the info hash is taken over the info dictionary's bytes as
// they are in the file: keys out of order and unknown keys change the hash, and a
// re-encoding would sort the first away and could drop the second.
func TestInfoHashRawBytes(t *testing.T) {
	info := dict{ // not sorted: "pieces" < "piece length" is false, "name" after "length" is
		{"piece length", 32},
		{"name", "file.bin"},
		{"zz-unknown", dict{{"b", 1}, {"a", []any{"x"}}}},
		{"length", 100},
		{"pieces", hashes(4)},
	}
	rawInfo := enc(info)
	data := enc(dict{{"info", raw(rawInfo)}, {"announce", "http://127.0.0.1:1/announce"}})
	mi, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, rawInfo) {
		t.Fatal("test torrent lost its info bytes")
	}
	if want := sha1.Sum(rawInfo); mi.InfoHash != want {
		t.Errorf("InfoHash = %x, want sha1 of the raw info bytes %x", mi.InfoHash, want)
	}
	canonical := enc(map[string]any{
		"piece length": 32, "name": "file.bin", "length": 100, "pieces": hashes(4),
		"zz-unknown": map[string]any{"a": []any{"x"}, "b": 1},
	})
	if sha1.Sum(canonical) == mi.InfoHash {
		t.Error("InfoHash equals the hash of a sorted re-encoding; want the raw bytes' hash")
	}
	if got, want := mi.HexHash(), strings.ToLower(mi.HexHash()); len(got) != 40 || got != want {
		t.Errorf("HexHash() = %q, want 40 lowercase hex digits", got)
	}
}

func TestPieces(t *testing.T) {
	info := Info{PieceLength: 32, Length: 100, Pieces: []byte(hashes(4))}
	tests := []struct {
		index        int
		size, offset int64
	}{
		{index: 0, size: 32, offset: 0},
		{index: 1, size: 32, offset: 32},
		{index: 2, size: 32, offset: 64},
		{index: 3, size: 4, offset: 96}, // the last piece is short: 100 - 96
	}
	for _, tt := range tests {
		if got := info.PieceSize(tt.index); got != tt.size {
			t.Errorf("PieceSize(%d) = %d, want %d", tt.index, got, tt.size)
		}
		if got := info.PieceOffset(tt.index); got != tt.offset {
			t.Errorf("PieceOffset(%d) = %d, want %d", tt.index, got, tt.offset)
		}
		var want [20]byte
		copy(want[:], hashes(4)[tt.index*20:])
		if got := info.PieceHash(tt.index); got != want {
			t.Errorf("PieceHash(%d) = %q, want %q", tt.index, got, want)
		}
	}
	if n := info.NumPieces(); n != 4 {
		t.Errorf("NumPieces() = %d, want 4", n)
	}
	for _, index := range []int{-1, 4} {
		for name, f := range map[string]func(int){
			"PieceSize":   func(i int) { info.PieceSize(i) },
			"PieceOffset": func(i int) { info.PieceOffset(i) },
			"PieceHash":   func(i int) { info.PieceHash(i) },
		} {
			t.Run(name, func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%d) did not panic", name, index)
					}
				}()
				f(index)
			})
		}
	}
}

func TestTrackers(t *testing.T) {
	tests := []struct {
		name     string
		announce string
		list     [][]string
		want     [][]string
	}{
		{name: "none", want: nil},
		{name: "announce only", announce: "http://a/", want: [][]string{{"http://a/"}}},
		{name: "announce-list wins", announce: "http://a/", list: [][]string{{"http://b/", "http://c/"}, {"http://d/"}},
			want: [][]string{{"http://b/", "http://c/"}, {"http://d/"}}},
		{name: "empty strings and tiers dropped", list: [][]string{{""}, {}, {"", "http://b/"}, {"http://c/", ""}},
			want: [][]string{{"http://b/"}, {"http://c/"}}},
		{name: "repeated URLs dropped", list: [][]string{{"http://b/", "http://b/"}, {"http://b/"}, {"http://c/"}},
			want: [][]string{{"http://b/"}, {"http://c/"}}},
		{name: "useless announce-list falls back", announce: "http://a/", list: [][]string{{""}, {}},
			want: [][]string{{"http://a/"}}},
		{name: "useless announce-list without announce", list: [][]string{{""}}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &MetaInfo{Announce: tt.announce, AnnounceList: tt.list}
			got := m.Trackers()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Trackers() = %q, want %q", got, tt.want)
			}
			if len(got) > 0 {
				got[0][0] = "changed"
				if again := m.Trackers(); again[0][0] == "changed" {
					t.Error("Trackers() shares memory with the MetaInfo")
				}
			}
		})
	}
}

func TestParseReaders(t *testing.T) {
	data := torrent(multiInfo())
	tests := []struct {
		name string
		r    io.Reader
	}{
		{name: "one byte", r: iotest.OneByteReader(bytes.NewReader(data))},
		{name: "half", r: iotest.HalfReader(bytes.NewReader(data))},
		{name: "data with EOF", r: iotest.DataErrReader(bytes.NewReader(data))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.r); err != nil {
				t.Errorf("Parse = %v", err)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		_, err := Parse(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(data))))
		if !errors.Is(err, iotest.ErrTimeout) || !strings.HasPrefix(err.Error(), "metainfo: read: ") {
			t.Errorf("Parse = %v, want metainfo: read: %v", err, iotest.ErrTimeout)
		}
	})
	t.Run("error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := Parse(iotest.ErrReader(boom))
		if !errors.Is(err, boom) {
			t.Errorf("Parse = %v, want %v", err, boom)
		}
	})
}

// endless yields left bytes of 'l' and counts what it yields.
type endless struct{ left, n int64 }

var ells = bytes.Repeat([]byte("l"), 64<<10)

func (e *endless) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), e.left)], ells)
	e.left -= int64(n)
	e.n += int64(n)
	return n, nil
}

func TestReadAtMost(t *testing.T) {
	tests := []struct {
		name string
		size int
		ok   bool
	}{
		{name: "empty", size: 0, ok: true},
		{name: "at the limit", size: 1000, ok: true},
		{name: "one byte over", size: 1001, ok: false},
		{name: "far over", size: 1 << 20, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &endless{left: int64(tt.size)}
			data, err := readAtMost(r, 1000)
			if tt.ok && (err != nil || len(data) != tt.size) {
				t.Errorf("readAtMost(%d bytes, 1000) = %d bytes, %v", tt.size, len(data), err)
			}
			if !tt.ok && (err == nil || err.Error() != "metainfo: torrent larger than 1000 bytes") {
				t.Errorf("readAtMost(%d bytes, 1000) = %v, want too large", tt.size, err)
			}
			if r.n > 1001 {
				t.Errorf("readAtMost read %d bytes, want at most 1001", r.n)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 64 MiB")
	}
	r := &endless{left: math.MaxInt64}
	_, err := Parse(r)
	if want := "metainfo: torrent larger than 67108864 bytes"; err == nil || err.Error() != want {
		t.Errorf("Parse(endless) = %v, want %q", err, want)
	}
	if r.n > MaxTorrentSize+1 {
		t.Errorf("Parse read %d bytes, want at most MaxTorrentSize+1 (%d)", r.n, MaxTorrentSize+1)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.torrent")
	bad := filepath.Join(dir, "bad.torrent")
	if err := os.WriteFile(good, torrent(singleInfo()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, torrent(with(singleInfo(), "piece length", 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	if mi, err := Load(good); err != nil || mi.Info.Name != "file.bin" {
		t.Errorf("Load(%q) = %v, %v", good, mi, err)
	}
	if _, err := Load(bad); err == nil || err.Error() != bad+": metainfo: info.piece length: must be > 0" {
		t.Errorf("Load(%q) = %v, want it to name the file and the field", bad, err)
	}
	missing := filepath.Join(dir, "missing.torrent")
	if _, err := Load(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(%q) = %v, want a not-exist error naming the file", missing, err)
	}
}
