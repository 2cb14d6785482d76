package wire_test

import (
	"errors"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

func TestNewBitfield(t *testing.T) {
	tests := []struct{ numPieces, len int }{
		{-1, 0}, {0, 0}, {1, 1}, {7, 1}, {8, 1}, {9, 2}, {testPieces, 5}, {1 << 20, 1 << 17},
	}
	for _, tt := range tests {
		b := wire.NewBitfield(tt.numPieces)
		if len(b) != tt.len || b.Count() != 0 {
			t.Errorf("NewBitfield(%d) = %d bytes with %d set, want %d bytes, none set", tt.numPieces, len(b), b.Count(), tt.len)
		}
	}
}

func TestBitfieldSetHasClear(t *testing.T) {
	b := wire.NewBitfield(testPieces)
	// BEP 3: the high bit of the first byte is piece 0.
	b.Set(0)
	b.Set(9)
	b.Set(36)
	b.Set(36) // twice: no change
	if want := (wire.Bitfield{0x80, 0x40, 0, 0, 0x08}); string(b) != string(want) {
		t.Fatalf("after Set(0), Set(9), Set(36): % x, want % x", b, want)
	}
	for i := -1; i <= 41; i++ {
		want := i == 0 || i == 9 || i == 36
		if got := b.Has(i); got != want {
			t.Errorf("Has(%d) = %v, want %v", i, got, want)
		}
	}
	if n := b.Count(); n != 3 {
		t.Errorf("Count() = %d, want 3", n)
	}
	// Out of range: no effect, no panic.
	for _, i := range []int{-1, -100, 40, 1 << 40} {
		b.Set(i)
		b.Clear(i)
		if b.Has(i) {
			t.Errorf("Has(%d) = true out of range", i)
		}
	}
	b.Clear(9)
	b.Clear(10) // not set: no change
	if want := (wire.Bitfield{0x80, 0, 0, 0, 0x08}); string(b) != string(want) {
		t.Fatalf("after Clear(9): % x, want % x", b, want)
	}
	var empty wire.Bitfield
	empty.Set(0)
	empty.Clear(0)
	if empty.Has(0) || empty.Count() != 0 {
		t.Errorf("nil Bitfield: Has(0) = %v, Count() = %d", empty.Has(0), empty.Count())
	}
}

func TestBitfieldCount(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 1000} {
		b := wire.NewBitfield(n)
		for i := range n {
			if i%3 != 1 {
				b.Set(i)
			}
		}
		want := n - (n+1)/3
		if got := b.Count(); got != want {
			t.Errorf("Count() of %d pieces with every third unset = %d, want %d", n, got, want)
		}
	}
}

func TestBitfieldHasOutside(t *testing.T) {
	const n = 70
	bf := func(set ...int) wire.Bitfield {
		b := wire.NewBitfield(n)
		for _, i := range set {
			b.Set(i)
		}
		return b
	}
	for _, tc := range []struct {
		b, other wire.Bitfield
		want     bool
	}{
		{bf(), bf(), false},
		{bf(), bf(1, 69), false},
		{bf(3), bf(3), false},
		{bf(3, 69), bf(3), true}, // the last piece, in the last byte
		{bf(0, 8, 16), bf(0, 8, 16, 17), false},
		{bf(9), bf(8, 10), true},
		{bf(5), wire.Bitfield{}, true}, // a shorter other lacks everything
	} {
		if got := tc.b.HasOutside(tc.other); got != tc.want {
			t.Errorf("%08b.HasOutside(%08b) = %v, want %v", []byte(tc.b), []byte(tc.other), got, tc.want)
		}
	}
}

func TestParseBitfield(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		numPieces int
		err       error
	}{
		{"37 pieces", "\xff\xff\xff\xff\xf8", 37, nil},
		{"8 pieces, no spare bits", "\xff", 8, nil},
		{"1 piece", "\x80", 1, nil},
		{"0 pieces", "", 0, nil},
		{"short", "\xff\xff\xff\xff", 37, wire.ErrBadBitfield},
		{"long", "\xff\xff\xff\xff\xf8\x00", 37, wire.ErrBadBitfield},
		{"empty for 1 piece", "", 1, wire.ErrBadBitfield},
		{"last spare bit set", "\xff\xff\xff\xff\xf9", 37, wire.ErrBadBitfield},
		{"first spare bit set", "\x00\x00\x00\x00\x04", 37, wire.ErrBadBitfield},
		{"1 piece, spare bit set", "\x40", 1, wire.ErrBadBitfield},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := wire.ParseBitfield([]byte(tt.payload), tt.numPieces)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseBitfield(%q, %d) = % x, %v, want %v", tt.payload, tt.numPieces, b, err, tt.err)
			}
			if err == nil && string(b) != tt.payload {
				t.Errorf("ParseBitfield(%q, %d) = %q, want the payload", tt.payload, tt.numPieces, b)
			}
		})
	}
}
