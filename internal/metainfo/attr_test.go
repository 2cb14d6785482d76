package metainfo

import (
	"bytes"
	"crypto/sha1"
	"reflect"
	"strings"
	"testing"
)

// filesInfo is a multi-file info dictionary "t" of the given files in pieces of 16 KiB,
// with as many fake hashes as their lengths need.
func filesInfo(files ...any) map[string]any {
	total := 0
	for _, f := range files {
		fd := f.(map[string]any)
		if attr, _ := fd["attr"].(string); !strings.Contains(attr, "l") {
			n, _ := fd["length"].(int)
			total += n
		}
	}
	return map[string]any{"name": "t", "piece length": 16384, "pieces": hashes(max((total+16383)/16384, 1)), "files": files}
}

func file(length int, attr string, path ...string) map[string]any {
	f := map[string]any{"length": length, "path": path}
	if attr != "" {
		f["attr"] = attr
	}
	return f
}

func link(attr string, target []string, path ...string) map[string]any {
	return map[string]any{"attr": attr, "path": path, "symlink path": target}
}

// TestParseAttributes checks BEP 47: attributes, padding (in the byte space, exempt
// from path clashes, named .pad/N when unnamed) and symlinks (no bytes, targets
// resolved as libtorrent resolves them).
func TestParseAttributes(t *testing.T) {
	type want struct {
		path    string
		length  int64
		offset  int64
		attr    string
		symlink string
	}
	tests := []struct {
		name   string
		info   map[string]any
		length int64
		files  []want
	}{
		{
			name:   "padding, executable and hidden",
			info:   filesInfo(file(100, "x", "run.sh"), file(16284, "p", ".pad", "16284"), file(5, "hx", "b")),
			length: 16389,
			files: []want{
				{"t/run.sh", 100, 0, "x", ""}, {"t/.pad/16284", 16284, 100, "p", ""}, {"t/b", 5, 16384, "hx", ""},
			},
		},
		{
			name:   "padding without a path, and two paddings of one path",
			info:   filesInfo(file(1, "", "a"), map[string]any{"attr": "p", "length": 16383}, file(1, "", "b"), file(16383, "p", ".pad", "16383"), file(1, "", "c"), file(16383, "p", ".pad", "16383"), file(1, "", "d")),
			length: 3*16384 + 1,
			files: []want{
				{"t/a", 1, 0, "", ""}, {"t/.pad/16383", 16383, 1, "p", ""}, {"t/b", 1, 16384, "", ""},
				{"t/.pad/16383", 16383, 16385, "p", ""}, {"t/c", 1, 32768, "", ""},
				{"t/.pad/16383", 16383, 32769, "p", ""}, {"t/d", 1, 49152, "", ""},
			},
		},
		{
			name:   "BitComet padding is known by its name",
			info:   filesInfo(file(1, "", "a"), file(16383, "", "_____padding_file_0_"), file(1, "", "b")),
			length: 16385,
			files:  []want{{"t/a", 1, 0, "", ""}, {"t/_____padding_file_0_", 16383, 1, "p", ""}, {"t/b", 1, 16384, "", ""}},
		},
		{
			name:   "symlink takes no bytes, whatever its length says",
			info:   filesInfo(file(10, "", "a", "bar"), map[string]any{"attr": "l", "length": 10, "path": []string{"a", "foo"}, "symlink path": []string{"a", "bar"}}),
			length: 10,
			files:  []want{{"t/a/bar", 10, 0, "", ""}, {"t/a/foo", 0, 10, "l", "t/a/bar"}},
		},
		{
			name:   "symlink without a target is a regular file",
			info:   filesInfo(file(10, "l", "a")),
			length: 10,
			files:  []want{{"t/a", 10, 0, "", ""}},
		},
		{
			name: "symlink to a directory, relative to the link, and through another link",
			info: filesInfo(
				link("xl", []string{"Versions", "Current", "Headers"}, "Headers"),
				file(7, "", "Versions", "A", "Headers", "a.h"),
				file(9, "x", "Versions", "A", "lib"),
				link("l", []string{"A"}, "Versions", "Current"),
				link("l", []string{"Versions", "A"}, "dir"),
			),
			length: 16,
			files: []want{
				{"t/Headers", 0, 0, "xl", "t/Versions/Current/Headers"},
				{"t/Versions/A/Headers/a.h", 7, 0, "", ""},
				{"t/Versions/A/lib", 9, 7, "x", ""},
				{"t/Versions/Current", 0, 16, "l", "t/Versions/A"},
				{"t/dir", 0, 16, "l", "t/Versions/A"},
			},
		},
		{
			name:   "symlink to nothing in the torrent points to itself",
			info:   filesInfo(file(3, "", "a"), link("l", []string{"elsewhere"}, "b"), link("l", []string{"b", "c"}, "loop")),
			length: 3,
			files:  []want{{"t/a", 3, 0, "", ""}, {"t/b", 0, 3, "l", "t/b"}, {"t/loop", 0, 3, "l", "t/loop"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mi, err := Parse(bytes.NewReader(torrent(tt.info)))
			if err != nil {
				t.Fatal(err)
			}
			if mi.Info.Length != tt.length {
				t.Errorf("Length = %d, want %d", mi.Info.Length, tt.length)
			}
			var got []want
			for _, f := range mi.Info.Files {
				got = append(got, want{strings.Join(f.Path, "/"), f.Length, f.Offset, f.Attr.String(), strings.Join(f.SymlinkPath, "/")})
			}
			if !reflect.DeepEqual(got, tt.files) {
				t.Errorf("Files =\n%v\nwant\n%v", got, tt.files)
			}
		})
	}
}

func TestParseAttributeErrors(t *testing.T) {
	s := singleInfo()
	tests := []struct {
		name string
		info map[string]any
		want string
	}{
		{"symlink target with ..", filesInfo(file(3, "", "a"), link("l", []string{"..", "..", "etc", "passwd"}, "b")),
			`metainfo: info.files[1].symlink path[0]: ".." is not allowed`},
		{"symlink target absolute", filesInfo(file(3, "", "a"), link("l", []string{"/etc/passwd"}, "b")),
			`metainfo: info.files[1].symlink path[0]: "/etc/passwd" contains '/'`},
		{"symlink target empty", filesInfo(file(3, "", "a"), link("l", []string{}, "b")),
			"metainfo: info.files[1].symlink path: must not be empty"},
		{"symlink at a file's path", filesInfo(file(3, "", "a"), link("l", []string{"a"}, "a")),
			"metainfo: info.files[1].path: same path as info.files[0]"},
		{"symlink over a directory", filesInfo(file(3, "", "d", "a"), link("l", []string{"d", "a"}, "d")),
			`metainfo: info.files[1].path: "d" is a directory of info.files[0]`},
		{"single-file padding", with(s, "attr", "p"), `metainfo: info.attr: "p": a single-file torrent is neither padding nor a symlink`},
		{"single-file symlink", with(s, "attr", "l"), `metainfo: info.attr: "l": a single-file torrent is neither padding nor a symlink`},
		{"only symlinks", filesInfo(link("l", []string{"b"}, "a"), link("l", []string{"a"}, "b")),
			"metainfo: info.files: total length must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(bytes.NewReader(torrent(tt.info)))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse = %v, want %q", err, tt.want)
			}
		})
	}
	mi, err := Parse(bytes.NewReader(torrent(with(s, "attr", "xh?"))))
	if err != nil || mi.Info.Files[0].Attr != AttrExecutable|AttrHidden {
		t.Errorf(`single-file attr "xh?": %v, %v; want x and h, the unknown letter ignored`, mi, err)
	}
}

