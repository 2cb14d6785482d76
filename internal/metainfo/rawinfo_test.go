package metainfo

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// TestFromInfoFixtures: the info dictionary of a real .torrent, given to FromInfo with
// the file's trackers, makes the same torrent as Parse of the file; and the .torrent
// Torrent writes of it parses back to what FromInfo returned, with the same info hash.
func TestFromInfoFixtures(t *testing.T) {
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "*.torrent"))
	if len(fixtures) == 0 {
		t.Fatal("no fixtures in testdata")
	}
	for _, path := range fixtures {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Parse(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := bencode.DictValue(data, "info")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want.RawInfo, raw) {
				t.Errorf("Parse(%s).RawInfo = %d bytes, want the %d bytes of its info dictionary", path, len(want.RawInfo), len(raw))
			}

			got, err := FromInfo(raw, want.Trackers())
			if err != nil {
				t.Fatalf("FromInfo(info of %s) error = %v", path, err)
			}
			if !reflect.DeepEqual(got.Info, want.Info) || got.InfoHash != want.InfoHash || !bytes.Equal(got.RawInfo, raw) {
				t.Errorf("FromInfo(info of %s) = %+v, hash %x; want %+v, hash %x", path, got.Info, got.InfoHash, want.Info, want.InfoHash)
			}
			if !reflect.DeepEqual(got.Trackers(), want.Trackers()) {
				t.Errorf("FromInfo(info of %s).Trackers() = %q, want %q", path, got.Trackers(), want.Trackers())
			}

			file := Torrent(raw, want.Trackers())
			back, err := Parse(bytes.NewReader(file))
			if err != nil {
				t.Fatalf("Parse(Torrent(info of %s)) error = %v", path, err)
			}
			if !reflect.DeepEqual(back, got) {
				t.Errorf("Parse(Torrent(info of %s)) = %+v, want FromInfo's %+v", path, back, got)
			}
			if back.InfoHash != want.InfoHash {
				t.Errorf("Torrent(info of %s) has info hash %x, want %x", path, back.InfoHash, want.InfoHash)
			}
		})
	}
}

func TestTorrent(t *testing.T) {
	raw := enc(singleInfo())
	for _, tt := range []struct {
		name     string
		trackers [][]string
		want     string
	}{
		{name: "no trackers", want: "d" + "4:info" + string(raw) + "e"},
		{
			name:     "tiers",
			trackers: [][]string{{"http://a/", "http://b/"}, {"udp://c:1"}},
			want: "d" +
				"8:announce" + "9:http://a/" + // the first tracker, for clients without BEP 12
				"13:announce-list" + "l" + "l" + "9:http://a/" + "9:http://b/" + "e" + "l" + "9:udp://c:1" + "e" + "e" +
				"4:info" + string(raw) + // verbatim
				"e",
		},
		{
			name:     "empty URLs, empty tiers and repeats dropped",
			trackers: [][]string{{"", ""}, {}, {"http://a/", "http://a/"}, {"http://a/"}},
			want:     "d" + "8:announce" + "9:http://a/" + "13:announce-list" + "l" + "l" + "9:http://a/" + "e" + "e" + "4:info" + string(raw) + "e",
		},
		{name: "only empty URLs", trackers: [][]string{{""}}, want: "d" + "4:info" + string(raw) + "e"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Torrent(raw, tt.trackers)
			if string(got) != tt.want {
				t.Errorf("Torrent(info, %q) = %q, want %q", tt.trackers, got, tt.want)
			}
			m, err := FromInfo(raw, tt.trackers)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := Parse(bytes.NewReader(got)); err != nil || !reflect.DeepEqual(back, m) {
				t.Errorf("Parse(Torrent(info, %q)) = %+v, %v; want FromInfo's %+v", tt.trackers, back, err, m)
			}
		})
	}
}

