package wire_test

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

func TestSupportsFast(t *testing.T) {
	tests := []struct {
		name     string
		reserved [8]byte
		want     bool
	}{
		{name: "none", want: false},
		{name: "fast bit", reserved: [8]byte{7: wire.FastBit}, want: true},
		{name: "BEP 10, BEP 6 and DHT", reserved: [8]byte{5: wire.ExtensionBit, 7: wire.FastBit | wire.DHTBit}, want: true},
		{name: "DHT only", reserved: [8]byte{7: wire.DHTBit}, want: false},
		{name: "0x04 in another byte", reserved: [8]byte{6: 0x04}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.SupportsFast(tt.reserved); got != tt.want {
				t.Errorf("SupportsFast(%x) = %v, want %v", tt.reserved, got, tt.want)
			}
		})
	}
}

// TestFastWire checks the BEP 6 messages byte for byte, as the BEP writes them.
func TestFastWire(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"have all", wire.AppendState(nil, wire.HaveAll), "\x00\x00\x00\x01" + "\x0e"},   // <len=0x0001><op=0x0E>
		{"have none", wire.AppendState(nil, wire.HaveNone), "\x00\x00\x00\x01" + "\x0f"}, // <len=0x0001><op=0x0F>
		{"suggest piece", wire.AppendSuggest(nil, 0x0102), "\x00\x00\x00\x05" + "\x0d" + "\x00\x00\x01\x02"},
		{"reject request", wire.AppendReject(nil, 3, 0x4000, 0x4000),
			"\x00\x00\x00\x0d" + "\x10" + "\x00\x00\x00\x03" + "\x00\x00\x40\x00" + "\x00\x00\x40\x00"},
		{"allowed fast", wire.AppendAllowedFast(nil, 9), "\x00\x00\x00\x05" + "\x11" + "\x00\x00\x00\x09"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, []byte(tt.want)) {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestAllowedFastSet checks the canonical algorithm against the example results of BEP 6.
func TestAllowedFastSet(t *testing.T) {
	var aa [20]byte
	for i := range aa {
		aa[i] = 0xaa
	}
	ip := netip.MustParseAddr("80.4.4.200")
	tests := []struct {
		name      string
		k, pieces int
		ip        netip.Addr
		want      []int
	}{
		// BEP 6: "7 piece allowed fast set for torrent with 1313 pieces and hex infohash
		// aaaa... for node with IP 80.4.4.200: 1059,431,808,1217,287,376,1188"
		{name: "BEP 6, 7 pieces", k: 7, pieces: 1313, ip: ip, want: []int{1059, 431, 808, 1217, 287, 376, 1188}},
		{name: "BEP 6, 9 pieces", k: 9, pieces: 1313, ip: ip, want: []int{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}},
		{name: "same /24", k: 7, pieces: 1313, ip: netip.MustParseAddr("80.4.4.1"), want: []int{1059, 431, 808, 1217, 287, 376, 1188}},
		{name: "IPv4-mapped IPv6", k: 7, pieces: 1313, ip: netip.MustParseAddr("::ffff:80.4.4.200"), want: []int{1059, 431, 808, 1217, 287, 376, 1188}},
		{name: "k above the piece count", k: 10, pieces: 3, ip: ip, want: nil /* checked below: a permutation of 0..2 */},
		{name: "IPv6", k: 7, pieces: 1313, ip: netip.MustParseAddr("2001:db8::1"), want: nil},
		{name: "no pieces", k: 7, pieces: 0, ip: ip, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.AllowedFastSet(tt.k, tt.pieces, aa, tt.ip)
			if tt.k > tt.pieces && tt.pieces > 0 {
				s := slices.Sorted(slices.Values(got))
				if !slices.Equal(s, []int{0, 1, 2}) {
					t.Errorf("AllowedFastSet(%d, %d) = %v, want every piece once", tt.k, tt.pieces, got)
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("AllowedFastSet(%d, %d, %v) = %v, want %v", tt.k, tt.pieces, tt.ip, got, tt.want)
			}
		})
	}
}
