package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

func TestExtHandshakeRoundTrip(t *testing.T) {
	for _, h := range []wire.ExtHandshake{
		{},
		{Port: 6881, Client: "BitStorm 0.1", Reqq: 512},
		{Reqq: 1},
		{M: wire.LocalExtensions(), MetadataSize: 31235, YourIP: netip.MustParseAddr("192.0.2.7")},
		{M: map[string]uint8{"ut_metadata": 0, "lt_donthave": 255}, YourIP: netip.MustParseAddr("2001:db8::1")},
		{M: map[string]uint8{"": 1}, YourIP: netip.MustParseAddr("::ffff:192.0.2.7")}, // 16 bytes on the wire
	} {
		msg := wire.AppendExtHandshake(nil, h)
		m, err := wire.NewDecoder(bufio.NewReader(bytes.NewReader(msg)), 8).Next()
		if err != nil || m.ID != wire.Extended || len(m.Extended) == 0 || m.Extended[0] != 0 {
			t.Fatalf("AppendExtHandshake(%+v) = %q decodes to %+v, %v; want an extended handshake", h, msg, m, err)
		}
		got, err := wire.ParseExtHandshake(m.Extended[1:])
		if err != nil || !reflect.DeepEqual(got, h) {
			t.Errorf("ParseExtHandshake(%q) = %+v, %v; want %+v", m.Extended[1:], got, err, h)
		}
	}
	// Keys sorted, as bencoding requires (BEP 3), and an empty "m": we offer no messages.
	if got, want := string(wire.AppendExtHandshake(nil, wire.ExtHandshake{Port: 1, Client: "x", Reqq: 2})[6:]),
		"d1:mde1:pi1e4:reqqi2e1:v1:xe"; got != want {
		t.Errorf("handshake dictionary = %q, want %q", got, want)
	}
}

func TestParseExtHandshake(t *testing.T) {
	// What libtorrent 2.0 sends, more or less: unknown keys are ignored.
	lt := "d12:complete_agoi-1e1:md11:lt_donthavei7e6:ut_pexi1ee13:metadata_sizei0e1:pi51413e4:reqqi500e11:upload_onlyi1e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e"
	h, err := wire.ParseExtHandshake([]byte(lt))
	want := wire.ExtHandshake{
		M:    map[string]uint8{"lt_donthave": 7, "ut_pex": 1},
		Port: 51413, Client: "libtorrent/2.0.8.0", Reqq: 500, YourIP: netip.MustParseAddr("127.0.0.1"),
	}
	if err != nil || !reflect.DeepEqual(h, want) {
		t.Errorf("ParseExtHandshake(libtorrent's) = %+v, %v; want %+v", h, err, want)
	}
	for _, tt := range []struct {
		name string
		in   string
		want wire.ExtHandshake
	}{
		{name: "BEP 9 example", in: "d1:md11:ut_metadatai3ee13:metadata_sizei31235ee",
			want: wire.ExtHandshake{M: map[string]uint8{"ut_metadata": 3}, MetadataSize: 31235}},
		{name: "BEP 10 example", in: "d1:md11:LT_metadatai1e6:\xb5T_PEXi2ee1:pi6881e1:v13:\xc2\xb5Torrent 1.2e",
			want: wire.ExtHandshake{M: map[string]uint8{"LT_metadata": 1, "\xb5T_PEX": 2}, Port: 6881, Client: "\xc2\xb5Torrent 1.2"}},
		// BEP 10: a later handshake may disable an extension with id 0; the 0 is kept.
		{name: "disable", in: "d1:md11:ut_metadatai0eee", want: wire.ExtHandshake{M: map[string]uint8{"ut_metadata": 0}}},
		{name: "empty m", in: "d1:mdee", want: wire.ExtHandshake{}},
		{name: "bad m entries dropped", in: "d1:md1:ai-1e1:bi256e1:c1:x1:dli1ee1:ei5eee",
			want: wire.ExtHandshake{M: map[string]uint8{"e": 5}}},
		{name: "yourip of 5 bytes ignored", in: "d6:yourip5:\x01\x02\x03\x04\x05e", want: wire.ExtHandshake{}},
		{name: "yourip an integer ignored", in: "d6:youripi1ee", want: wire.ExtHandshake{}},
		{name: "yourip IPv6", in: "d6:yourip16:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01e",
			want: wire.ExtHandshake{YourIP: netip.MustParseAddr("2001:db8::1")}},
		{name: "metadata_size zero", in: "d13:metadata_sizei0ee", want: wire.ExtHandshake{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := wire.ParseExtHandshake([]byte(tt.in))
			if err != nil || !reflect.DeepEqual(h, tt.want) {
				t.Errorf("ParseExtHandshake(%q) = %+v, %v; want %+v", tt.in, h, err, tt.want)
			}
		})
	}
	for _, bad := range []string{
		"", "i1e", "le", "d4:reqqi0ee", "d4:reqqi-5ee", "d4:reqq3:abce", "d1:pi70000ee", "d1:p1:xe", "d1:md",
		"d1:mi1ee", "d1:mlee", "d13:metadata_sizei-1ee", "d13:metadata_size1:xe", "d13:metadata_sizei2147483648ee",
	} {
		if h, err := wire.ParseExtHandshake([]byte(bad)); !errors.Is(err, wire.ErrBadExtHandshake) {
			t.Errorf("ParseExtHandshake(%q) = %+v, %v; want ErrBadExtHandshake", bad, h, err)
		}
	}
}

func TestSupportsExtensions(t *testing.T) {
	var r [8]byte
	if wire.SupportsExtensions(r) {
		t.Error("zero reserved bytes announce BEP 10")
	}
	r[5] = wire.ExtensionBit
	if !wire.SupportsExtensions(r) {
		t.Error("Reserved[5]&0x10 does not announce BEP 10")
	}
}

// TestLocalExtHandshake pins the bytes of the handshake BitStorm sends once it has the
// metadata, as BEP 9 and BEP 10 lay it out.
func TestLocalExtHandshake(t *testing.T) {
	got := wire.AppendExtHandshake(nil, wire.ExtHandshake{
		M:    wire.LocalExtensions(),
		Port: 6881, Client: "BitStorm/0.1", Reqq: 250, MetadataSize: 31235,
		YourIP: netip.MustParseAddr("192.0.2.7"),
	})
	want := "\x00\x00\x00\x70" + // length 2+110
		"\x14" + // id extended
		"\x00" + // extended id 0: the handshake
		"d" +
		"1:m" + "d" + "11:ut_metadata" + "i1e" + "6:ut_pex" + "i2e" + "e" + // our ids (BEP 9, BEP 11)
		"13:metadata_size" + "i31235e" + // BEP 9: bytes of the info dictionary
		"1:p" + "i6881e" + // listening port
		"4:reqq" + "i250e" +
		"1:v" + "12:BitStorm/0.1" +
		"6:yourip" + "4:\xc0\x00\x02\x07" + // 192.0.2.7, compact
		"e"
	if string(got) != want {
		t.Errorf("AppendExtHandshake(ours) = %q, want %q", got, want)
	}
	// The ids are distinct and not 0, which would disable the extension (BEP 10).
	ids := map[uint8]bool{}
	for name, id := range wire.LocalExtensions() {
		if id == 0 || ids[id] {
			t.Errorf("LocalExtensions()[%q] = %d: zero or shared", name, id)
		}
		ids[id] = true
	}
}