// TestFromInfoVerbatim: an info dictionary with its keys out of order and a key no
// client knows is hashed as it came, and written out as it came.
func TestFromInfoVerbatim(t *testing.T) {
	raw := enc(dict{{"pieces", hashes(4)}, {"name", "file.bin"}, {"x-unknown", []any{"y"}}, {"length", 100}, {"piece length", 32}})
	m, err := FromInfo(raw, nil)
	if err != nil {
		t.Fatalf("FromInfo(%q) error = %v", raw, err)
	}
	if m.InfoHash != sha1.Sum(raw) || m.Info.Name != "file.bin" || m.Info.Length != 100 || m.Announce != "" || m.AnnounceList != nil {
		t.Errorf("FromInfo(%q) = %+v, want the SHA-1 of the bytes as given", raw, m)
	}
	raw[0] = 'x' // FromInfo keeps a copy
	if m.RawInfo[0] != 'd' {
		t.Errorf("FromInfo kept the caller's slice")
	}
}

// TestFromInfoErrors: FromInfo rejects what Parse rejects in an info dictionary, with
// the same error.
func TestFromInfoErrors(t *testing.T) {
	s, m := singleInfo(), multiInfo()
	for _, tt := range []struct {
		name string
		info any
	}{
		{"name missing", with(s, "name", nil)},
		{"name dot dot", with(s, "name", "..")},
		{"piece length zero", with(s, "piece length", 0)},
		{"piece length too large", with(s, "piece length", MaxPieceLength+1)},
		{"pieces missing in v2 torrent", with(with(s, "pieces", nil), "meta version", 2)},
		{"pieces not a multiple of 20", with(s, "pieces", hashes(2)+"x")},
		{"too few hashes", with(s, "pieces", hashes(3))},
		{"length and files", with(s, "files", m["files"])},
		{"length negative", with(s, "length", -1)},
		{"path escapes", withFile(m, 2, map[string]any{"length": 90, "path": []string{"sub", ".."}})},
		{"same path twice", withFile(m, 2, map[string]any{"length": 90, "path": []string{"a.txt"}})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, want := Parse(bytes.NewReader(torrent(tt.info)))
			if want == nil {
				t.Fatalf("Parse accepts %v", tt.info)
			}
			if _, err := FromInfo(enc(tt.info), [][]string{{"http://a/"}}); err == nil || err.Error() != want.Error() {
				t.Errorf("FromInfo(%s) error = %v, want Parse's %q", enc(tt.info), err, want)
			}
		})
	}
	for _, tt := range []struct {
		name string
		raw  []byte
		want string
	}{
		{name: "empty", raw: nil, want: "metainfo: info: bencode: offset 0: unexpected end of input"},
		{name: "cut", raw: enc(s)[:10], want: "metainfo: info: bencode: offset 10: unexpected end of input"},
		{name: "trailing data", raw: append(enc(s), 'e'),
			want: fmt.Sprintf("metainfo: info: bencode: offset %d: trailing data after value", len(enc(s)))},
		{name: "a list", raw: []byte("le"), want: "metainfo: info: want a dictionary, got list"},
		{name: "too large", raw: make([]byte, MaxTorrentSize+1), want: "metainfo: info: larger than 67108864 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := FromInfo(tt.raw, nil); err == nil || err.Error() != tt.want {
				t.Errorf("FromInfo(%q) error = %v, want %q", trimRaw(tt.raw), err, tt.want)
			}
		})
	}
}

func trimRaw(b []byte) []byte { return b[:min(len(b), 40)] }

// FuzzFromInfo checks that FromInfo never panics, and that what it accepts is written by
// Torrent as a .torrent that Parse reads back to the same MetaInfo.
func FuzzFromInfo(f *testing.F) {
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "*.torrent"))
	for _, path := range fixtures {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if raw, err := bencode.DictValue(data, "info"); err == nil {
			f.Add(raw, "http://a/")
		}
	}
	f.Add(enc(singleInfo()), "")
	f.Add(enc(multiInfo()), "udp://b:1")
	f.Add([]byte("d6:lengthi-1ee"), "x")
	f.Fuzz(func(t *testing.T, raw []byte, tracker string) {
		m, err := FromInfo(raw, [][]string{{tracker}})
		if err != nil {
			return
		}
		if m.InfoHash != sha1.Sum(raw) || !bytes.Equal(m.RawInfo, raw) {
			t.Fatalf("FromInfo(%q) = hash %x, raw %q", raw, m.InfoHash, m.RawInfo)
		}
		back, err := Parse(bytes.NewReader(Torrent(raw, [][]string{{tracker}})))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("Parse(Torrent(%q)) = %+v, %v; want %+v", raw, back, err, m)
		}
	})
}
