package wire_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bitstorm/bitstorm/internal/wire"
)

const goodHandshake = "\x13" + // pstrlen 19
	"BitTorrent protocol" + // pstr
	"\x00\x00\x00\x00\x00\x10\x00\x05" + // reserved: BEP 10 extended, BEP 6 fast, BEP 5 DHT
	"\x12\x34\x56\x78\x9a\xbc\xde\xf0\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc" + // info hash
	"-BS0001-abcdefghijkl" // peer id

var goodHandshakeValue = wire.Handshake{
	Reserved: [8]byte{5: 0x10, 7: 0x05},
	InfoHash: [20]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc},
	PeerID:   [20]byte([]byte("-BS0001-abcdefghijkl")),
}

func TestHandshakeAppend(t *testing.T) {
	if len(goodHandshake) != wire.HandshakeLen {
		t.Fatalf("len(goodHandshake) = %d, want %d", len(goodHandshake), wire.HandshakeLen)
	}
	if got := goodHandshakeValue.Append([]byte("x")); string(got) != "x"+goodHandshake {
		t.Errorf("Append() = %q, want %q", got, "x"+goodHandshake)
	}
}

func TestReadHandshake(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error // nil: want goodHandshakeValue
		read int   // bytes ReadHandshake may consume
	}{
		{
			name: "good",
			in:   goodHandshake,
			read: wire.HandshakeLen,
		},
		{
			name: "good, followed by a bitfield it must not read",
			in:   goodHandshake + "\x00\x00\x00\x02" + "\x05" + "\xff",
			read: wire.HandshakeLen,
		},
		{
			name: "pstrlen 18",
			in:   "\x12" + goodHandshake[1:],
			err:  wire.ErrNotBitTorrent,
			read: 1,
		},
		{
			name: "pstrlen 0",
			in:   "\x00" + goodHandshake[1:],
			err:  wire.ErrNotBitTorrent,
			read: 1,
		},
		{
			name: "HTTP request",
			in:   "GET /announce HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat(" ", 40),
			err:  wire.ErrNotBitTorrent,
			read: 1,
		},
		{
			name: "pstrlen 19, other protocol",
			in:   "\x13" + "BitTorrent Protocol" + goodHandshake[20:], // capital P
			err:  wire.ErrNotBitTorrent,
			read: 20,
		},
		{
			name: "empty",
			in:   "",
			err:  io.EOF,
		},
		{
			name: "pstrlen only",
			in:   "\x13",
			err:  io.ErrUnexpectedEOF,
			read: 1,
		},
		{
			name: "cut in pstr",
			in:   goodHandshake[:10],
			err:  io.ErrUnexpectedEOF,
			read: 10,
		},
		{
			name: "cut after pstr",
			in:   goodHandshake[:20],
			err:  io.ErrUnexpectedEOF,
			read: 20,
		},
		{
			name: "cut in peer id",
			in:   goodHandshake[:wire.HandshakeLen-1],
			err:  io.ErrUnexpectedEOF,
			read: wire.HandshakeLen - 1,
		},
	}
	for _, rd := range readers {
		for _, tt := range tests {
			t.Run(rd.name+"/"+tt.name, func(t *testing.T) {
				r := strings.NewReader(tt.in)
				h, err := wire.ReadHandshake(rd.wrap(r))
				if tt.err == nil {
					if err != nil || h != goodHandshakeValue {
						t.Fatalf("ReadHandshake(%q) = %+v, %v, want %+v", tt.in, h, err, goodHandshakeValue)
					}
				} else if !errors.Is(err, tt.err) || tt.err == io.EOF && err != io.EOF {
					t.Fatalf("ReadHandshake(%q) = %+v, %v, want %v", tt.in, h, err, tt.err)
				}
				if err != nil && err != io.EOF && !strings.HasPrefix(err.Error(), "wire: handshake: ") {
					t.Errorf("ReadHandshake(%q) error = %q, want it to start with %q", tt.in, err, "wire: handshake: ")
				}
				if read := len(tt.in) - r.Len(); !rd.readsAhead && read != tt.read {
					t.Errorf("ReadHandshake(%q) read %d bytes, want %d", tt.in, read, tt.read)
				}
			})
		}
	}
}

// TestReadHandshakeMSE feeds what an MSE/PE initiator (aria2, rtorrent) sends first: a
// 96-byte Diffie-Hellman public key and up to 512 bytes of padding, all random.
func TestReadHandshakeMSE(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		b := make([]byte, 96+rng.IntN(513))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i == 0 {
			b[0] = 19 // the 1-in-256 case where pstrlen looks right
		}
		r := bytes.NewReader(b)
		if h, err := wire.ReadHandshake(r); !errors.Is(err, wire.ErrNotBitTorrent) {
			t.Fatalf("ReadHandshake(% x...) = %+v, %v, want %v", b[:20], h, err, wire.ErrNotBitTorrent)
		}
		if read := len(b) - r.Len(); read > 20 {
			t.Fatalf("ReadHandshake(% x...) read %d bytes, want at most 20", b[:20], read)
		}
	}
}

func TestReadHandshakeReadError(t *testing.T) {
	errBoom := errors.New("boom")
	for _, r := range []io.Reader{
		iotest.ErrReader(errBoom),
		io.MultiReader(strings.NewReader(goodHandshake[:30]), iotest.ErrReader(errBoom)),
	} {
		if _, err := wire.ReadHandshake(r); !errors.Is(err, errBoom) {
			t.Errorf("ReadHandshake() on a failing reader: error = %v, want %v", err, errBoom)
		}
	}
}

func TestCheckInfoHash(t *testing.T) {
	h := goodHandshakeValue
	if err := h.CheckInfoHash(goodHandshakeValue.InfoHash); err != nil {
		t.Errorf("CheckInfoHash(own hash) = %v, want nil", err)
	}
	other := h.InfoHash
	other[19] ^= 1
	err := h.CheckInfoHash(other)
	if !errors.Is(err, wire.ErrInfoHashMismatch) {
		t.Fatalf("CheckInfoHash(other hash) = %v, want %v", err, wire.ErrInfoHashMismatch)
	}
	const want = "wire: handshake: info hash 123456789abcdef0112233445566778899aabbcc, want 123456789abcdef0112233445566778899aabbcd"
	if err.Error() != want {
		t.Errorf("CheckInfoHash(other hash) = %q, want %q", err, want)
	}
}
