package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// pexExtID is the extended id the peer in these tests gave ut_pex.
const pexExtID = 1

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// pexRoundTrips are valid ut_pex messages as they appear on the wire.
var pexRoundTrips = []struct {
	name string
	wire string
	pex  wire.Pex
}{
	{
		name: "nothing to say",
		wire: "\x00\x00\x00\x04" + // length 2+2
			"\x14" + // id extended
			"\x01" + // extended id: the peer's ut_pex
			"de",
		pex: wire.Pex{},
	},
	{
		name: "IPv4 added, with flags",
		wire: "\x00\x00\x00\x27" + // length 2+37
			"\x14\x01" + // extended, ut_pex
			"d" +
			"5:added" + "12:" +
			"\xc0\x00\x02\x01\x1a\xe1" + // 192.0.2.1:6881
			"\x0a\x00\x00\x02\xc8\xd5" + // 10.0.0.2:51413
			"7:added.f" + "2:" +
			"\x12" + // seed, reachable
			"\x05" + // prefers encryption, uTP
			"e",
		pex: wire.Pex{Added: []wire.PexPeer{
			{Addr: ap("192.0.2.1:6881"), Flags: wire.PexSeed | wire.PexReachable},
			{Addr: ap("10.0.0.2:51413"), Flags: wire.PexEncryption | wire.PexUTP},
		}},
	},
	{
		name: "IPv6 added, flags zero",
		wire: "\x00\x00\x00\x2e" + // length 2+44
			"\x14\x01" + // extended, ut_pex
			"d" +
			"6:added6" + "18:" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1" + // [2001:db8::1]:6881
			"8:added6.f" + "1:" +
			"\x00" + // no flags: sent anyway, since libtorrent ignores added peers without
			"e",
		pex: wire.Pex{Added: []wire.PexPeer{{Addr: ap("[2001:db8::1]:6881")}}},
	},
	{
		name: "dropped, both families",
		wire: "\x00\x00\x00\x34" + // length 2+50
			"\x14\x01" + // extended, ut_pex
			"d" +
			"7:dropped" + "6:" +
			"\xc0\x00\x02\x01\x1a\xe1" + // 192.0.2.1:6881
			"8:dropped6" + "18:" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x50" + // [2001:db8::2]:80
			"e",
		pex: wire.Pex{Dropped: []netip.AddrPort{ap("192.0.2.1:6881"), ap("[2001:db8::2]:80")}},
	},
	{
		name: "all six keys",
		wire: "\x00\x00\x00\x79" + // length 2+119
			"\x14\x01" + // extended, ut_pex
			"d" +
			"5:added" + "6:" + "\x7f\x00\x00\x01\x00\x01" + // 127.0.0.1:1
			"7:added.f" + "1:" + "\x08" + // holepunch
			"6:added6" + "18:" + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff" + // [::1]:65535
			"8:added6.f" + "1:" + "\x1f" + // every flag BEP 11 defines
			"7:dropped" + "6:" + "\xc0\x00\x02\x09\x00\x02" + // 192.0.2.9:2
			"8:dropped6" + "18:" + "\xfe\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x00\x03" + // [fe80::9]:3
			"e",
		pex: wire.Pex{
			Added: []wire.PexPeer{
				{Addr: ap("127.0.0.1:1"), Flags: wire.PexHolepunch},
				{Addr: ap("[::1]:65535"), Flags: 0x1f},
			},
			Dropped: []netip.AddrPort{ap("192.0.2.9:2"), ap("[fe80::9]:3")},
		},
	},
}

func TestPexRoundTrip(t *testing.T) {
	for _, tt := range pexRoundTrips {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.AppendPex(nil, pexExtID, tt.pex); string(got) != tt.wire {
				t.Errorf("AppendPex(%+v) = %q, want %q", tt.pex, got, tt.wire)
			}
			got, err := wire.ParsePex([]byte(tt.wire[6:]))
			if err != nil || !reflect.DeepEqual(got, tt.pex) {
				t.Errorf("ParsePex(%q) = %+v, %v; want %+v", tt.wire[6:], got, err, tt.pex)
			}
		})
	}
}

