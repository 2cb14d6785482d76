package magnet

import (
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// hash is the info hash of the links in these tests, in hex and base32.
const (
	hexHash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	b32Hash = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK"
)

var hash = func() (h [20]byte) { hex.Decode(h[:], []byte(hexHash)); return }()

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want Magnet
	}{
		{name: "hex info hash only", in: "magnet:?xt=urn:btih:" + hexHash, want: Magnet{InfoHash: hash}},
		{name: "hex in upper case", in: "magnet:?xt=urn:btih:" + strings.ToUpper(hexHash), want: Magnet{InfoHash: hash}},
		{name: "base32", in: "magnet:?xt=urn:btih:" + b32Hash, want: Magnet{InfoHash: hash}},
		{name: "base32 in lower case", in: "magnet:?xt=urn:btih:" + strings.ToLower(b32Hash), want: Magnet{InfoHash: hash}},
		{
			name: "BEP 9's parameters",
			in: "magnet:?xt=urn:btih:" + hexHash + "&dn=Some%20File.iso" +
				"&tr=http%3A%2F%2Ftracker.example%3A6969%2Fannounce" +
				"&x.pe=192.0.2.1:6881&x.pe=[2001:db8::1]:51413&x.pe=peer.example:6881",
			want: Magnet{
				InfoHash:  hash,
				Name:      "Some File.iso",
				Trackers:  []string{"http://tracker.example:6969/announce"},
				Peers:     []netip.AddrPort{ap("192.0.2.1:6881"), ap("[2001:db8::1]:51413")},
				PeerHosts: []string{"peer.example:6881"},
			},
		},
		{
			name: "trackers in order, trimmed, once each",
			in: "magnet:?xt=urn:btih:" + hexHash + "&tr=udp://b.example:1&tr=+http://a.example/+" +
				"&tr=udp://b.example:1&tr=&tr=%20&tr=http://a.example/",
			want: Magnet{InfoHash: hash, Trackers: []string{"udp://b.example:1", "http://a.example/"}},
		},
		{
			name: "unescaped tracker URL",
			in:   "magnet:?xt=urn:btih:" + hexHash + "&tr=http://t.example/announce?passkey=abc",
			want: Magnet{InfoHash: hash, Trackers: []string{"http://t.example/announce?passkey=abc"}},
		},
		{name: "plus is a space", in: "magnet:?dn=Ubuntu+24.04+Desktop&xt=urn:btih:" + hexHash,
			want: Magnet{InfoHash: hash, Name: "Ubuntu 24.04 Desktop"}},
		{name: "first dn wins", in: "magnet:?xt=urn:btih:" + hexHash + "&dn=a&dn=b", want: Magnet{InfoHash: hash, Name: "a"}},
		{name: "names in any case", in: "MAGNET:?XT=URN:BTIH:" + hexHash + "&DN=x&Tr=http://t/&X.PE=192.0.2.1:1",
			want: Magnet{InfoHash: hash, Name: "x", Trackers: []string{"http://t/"}, Peers: []netip.AddrPort{ap("192.0.2.1:1")}}},
		{name: "numbered parameters", in: "magnet:?xt.1=urn:sha1:YNCKHTQCWBTRNJIV4WNAE52SJUQCZO5C&xt.2=urn:btih:" + hexHash + "&tr.1=http://a/&tr.2=http://b/",
			want: Magnet{InfoHash: hash, Trackers: []string{"http://a/", "http://b/"}}},
		{name: "hybrid v1 and v2: the v1 hash", in: "magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32) + "&xt=urn:btih:" + hexHash,
			want: Magnet{InfoHash: hash}},
		{name: "the same hash twice", in: "magnet:?xt=urn:btih:" + hexHash + "&xt=urn:btih:" + b32Hash, want: Magnet{InfoHash: hash}},
		{name: "unknown parameters ignored", in: "magnet:?xt=urn:btih:" + hexHash + "&xl=1024&ws=http://w/&so=0,2-4&kt=a+b&x.pe.1=junk",
			want: Magnet{InfoHash: hash}},
		{name: "empty parameters and surrounding spaces", in: "  magnet:?&&xt=urn:btih:" + hexHash + "&&dn\n",
			want: Magnet{InfoHash: hash}},
		{name: "escaped xt", in: "magnet:?xt=urn%3Abtih%3A" + hexHash, want: Magnet{InfoHash: hash}},
		{
			name: "peers: mapped IPv4 unmapped, repeats dropped, host names lower-cased",
			in: "magnet:?xt=urn:btih:" + hexHash + "&x.pe=[::ffff:192.0.2.1]:80&x.pe=192.0.2.1:80&x.pe=192.0.2.1:0080" +
				"&x.pe=Peer.Example:80&x.pe=peer.example:80&x.pe=[::1]:1",
			want: Magnet{InfoHash: hash, Peers: []netip.AddrPort{ap("192.0.2.1:80"), ap("[::1]:1")}, PeerHosts: []string{"peer.example:80"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil || !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			// The canonical link parses to the same.
			again, err := Parse(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("Parse(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	xt := "xt=urn:btih:" + hexHash
	for _, tt := range []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: "magnet: not a magnet link (no scheme)"},
		{name: "a file name", in: "ubuntu.torrent", want: "magnet: not a magnet link (no scheme)"},
		{name: "http", in: "http://example.com/a.torrent", want: `magnet: not a magnet link (scheme "http")`},
		{name: "a Windows path", in: `C:\a.torrent`, want: `magnet: not a magnet link (scheme "C")`},
		{name: "no question mark", in: "magnet:" + xt, want: `magnet: no "?" after "magnet:"`},
		{name: "slashes", in: "magnet://?" + xt, want: `magnet: no "?" after "magnet:"`},
		{name: "no xt", in: "magnet:?dn=x&tr=http://t/", want: "magnet: no xt=urn:btih parameter"},
		{name: "nothing", in: "magnet:?", want: "magnet: no xt=urn:btih parameter"},
		{name: "only another URN", in: "magnet:?xt=urn:sha1:YNCKHTQCWBTRNJIV4WNAE52SJUQCZO5C", want: "magnet: no xt=urn:btih parameter"},
		{name: "v2 only", in: "magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32),
			want: `magnet: xt: "urn:btmh:1220` + strings.Repeat("ab", 32) + `": BitTorrent v2 links (urn:btmh, BEP 52) are not supported yet`},
		{name: "short hash", in: "magnet:?xt=urn:btih:xyz", want: `magnet: xt: "urn:btih:xyz": info hash must be 40 hex or 32 base32 characters`},
		{name: "empty hash", in: "magnet:?xt=urn:btih:", want: `magnet: xt: "urn:btih:": info hash must be 40 hex or 32 base32 characters`},
		{name: "41 hex digits", in: "magnet:?xt=urn:btih:" + hexHash + "0", want: "info hash must be 40 hex or 32 base32 characters"},
		{name: "not hex", in: "magnet:?xt=urn:btih:" + hexHash[:39] + "g", want: "info hash must be 40 hex or 32 base32 characters"},
		{name: "not base32", in: "magnet:?xt=urn:btih:" + b32Hash[:31] + "1", want: "info hash must be 40 hex or 32 base32 characters"},
		{name: "base32 padding", in: "magnet:?xt=urn:btih:" + b32Hash[:24] + "========", want: "info hash must be 40 hex or 32 base32 characters"},
		{name: "base32 with newlines", in: "magnet:?xt=urn:btih:" + b32Hash[:24] + strings.Repeat("%0A", 8),
			want: "info hash must be 40 hex or 32 base32 characters"},
		{name: "two hashes", in: "magnet:?" + xt + "&xt=urn:btih:" + strings.Repeat("0", 40),
			want: `magnet: xt: "urn:btih:0000000000000000000000000000000000000000": a second info hash, after "urn:btih:` + hexHash + `"`},
		{name: "bad escape", in: "magnet:?" + xt + "&dn=100%", want: `magnet: dn: "100%": bad %-escape`},
		{name: "bad escape in a name", in: "magnet:?" + xt + "&d%zz=1", want: `magnet: parameter "d%zz": bad %-escape in its name`},
		{name: "x.pe without port", in: "magnet:?" + xt + "&x.pe=192.0.2.1", want: `magnet: x.pe: "192.0.2.1": want host:port, IPv4:port or [IPv6]:port`},
		{name: "x.pe IPv6 without brackets", in: "magnet:?" + xt + "&x.pe=2001:db8::1:80", want: `magnet: x.pe: "2001:db8::1:80": want host:port`},
		{name: "x.pe port 0", in: "magnet:?" + xt + "&x.pe=192.0.2.1:0", want: `magnet: x.pe: "192.0.2.1:0": port "0" is not in [1, 65535]`},
		{name: "x.pe port too large", in: "magnet:?" + xt + "&x.pe=192.0.2.1:65536", want: `port "65536" is not in [1, 65535]`},
		{name: "x.pe port not a number", in: "magnet:?" + xt + "&x.pe=host:http", want: `port "http" is not in [1, 65535]`},
		{name: "x.pe no host", in: "magnet:?" + xt + "&x.pe=:80", want: "want host:port"},
		{name: "x.pe unspecified", in: "magnet:?" + xt + "&x.pe=0.0.0.0:80", want: `magnet: x.pe: "0.0.0.0:80": 0.0.0.0 is not a peer's address`},
		{name: "x.pe multicast", in: "magnet:?" + xt + "&x.pe=[ff02::1]:80", want: "ff02::1 is not a peer's address"},
		{name: "x.pe zone", in: "magnet:?" + xt + "&x.pe=[fe80::1%25eth0]:80", want: "an IPv6 zone means nothing to another host"},
		{name: "x.pe IPv4 in brackets", in: "magnet:?" + xt + "&x.pe=[192.0.2.1]:80", want: "brackets are for IPv6 addresses"},
		{name: "x.pe bad host name", in: "magnet:?" + xt + "&x.pe=a_b.example:80", want: `"a_b.example" is neither an IP address nor a host name`},
		{name: "x.pe empty label", in: "magnet:?" + xt + "&x.pe=a..example:80", want: "is neither an IP address nor a host name"},
		{name: "x.pe hyphen", in: "magnet:?" + xt + "&x.pe=-a.example:80", want: "is neither an IP address nor a host name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") ||
				!strings.HasPrefix(err.Error(), "magnet: ") {
				t.Errorf("Parse(%q) = %+v, %v; want an error saying %q", tt.in, m, err, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	m := &Magnet{
		InfoHash:  hash,
		Name:      "a b&c=d+e%/ü",
		Trackers:  []string{"http://t.example:6969/announce?k=a&b", "udp://u.example:1"},
		Peers:     []netip.AddrPort{ap("192.0.2.1:6881"), ap("[2001:db8::1]:1")},
		PeerHosts: []string{"peer.example:2"},
	}
	want := "magnet:?xt=urn:btih:" + hexHash +
		"&dn=a%20b%26c%3Dd%2Be%25%2F%C3%BC" +
		"&tr=http%3A%2F%2Ft.example%3A6969%2Fannounce%3Fk%3Da%26b" +
		"&tr=udp%3A%2F%2Fu.example%3A1" +
		"&x.pe=192.0.2.1%3A6881" +
		"&x.pe=%5B2001%3Adb8%3A%3A1%5D%3A1" +
		"&x.pe=peer.example%3A2"
	if got := m.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, err := Parse(want); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("Parse(%q) = %+v, %v; want %+v", want, got, err, m)
	}
	if got, want := (&Magnet{InfoHash: hash}).String(), "magnet:?xt=urn:btih:"+hexHash; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestTiers(t *testing.T) {
	if got := (&Magnet{}).Tiers(); got != nil {
		t.Errorf("Tiers() of no trackers = %q, want nil", got)
	}
	m := &Magnet{Trackers: []string{"http://a/", "udp://b:1"}}
	if got, want := m.Tiers(), [][]string{{"http://a/"}, {"udp://b:1"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Tiers() = %q, want %q", got, want)
	}
}

// FuzzMagnet parses arbitrary strings. Parse must not panic, an error must be one line
// starting with "magnet: ", and a link it accepts must come back the same through its
// canonical String(), which must itself be canonical.
func FuzzMagnet(f *testing.F) {
	for _, s := range []string{
		"magnet:?xt=urn:btih:" + hexHash,
		"magnet:?xt=urn:btih:" + b32Hash + "&dn=a+b%20c&tr=http://t/&tr=+udp://u:1+&x.pe=[::ffff:1.2.3.4]:5&x.pe=Host.Example:6",
		"MAGNET:?XT.1=urn:btmh:1220ab&xt.2=URN:BTIH:" + strings.ToLower(b32Hash) + "&x.pe=[2001:db8::1]:1",
		"magnet:?xt=urn:btih:" + hexHash + "&x.pe=[fe80::1%25eth0]:80",
		"magnet:?xt=urn:btih:xyz", "magnet:?xt=urn:btmh:1220", "http://x/", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "magnet: ") || strings.Contains(msg, "\n") {
				t.Fatalf("Parse(%q) error %q: not one line starting with \"magnet: \"", s, msg)
			}
			return
		}
		canon := m.String()
		again, err := Parse(canon)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("Parse(%q) = %+v, whose String() %q parses to %+v, %v", s, m, canon, again, err)
		}
		if again.String() != canon {
			t.Fatalf("String() of %q is %q", canon, again.String())
		}
	})
}
