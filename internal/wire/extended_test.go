package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

func TestExtHandshakeRoundTrip(t *testing.T) {
	for _, h := range []wire.ExtHandshake{
		{},
		{Port: 6881, Client: "BitStorm 0.1", Reqq: 512},
		{Reqq: 1},
	} {
		msg := wire.AppendExtHandshake(nil, h)
		m, err := wire.NewDecoder(bufio.NewReader(bytes.NewReader(msg)), 8).Next()
		if err != nil || m.ID != wire.Extended || len(m.Extended) == 0 || m.Extended[0] != 0 {
			t.Fatalf("AppendExtHandshake(%+v) = %q decodes to %+v, %v; want an extended handshake", h, msg, m, err)
		}
		got, err := wire.ParseExtHandshake(m.Extended[1:])
		if err != nil || got != h {
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
	if want := (wire.ExtHandshake{Port: 51413, Client: "libtorrent/2.0.8.0", Reqq: 500}); err != nil || h != want {
		t.Errorf("ParseExtHandshake(libtorrent's) = %+v, %v; want %+v", h, err, want)
	}
	for _, bad := range []string{
		"", "i1e", "le", "d4:reqqi0ee", "d4:reqqi-5ee", "d4:reqq3:abce", "d1:pi70000ee", "d1:p1:xe", "d1:md",
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