// TestPexThroughDecoder reads the messages through the Decoder over the hostile readers
// of testing/iotest.
func TestPexThroughDecoder(t *testing.T) {
	var stream []byte
	for _, tt := range pexRoundTrips {
		stream = append(stream, tt.wire...)
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			d := wire.NewDecoder(rd.wrap(bytes.NewReader(stream)), testPieces)
			for _, tt := range pexRoundTrips {
				m, err := d.Next()
				if err != nil || m.ID != wire.Extended || len(m.Extended) == 0 || m.Extended[0] != pexExtID {
					t.Fatalf("%s: Next() = %+v, %v; want an extended message with id %d", tt.name, m, err, pexExtID)
				}
				if got, err := wire.ParsePex(m.Extended[1:]); err != nil || !reflect.DeepEqual(got, tt.pex) {
					t.Fatalf("%s: ParsePex() = %+v, %v; want %+v", tt.name, got, err, tt.pex)
				}
			}
		})
	}
}

// compact returns the compact forms of addrs, as ut_pex and trackers pack them.
func compact(addrs ...string) string {
	var b []byte
	for _, a := range addrs {
		p := ap(a)
		b = append(b, p.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, p.Port())
	}
	return string(b)
}

// bstr bencodes s.
func bstr(s string) string { return strconv.Itoa(len(s)) + ":" + s }

func TestParsePex(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want wire.Pex
	}{
		{
			// libtorrent writes all six keys, empty or not.
			name: "libtorrent's, empty keys",
			in:   "d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped" + bstr(compact("192.0.2.1:1")) + "8:dropped60:e",
			want: wire.Pex{Dropped: []netip.AddrPort{ap("192.0.2.1:1")}},
		},
		{
			name: "added without added.f",
			in:   "d5:added" + bstr(compact("192.0.2.1:1", "192.0.2.2:2")) + "6:added6" + bstr(compact("[2001:db8::1]:3")) + "e",
			want: wire.Pex{Added: []wire.PexPeer{{Addr: ap("192.0.2.1:1")}, {Addr: ap("192.0.2.2:2")}, {Addr: ap("[2001:db8::1]:3")}}},
		},
		{
			name: "IPv4-mapped in added6 becomes IPv4",
			in:   "d6:added6" + bstr(compact("[::ffff:192.0.2.1]:1")) + "8:added6.f1:\x02" + "e",
			want: wire.Pex{Added: []wire.PexPeer{{Addr: ap("192.0.2.1:1"), Flags: wire.PexSeed}}},
		},
		{
			// Flags stay with their peers when peers before them are skipped.
			name: "undialable skipped",
			in: "d5:added" + bstr(compact("192.0.2.1:0", "0.0.0.0:1", "224.0.0.1:1", "255.255.255.255:1", "192.0.2.5:5")) +
				"7:added.f" + bstr("\x01\x02\x04\x08\x10") +
				"6:added6" + bstr(compact("[::]:1", "[ff02::1]:1", "[2001:db8::5]:5")) + "8:added6.f" + bstr("\x01\x02\x04") +
				"7:dropped" + bstr(compact("192.0.2.1:0", "192.0.2.6:6")) + "e",
			want: wire.Pex{
				Added:   []wire.PexPeer{{Addr: ap("192.0.2.5:5"), Flags: wire.PexReachable}, {Addr: ap("[2001:db8::5]:5"), Flags: wire.PexUTP}},
				Dropped: []netip.AddrPort{ap("192.0.2.6:6")},
			},
		},
		{
			name: "unknown keys and keys out of order",
			in:   "d7:dropped" + bstr(compact("192.0.2.1:1")) + "5:added" + bstr(compact("192.0.2.2:2")) + "1:zli1eee",
			want: wire.Pex{Added: []wire.PexPeer{{Addr: ap("192.0.2.2:2")}}, Dropped: []netip.AddrPort{ap("192.0.2.1:1")}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ParsePex([]byte(tt.in))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParsePex(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParsePexErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want string // a part of the error
	}{
		{name: "empty", in: "", want: "unexpected end of input"},
		{name: "a list", in: "le", want: "not a dictionary"},
		{name: "trailing bytes", in: "dex", want: "trailing data after value"},
		{name: "duplicate key", in: "d5:added0:5:added0:e", want: `duplicate dictionary key "added"`},
		{name: "added an integer", in: "d5:addedi1ee", want: "added: want a string, got integer"},
		{name: "dropped6 a list", in: "d8:dropped6lee", want: "dropped6: want a string, got list"},
		{name: "added.f a dictionary", in: "d7:added.fdee", want: "added.f: want a string, got dictionary"},
		{name: "added of 7 bytes", in: "d5:added7:\x01\x02\x03\x04\x05\x06\x07e", want: "added: length 7 is not a multiple of 6"},
		{name: "added6 of 6 bytes", in: "d6:added6" + bstr(compact("192.0.2.1:1")) + "e", want: "added6: length 6 is not a multiple of 18"},
		{name: "dropped of 20 bytes", in: "d7:dropped" + bstr(compact("[::1]:1")+"xx") + "e", want: "dropped: length 20 is not a multiple of 6"},
		{name: "dropped6 of 19 bytes", in: "d8:dropped6" + bstr(compact("[::1]:1")+"x") + "e", want: "dropped6: length 19 is not a multiple of 18"},
		{name: "too few flags", in: "d5:added" + bstr(compact("192.0.2.1:1", "192.0.2.2:2")) + "7:added.f1:\x00e", want: "added.f: 1 flags for 2 peers"},
		{name: "flags without peers", in: "d7:added.f1:\x00e", want: "added.f: 1 flags for 0 peers"},
		{name: "too many flags for added6", in: "d6:added6" + bstr(compact("[::1]:1")) + "8:added6.f2:\x00\x00e", want: "added6.f: 2 flags for 1 peers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := wire.ParsePex([]byte(tt.in))
			if !errors.Is(err, wire.ErrBadPex) || !strings.HasPrefix(err.Error(), "wire: bad ut_pex message: ") ||
				!strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePex(%q) = %+v, %v; want an ErrBadPex saying %q", tt.in, p, err, tt.want)
			}
		})
	}
}

