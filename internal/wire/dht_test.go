package wire_test

import (
	"strings"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

func TestAppendPort(t *testing.T) {
	for _, tt := range []struct {
		name string
		port uint16
		wire string
	}{
		{name: "6881", port: 6881, wire: "\x00\x00\x00\x03" + // length 3
			"\x09" + // id port
			"\x1a\xe1"}, // port 6881
		{name: "zero", port: 0, wire: "\x00\x00\x00\x03\x09\x00\x00"},
		{name: "highest", port: 65535, wire: "\x00\x00\x00\x03\x09\xff\xff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.AppendPort([]byte("prefix"), tt.port)
			if string(got) != "prefix"+tt.wire {
				t.Errorf("AppendPort(%d) = %q, want %q", tt.port, got, "prefix"+tt.wire)
			}
			if enc := wire.AppendMessage(nil, wire.Message{ID: wire.Port, Port: tt.port}); string(enc) != tt.wire {
				t.Errorf("AppendMessage(port %d) = %q, want %q", tt.port, enc, tt.wire)
			}
			m, err := wire.NewDecoder(strings.NewReader(tt.wire), testPieces).Next()
			if err != nil || m.ID != wire.Port || m.Port != tt.port {
				t.Errorf("Next() of %q = %+v, %v; want port %d", tt.wire, m, err, tt.port)
			}
		})
	}
}

func TestSupportsDHT(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reserved [8]byte
		want     bool
	}{
		{name: "none", want: false},
		{name: "DHT bit", reserved: [8]byte{7: wire.DHTBit}, want: true},
		{name: "fast extension only", reserved: [8]byte{7: 0x04}, want: false},
		{name: "libtorrent: BEP 10, BEP 6, BEP 5", reserved: [8]byte{5: 0x10, 7: 0x05}, want: true},
		{name: "bit in the wrong byte", reserved: [8]byte{0: 0x01}, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.SupportsDHT(tt.reserved); got != tt.want {
				t.Errorf("SupportsDHT(%x) = %v, want %v", tt.reserved, got, tt.want)
			}
		})
	}
}