// TestSanitize checks the names that are cleaned rather than refused, as libtorrent
// cleans them.
func TestSanitize(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct{ in, want string }{
		{"plain name.txt", "plain name.txt"},
		{"ünïcödé ✓", "ünïcödé ✓"},
		{"...", "..."},
		{"file\x80.foo", "file_.foo"},
		{"tab\there", "tab_here"},
		{"evil\u202efdp.exe", "evilfdp.exe"},
		{"\u200eleft\u200f", "left"},
		{long[:239], long[:239]},
		{long[:240], long[:240]},
		{long, long[:240]},
		{long + ".mkv", long[:240] + ".mkv"},
		{long + ".toolongext", long[:240]}, // the dot is not in the last 10 bytes
		{strings.Repeat("é", 150) + ".txt", strings.Repeat("é", 120) + ".txt"},
	}
	for _, tt := range tests {
		got, err := cleanComponent(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("cleanComponent(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
		if len(got) > 255 {
			t.Errorf("cleanComponent(%q) is %d bytes, more than a file name holds", tt.in, len(got))
		}
	}
	for _, in := range []string{"\u202e", "\u202e.", ".\u200e."} {
		if got, err := cleanComponent(in); err == nil {
			t.Errorf("cleanComponent(%q) = %q, want an error: no name is left", in, got)
		}
	}
	// The same rules apply to every name in a torrent: a long name is shortened in place.
	mi, err := Parse(bytes.NewReader(torrent(filesInfo(file(1, "", "sub", long+".bin")))))
	if err != nil {
		t.Fatal(err)
	}
	if got := mi.Info.Files[0].Path[2]; got != long[:240]+".bin" {
		t.Errorf("long path component = %q (%d bytes), want 240 bytes and .bin", got, len(got))
	}
}

func TestParseUTF8Keys(t *testing.T) {
	info := filesInfo(
		map[string]any{"length": 6, "path": []string{"ignored"}, "path.utf-8": []string{"別の世界", "f1.txt"}},
		map[string]any{"length": 7, "path": []string{"kept"}, "path.utf-8": "not a list"},
	)
	info["name"], info["name.utf-8"] = "ignored name", "名前"
	mi, err := Parse(bytes.NewReader(torrent(info)))
	if err != nil {
		t.Fatal(err)
	}
	if mi.Info.Name != "名前" {
		t.Errorf("Name = %q, want name.utf-8", mi.Info.Name)
	}
	got := [][]string{mi.Info.Files[0].Path, mi.Info.Files[1].Path}
	if want := [][]string{{"名前", "別の世界", "f1.txt"}, {"名前", "kept"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q, want %q (path.utf-8 when it is a list)", got, want)
	}
	info["files"] = []any{map[string]any{"length": 6, "path": []string{"a"}, "path.utf-8": []string{"..", "b"}}}
	_, err = Parse(bytes.NewReader(torrent(info)))
	if want := `metainfo: info.files[0].path.utf-8[0]: ".." is not allowed`; err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want %q", err, want)
	}
}

// TestTrailingBytes: what follows the top-level dictionary is ignored, and the info hash
// does not change.
func TestTrailingBytes(t *testing.T) {
	data := torrent(singleInfo())
	want, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, tail := range []string{"\n", "\r\n", "x", "garbage that is not bencode", "d4:infod4:name1:xee", strings.Repeat("\x00", 4096)} {
		got, err := Parse(bytes.NewReader(append(bytes.Clone(data), tail...)))
		if err != nil {
			t.Errorf("Parse with %q after it: %v", tail, err)
			continue
		}
		if got.InfoHash != want.InfoHash || got.InfoHash != sha1.Sum(want.RawInfo) {
			t.Errorf("Parse with %q after it: info hash %x, want %x", tail, got.InfoHash, want.InfoHash)
		}
	}
	for _, bad := range []string{"d4:infod", "d4:info", "li1e", "e", "i12"} {
		if _, err := Parse(strings.NewReader(bad + "trailing")); err == nil {
			t.Errorf("Parse(%q) accepted a broken torrent", bad+"trailing")
		}
	}
}

// TestAnnounceLenient: trackers do not decide what is downloaded, so a malformed
// announce-list falls back to announce, and URLs are trimmed.
func TestAnnounceLenient(t *testing.T) {
	s := singleInfo()
	tests := []struct {
		name string
		top  map[string]any
		want [][]string
	}{
		{"announce-list a string", map[string]any{"announce": "http://a/", "announce-list": "http://x"}, [][]string{{"http://a/"}}},
		{"announce-list empty", map[string]any{"announce": "http://a/", "announce-list": []any{}}, [][]string{{"http://a/"}}},
		{"announce-list of empty tiers", map[string]any{"announce": "http://a/", "announce-list": []any{[]any{}, []any{""}}}, [][]string{{"http://a/"}}},
		{"bad tiers and URLs skipped", map[string]any{"announce-list": []any{1, []any{"http://b/", []any{}, 3}, " http://c/ "}},
			[][]string{{"http://b/"}, {"http://c/"}}},
		{"announce trimmed", map[string]any{"announce": "\t udp://test.com/announce \n"}, [][]string{{"udp://test.com/announce"}}},
		{"announce not a string", map[string]any{"announce": 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.top["info"] = s
			mi, err := Parse(bytes.NewReader(enc(tt.top)))
			if err != nil {
				t.Fatal(err)
			}
			if got := mi.Trackers(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Trackers() = %q, want %q", got, tt.want)
			}
		})
	}
	mi, err := Parse(bytes.NewReader(enc(map[string]any{"info": s, "url-list": []any{" http://ws/a ", "\t"}})))
	if err != nil || !reflect.DeepEqual(mi.URLList, []string{"http://ws/a"}) {
		t.Errorf("URLList = %q, %v; want the web seed trimmed and the blank one dropped", mi.URLList, err)
	}
}

func TestDataSpans(t *testing.T) {
	info := &Info{PieceLength: 16, Length: 64, Pieces: []byte(hashes(4)), Files: []File{
		{Path: []string{"t", "a"}, Length: 10, Offset: 0},
		{Path: []string{"t", ".pad", "6"}, Length: 6, Offset: 10, Attr: AttrPad},
		{Path: []string{"t", ".pad", "16"}, Length: 16, Offset: 16, Attr: AttrPad},
		{Path: []string{"t", "l"}, Length: 0, Offset: 32, Attr: AttrSymlink},
		{Path: []string{"t", "e"}, Length: 0, Offset: 32},
		{Path: []string{"t", "b"}, Length: 20, Offset: 32},
		{Path: []string{"t", "c"}, Length: 12, Offset: 52},
	}}
	tests := []struct {
		off, n int64
		want   []Span
	}{
		{0, 16, []Span{{0, 10}}},
		{16, 16, nil},
		{32, 16, []Span{{32, 16}}},
		{48, 16, []Span{{48, 16}}}, // b and c touch: one span
		{5, 40, []Span{{5, 5}, {32, 13}}},
		{0, 64, []Span{{0, 10}, {32, 32}}},
	}
	for _, tt := range tests {
		if got := info.DataSpans(tt.off, tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DataSpans(%d, %d) = %v, want %v", tt.off, tt.n, got, tt.want)
		}
	}
	if got := info.PadPieces(); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("PadPieces() = %v, want [1]", got)
	}
	tail := &Info{PieceLength: 16, Length: 40, Pieces: []byte(hashes(3)), Files: []File{
		{Path: []string{"t", "a"}, Length: 3, Offset: 0},
		{Path: []string{"t", "p"}, Length: 37, Offset: 3, Attr: AttrPad}, // pieces 1 and 2, the short last one
	}}
	if got := tail.PadPieces(); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("PadPieces() = %v, want [1 2]", got)
	}
	plain := &Info{PieceLength: 16, Length: 40, Pieces: []byte(hashes(3)), Files: []File{{Path: []string{"a"}, Length: 40}}}
	if got := plain.PadPieces(); got != nil {
		t.Errorf("PadPieces() without padding = %v, want none", got)
	}
}

