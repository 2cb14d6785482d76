package peerid

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

func id(prefix string) [20]byte {
	var b [20]byte
	for i := range b {
		b[i] = 0xa7 // random bytes after the prefix: not printable
	}
	copy(b[:], prefix)
	return b
}

func TestClient(t *testing.T) {
	for _, tc := range []struct {
		prefix, want string
	}{
		{"-LT2080-", "libtorrent (Rasterbar) 2.0.8"},
		{"-LT12A0-", "libtorrent (Rasterbar) 1.2.10"}, // version_to_char: 10 is 'A'
		{"-lt0D60-", "libTorrent (Rakshasa) 0.13.6"},  // rtorrent 0.9.x
		{"-TR300Z-", "Transmission 3.00+"},
		{"-TR4060-", "Transmission 4.06"},
		{"-TR0072-", "Transmission 0.72"},
		{"-qB4520-", "qBittorrent 4.5.2"},
		{"-UT355W-", "µTorrent 3.5.5"},
		{"-DE13F0-", "Deluge 1.3.15.0"},
		{"-AZ2060-", "Azureus 2.0.6.0"}, // BEP 20's example
		{"-BS0001-", "BitStorm 0.0.0.1"},
		{"-ZZ1234-", "ZZ 1.2.3.4"}, // a code not in the table
		{"A2-1-37-0-", "aria2 1.37.0"},
		{"M4-3-6--", "BitTorrent 4.3.6"}, // BEP 20's examples
		{"M4-20-8-", "BitTorrent 4.20.8"},
		{"T03A0-----", "BitTornado 0.3.10.0"},
		{"-LT20", ""}, // no closing dash
		{"M4--", ""},  // one number only
		{"xyzzy", ""}, // no convention
		{"T-", ""},    // too short a version
		{"-L\x00208-", ""},
	} {
		if got := Client(id(tc.prefix)); got != tc.want {
			t.Errorf("Client(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func TestClean(t *testing.T) {
	long := ""
	for range 100 {
		long += "é"
	}
	for _, tc := range []struct {
		in, want string
	}{
		{"libtorrent/2.0.8.0", "libtorrent/2.0.8.0"},
		{"\xb5Torrent 1.2", "µTorrent 1.2"}, // Latin-1
		{"Transmission\x00 3.00\n", "Transmission 3.00"},
		{"  spaced  ", "spaced"},
		{long, long[:128]}, // 64 characters of two bytes
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzClient: any peer id and any self-given name make a short name of valid UTF-8
// without control characters, and no panic.
func FuzzClient(f *testing.F) {
	for _, s := range []string{"-LT2080-", "-TR300Z-", "A2-1-37-0-", "M4-20-8-", "T03A0-----", "-lt0D60-", "\xb5Torrent 1.2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var pid [20]byte
		copy(pid[:], b)
		for _, name := range []string{Client(pid), Clean(string(b))} {
			if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameLen {
				t.Fatalf("%q: name %q, want valid UTF-8 of at most %d characters", b, name, maxNameLen)
			}
			for _, r := range name {
				if unicode.IsControl(r) {
					t.Fatalf("%q: name %q has a control character", b, name)
				}
			}
		}
	})
}
