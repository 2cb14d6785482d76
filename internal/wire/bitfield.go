package wire

import (
	"encoding/binary"
	"math/bits"
)

// Bitfield is a set of piece indexes in the layout of the bitfield message.
// BEP 3: the first byte of the bitfield corresponds to indices 0 - 7 from high bit to
// low bit, respectively; the next one 8-15, etc. Spare bits at the end are set to zero.
//
// A Bitfield does not know the piece count: indexes are in range below len(b)*8, which
// includes the spare bits of the last byte. Callers keep indexes below the piece count
// so that the spare bits stay zero, as the wire requires.
type Bitfield []byte

// NewBitfield returns an empty Bitfield for numPieces pieces: ceil(numPieces/8) bytes.
// A negative numPieces counts as 0.
func NewBitfield(numPieces int) Bitfield {
	return make(Bitfield, bitfieldLen(numPieces))
}

// bitfieldLen is the length in bytes of a bitfield for numPieces pieces.
func bitfieldLen(numPieces int) int {
	if numPieces <= 0 {
		return 0
	}
	return (numPieces + 7) / 8
}

// Has reports whether piece i is in b; false when i is out of range.
func (b Bitfield) Has(i int) bool {
	if i < 0 || i >= len(b)*8 {
		return false
	}
	return b[i>>3]&(0x80>>(i&7)) != 0
}

// Set adds piece i to b; it does nothing when i is out of range.
func (b Bitfield) Set(i int) {
	if i < 0 || i >= len(b)*8 {
		return
	}
	b[i>>3] |= 0x80 >> (i & 7)
}

// Clear removes piece i from b; it does nothing when i is out of range.
func (b Bitfield) Clear(i int) {
	if i < 0 || i >= len(b)*8 {
		return
	}
	b[i>>3] &^= 0x80 >> (i & 7)
}

// HasOutside reports whether b holds a piece that other lacks (spare bits clear in both,
// as ParseBitfield ensures). It compares a byte at a time.
func (b Bitfield) HasOutside(other Bitfield) bool {
	for i, c := range b {
		var o byte
		if i < len(other) {
			o = other[i]
		}
		if c&^o != 0 {
			return true
		}
	}
	return false
}

// Count returns the number of pieces in b.
func (b Bitfield) Count() int {
	n := 0
	for len(b) >= 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return n
}

// ParseBitfield checks that payload, the payload of a bitfield message, is a valid
// bitfield for numPieces pieces and returns it as a Bitfield sharing payload's memory.
// The error wraps ErrBadBitfield when payload is not ceil(numPieces/8) bytes long or
// has a spare bit set.
func ParseBitfield(payload []byte, numPieces int) (Bitfield, error) {
	if want := bitfieldLen(numPieces); len(payload) != want {
		return nil, errorf(ErrBadBitfield, "wire: bitfield: %d bytes, want %d for %d pieces", len(payload), want, numPieces)
	}
	// BEP 3: spare bits at the end are set to zero.
	if spare := numPieces & 7; spare != 0 {
		if last := payload[len(payload)-1]; last&(0xFF>>spare) != 0 {
			return nil, errorf(ErrBadBitfield, "wire: bitfield: spare bits set in last byte %#02x for %d pieces", last, numPieces)
		}
	}
	return Bitfield(payload), nil
}