// hybridInfo is a hybrid (BEP 52) info dictionary: v1 files a (20000 bytes), padding,
// d/b (5 bytes, executable), and the v2 file tree that describes the same layout.
func hybridInfo() map[string]any {
	leaf := func(n int, attr string) map[string]any {
		f := map[string]any{"length": n, "pieces root": strings.Repeat("r", 32)}
		if attr != "" {
			f["attr"] = attr
		}
		return map[string]any{"": f}
	}
	info := filesInfo(file(20000, "", "a"), file(12768, "p", ".pad", "12768"), file(5, "x", "d", "b"))
	info["meta version"] = 2
	info["file tree"] = map[string]any{"a": leaf(20000, ""), "d": map[string]any{"b": leaf(5, "x")}}
	return info
}

func TestHybrid(t *testing.T) {
	mi, err := Parse(bytes.NewReader(torrent(hybridInfo())))
	if err != nil {
		t.Fatal(err)
	}
	if mi.Info.Length != 32773 || mi.Info.NumPieces() != 3 || !mi.Info.Files[1].IsPad() {
		t.Errorf("hybrid: Length %d, %d pieces, files %+v; want the v1 layout with its padding",
			mi.Info.Length, mi.Info.NumPieces(), mi.Info.Files)
	}
	tree := func(info map[string]any) map[string]any { return info["file tree"].(map[string]any) }
	tests := []struct {
		name   string
		change func(info map[string]any)
		want   string
	}{
		{"v1 padding after the last file too", func(info map[string]any) {
			info["files"] = append(info["files"].([]any), file(16379, "p", ".pad", "16379"))
			info["pieces"] = hashes(3)
		}, ""},
		{"a symlink after the padding in v1, before it in the tree", func(info map[string]any) {
			files := info["files"].([]any)
			info["files"] = []any{files[0], files[1], link("l", []string{"a"}, "c"), files[2]}
			tree(info)["c"] = map[string]any{"": map[string]any{"attr": "l", "length": 0, "symlink path": []string{"a"}}}
		}, ""},
		{"a symlink to another target", func(info map[string]any) {
			files := info["files"].([]any)
			info["files"] = []any{files[0], files[1], link("l", []string{"a"}, "c"), files[2]}
			tree(info)["c"] = map[string]any{"": map[string]any{"attr": "l", "symlink path": []string{"d", "b"}}}
		}, `metainfo: info.file tree: does not match info.files (BEP 52 hybrid): "t/c" -> "t/a", file tree has "t/c" -> "t/d/b"`},
		{"a file of another length", func(info map[string]any) {
			tree(info)["a"] = map[string]any{"": map[string]any{"length": 20001}}
		}, `metainfo: info.file tree: does not match info.files (BEP 52 hybrid): "t/a" (20000 bytes at 0), file tree has "t/a" (20001 bytes at 0)`},
		{"a file of another name", func(info map[string]any) {
			tree(info)["d"] = map[string]any{"c": tree(info)["d"].(map[string]any)["b"]}
		}, `metainfo: info.file tree: does not match info.files (BEP 52 hybrid): "t/d/b" (5 bytes at 32768), file tree has "t/d/c" (5 bytes at 32768)`},
		{"v1 without its padding", func(info map[string]any) {
			info["files"] = []any{file(20000, "", "a"), file(5, "x", "d", "b")}
			info["pieces"] = hashes(2)
		}, `metainfo: info.file tree: does not match info.files (BEP 52 hybrid): 32773 bytes of files and padding, info.files has 20005`},
		{"a file the tree lacks", func(info map[string]any) {
			delete(tree(info), "d")
		}, `metainfo: info.file tree: does not match info.files (BEP 52 hybrid): 20000 bytes of files and padding, info.files has 32773`},
		{"a single file that the tree makes a symlink", func(info map[string]any) {
			delete(info, "files")
			info["name"], info["length"], info["pieces"] = "a", 20000, hashes(2)
			info["file tree"] = map[string]any{"a": map[string]any{"": map[string]any{"attr": "l", "symlink path": []string{"x"}}}}
		}, `metainfo: info.file tree: does not match info.files (BEP 52 hybrid): 0 bytes of files and padding, info.files has 20000`},
		{"file tree missing", func(info map[string]any) { delete(info, "file tree") },
			`metainfo: info.file tree: missing, though "meta version" is 2 (BEP 52)`},
		{"a leaf beside other keys", func(info map[string]any) {
			tree(info)["a"].(map[string]any)["x"] = map[string]any{}
		}, `metainfo: info.file tree: "a": a file is a dictionary under the key "" alone`},
		{"a file without the \"\" key", func(info map[string]any) {
			tree(info)["a"] = map[string]any{"length": 20000}
		}, `metainfo: info.file tree: "a/length": want a dictionary, got integer`},
		{"an unsafe name in the tree", func(info map[string]any) {
			tree(info)[".."] = tree(info)["a"]
		}, `metainfo: info.file tree: "..": ".." is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := hybridInfo()
			tt.change(info)
			_, err := Parse(bytes.NewReader(torrent(info)))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse = %v, want it accepted", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Parse = %v, want %q", err, tt.want)
			}
		})
	}
}