// TestParsePexBound: past MaxPexPeers the peers of a message are dropped, and what
// ParsePex allocates follows the bound, not the message.
func TestParsePexBound(t *testing.T) {
	msg := func(n int) []byte {
		var v4, v6, f4, f6 []byte
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			v4 = append(v4, compact(netip.AddrPortFrom(a, 1).String())...)
			f4 = append(f4, byte(wire.PexSeed))
			v6 = append(v6, compact(netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 1, 13: byte(i >> 16), byte(i >> 8), byte(i)}), 1).String())...)
			f6 = append(f6, byte(wire.PexUTP))
		}
		return []byte("d5:added" + bstr(string(v4)) + "7:added.f" + bstr(string(f4)) +
			"6:added6" + bstr(string(v6)) + "8:added6.f" + bstr(string(f6)) +
			"7:dropped" + bstr(string(v4)) + "8:dropped6" + bstr(string(v6)) + "e")
	}
	p, err := wire.ParsePex(msg(wire.MaxPexPeers - 10))
	if err != nil || len(p.Added) != wire.MaxPexPeers || len(p.Dropped) != wire.MaxPexPeers ||
		cap(p.Added) != wire.MaxPexPeers || cap(p.Dropped) != wire.MaxPexPeers {
		t.Fatalf("ParsePex(%d + %d peers) = %d added, %d dropped, %v; want %d each",
			wire.MaxPexPeers-10, wire.MaxPexPeers-10, len(p.Added), len(p.Dropped), err, wire.MaxPexPeers)
	}
	// IPv4 first, then IPv6 up to the bound, each with its own flags.
	if a := p.Added[wire.MaxPexPeers-11]; !a.Addr.Addr().Is4() || a.Flags != wire.PexSeed {
		t.Errorf("Added[%d] = %v, want the last IPv4 peer, a seed", wire.MaxPexPeers-11, a)
	}
	if a := p.Added[wire.MaxPexPeers-1]; !a.Addr.Addr().Is6() || a.Flags != wire.PexUTP {
		t.Errorf("Added[%d] = %v, want an IPv6 peer with uTP", wire.MaxPexPeers-1, a)
	}
	if raceEnabled {
		return // the race detector allocates on its own account
	}
	var allocs [2]float64
	for i, n := range []int{wire.MaxPexPeers, 50 * wire.MaxPexPeers} {
		payload := msg(n)
		allocs[i] = testing.AllocsPerRun(20, func() {
			p, err := wire.ParsePex(payload)
			if err != nil || cap(p.Added) != wire.MaxPexPeers || cap(p.Dropped) != wire.MaxPexPeers {
				t.Fatalf("ParsePex(%d + %d peers) = cap %d added, cap %d dropped, %v; want %d each",
					n, n, cap(p.Added), cap(p.Dropped), err, wire.MaxPexPeers)
			}
		})
	}
	if allocs[0] != allocs[1] || allocs[1] > 3 {
		t.Errorf("ParsePex made %v allocations for %d peers, %v for %d; want the same, at most 3",
			allocs[0], wire.MaxPexPeers, allocs[1], 50*wire.MaxPexPeers)
	}
}
