package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// FuzzDecode decodes arbitrary bytes for an arbitrary piece count. It must not panic;
// every error must be io.EOF at a message boundary or wrap one of the package's
// sentinels or io.ErrUnexpectedEOF; and every message decoded must re-encode to the
// bytes it was decoded from.
func FuzzDecode(f *testing.F) {
	for _, tt := range roundTrips {
		if len(tt.wire) <= 4096 {
			f.Add(uint16(testPieces), []byte(tt.wire))
		}
	}
	data, _, _ := stream(4096)
	f.Add(uint16(testPieces), data)
	f.Add(uint16(0), []byte("\x00\x00\x00\x01\x05"))                      // empty bitfield for no pieces
	f.Add(uint16(8), []byte("\x00\x00\x00\x02\x05\xff"))                  // bitfield without spare bits
	f.Add(uint16(testPieces), []byte("\xff\xff\xff\xff\x07"))             // piece of 2^32-1 bytes
	f.Add(uint16(testPieces), []byte("\x00\x00\x00\x0e\x07\x00\x00\x00")) // piece cut in its header
	f.Add(uint16(testPieces), []byte(goodHandshake))                      // a handshake is not a message

	// Fuzz functions run one at a time in a process, so they can share a block buffer.
	buf := make([]byte, wire.MaxBlockLen)
	f.Fuzz(func(t *testing.T, numPieces uint16, data []byte) {
		br := bytes.NewReader(data)
		var r io.Reader = br
		var bufr *bufio.Reader
		if numPieces&1 == 1 { // both skip paths: bufio.Reader.Discard and io.Copy
			bufr = bufio.NewReaderSize(br, 16)
			r = bufr
		}
		// consumed is how far into data the Decoder has read.
		consumed := func() int {
			n := len(data) - br.Len()
			if bufr != nil {
				n -= bufr.Buffered()
			}
			return n
		}
		d := wire.NewDecoder(r, int(numPieces))
		next := 0 // where the next message starts, past any block left to Next to skip
		for {
			m, err := d.Next()
			if err != nil {
				checkDecodeError(t, err, next == len(data))
				return
			}
			start, end := next, consumed()
			next = end
			enc := wire.AppendMessage(nil, m)
			switch {
			case m.KeepAlive || fixedSize(m.ID) || m.Extended != nil:
				if !bytes.Equal(enc, data[start:end]) {
					t.Fatalf("Next() = %+v from %q, which encodes to %q", m, data[start:end], enc)
				}
			case m.ID == wire.Piece:
				if !bytes.Equal(enc, data[start:end]) || len(enc) != 13 {
					t.Fatalf("Next() = %+v from header %q, which encodes to %q", m, data[start:end], enc)
				}
				if m.Length > wire.MaxBlockLen {
					t.Fatalf("Next() = %+v: block longer than MaxBlockLen", m)
				}
				switch m.Begin % 3 {
				case 0:
					block := buf[:m.Length]
					if err := d.ReadBlock(block); err != nil {
						checkDecodeError(t, err, false)
						return
					}
					next = consumed()
					if !bytes.Equal(block, data[end:next]) {
						t.Fatalf("ReadBlock() = %q, want %q", block, data[end:next])
					}
				case 1:
					if err := d.Discard(); err != nil {
						checkDecodeError(t, err, false)
						return
					}
					if next = consumed(); next != end+int(m.Length) {
						t.Fatalf("Discard() skipped %d bytes of a %d-byte block", next-end, m.Length)
					}
				case 2: // leave the block to Next
					next = end + int(m.Length)
				}
			default:
				if !bytes.Equal(enc, data[start:start+5]) || end-start != 5+int(m.Length) {
					t.Fatalf("Next() = %+v from %q, which encodes to header %q", m, data[start:end], enc)
				}
				if m.Length > wire.MaxUnknownLen {
					t.Fatalf("Next() = %+v: skipped more than MaxUnknownLen", m)
				}
				if m.ID == wire.Extended && m.Length <= wire.MaxExtendedLen {
					t.Fatalf("Next() = %+v: skipped an extended message it should return", m)
				}
			}
			if m.ID == wire.Extended && len(m.Extended) > 0 && m.Extended[0] == 0 {
				if _, err := wire.ParseExtHandshake(m.Extended[1:]); err != nil && !errors.Is(err, wire.ErrBadExtHandshake) {
					t.Fatalf("ParseExtHandshake(%q) = %v, want an ErrBadExtHandshake", m.Extended[1:], err)
				}
			}
			switch m.ID {
			case wire.Have, wire.Request, wire.Piece, wire.Cancel, wire.Suggest, wire.Reject, wire.AllowedFast:
				if !m.KeepAlive && m.Index >= uint32(numPieces) {
					t.Fatalf("Next() = %+v: index out of range for %d pieces", m, numPieces)
				}
			case wire.BitfieldID:
				if _, err := wire.ParseBitfield(m.Bitfield, int(numPieces)); err != nil {
					t.Fatalf("Next() = %+v: %v", m, err)
				}
			}
		}
	})
}

// checkDecodeError fails t unless err is one the Decoder may return: io.EOF, only at
// the end of the input, or a "wire: " error wrapping a sentinel or io.ErrUnexpectedEOF.
func checkDecodeError(t *testing.T, err error, atEnd bool) {
	t.Helper()
	if err == io.EOF {
		if !atEnd {
			t.Fatalf("io.EOF before the end of the input")
		}
		return
	}
	for _, want := range []error{
		wire.ErrMessageTooLong, wire.ErrBadLength, wire.ErrBadBitfield, wire.ErrBadIndex, io.ErrUnexpectedEOF,
	} {
		if errors.Is(err, want) {
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Fatalf("error %q does not start with %q", err, "wire: ")
			}
			return
		}
	}
	t.Fatalf("unexpected error %v", err)
}

// FuzzHandshake reads a handshake from arbitrary bytes. It must not panic, never read
// more than HandshakeLen bytes, and accept exactly the inputs that start with pstrlen
// and Protocol and are long enough, re-encoding them to the same bytes.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte(goodHandshake))
	f.Add([]byte(goodHandshake + "\x00\x00\x00\x00"))
	f.Add([]byte(goodHandshake[:20]))
	f.Add([]byte("\x13BitTorrent Protocol" + goodHandshake[20:]))
	f.Add([]byte("\x12" + goodHandshake[1:]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, err := wire.ReadHandshake(r)
		read := len(data) - r.Len()
		if read > wire.HandshakeLen {
			t.Fatalf("ReadHandshake(%q) read %d bytes", data, read)
		}
		valid := len(data) >= wire.HandshakeLen && string(data[:20]) == "\x13"+wire.Protocol
		if !valid {
			if err == nil {
				t.Fatalf("ReadHandshake(%q) = %+v, want an error", data, h)
			}
			if !errors.Is(err, wire.ErrNotBitTorrent) && !errors.Is(err, io.ErrUnexpectedEOF) &&
				!(err == io.EOF && len(data) == 0) {
				t.Fatalf("ReadHandshake(%q) = unexpected error %v", data, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ReadHandshake(%q) = %v, want a handshake", data, err)
		}
		if enc := h.Append(nil); !bytes.Equal(enc, data[:wire.HandshakeLen]) {
			t.Fatalf("ReadHandshake(%q) = %+v, which encodes to %q", data, h, enc)
		}
	})
}

// FuzzParseMetadataMsg parses arbitrary ut_metadata payloads. It must not panic; every
// error must wrap ErrBadMetadataMsg; and every message accepted must keep BEP 9's
// promises (a data message carries exactly its piece of a metadata of at most
// MaxMetadataSize bytes, as the tail of the payload) and re-encode to a message that
// parses to the same.
func FuzzParseMetadataMsg(f *testing.F) {
	for _, tt := range metadataRoundTrips {
		f.Add([]byte(tt.wire[6:]))
	}
	for _, s := range []string{
		"d8:msg_typei7e5:piecei99999ee", "d5:piecei1e8:msg_typei2ee", "d8:msg_typei1e5:piecei0e10:total_sizei2ee" + "ee",
		"d8:msg_typei0e5:piecei0eex", "d8:msg_typei1e5:piecei1e10:total_sizei100ee" + metadataPiece(100), "de", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := wire.ParseMetadataMsg(payload)
		if err != nil {
			if !errors.Is(err, wire.ErrBadMetadataMsg) || !strings.HasPrefix(err.Error(), "wire: ") {
				t.Fatalf("ParseMetadataMsg(%q) = unexpected error %v", payload, err)
			}
			return
		}
		switch m.Type {
		case wire.MetadataData:
			n, err := wire.MetadataPieces(m.TotalSize)
			if err != nil || m.Piece < 0 || m.Piece >= n {
				t.Fatalf("ParseMetadataMsg(%q) = piece %d of %d bytes (%d pieces, %v)", payload, m.Piece, m.TotalSize, n, err)
			}
			want := min(wire.MetadataPieceSize, m.TotalSize-m.Piece*wire.MetadataPieceSize)
			if len(m.Data) != want || !bytes.Equal(m.Data, payload[len(payload)-len(m.Data):]) {
				t.Fatalf("ParseMetadataMsg(%q) = %d bytes of data, want the last %d of the payload", payload, len(m.Data), want)
			}
		case wire.MetadataRequest, wire.MetadataReject:
			if m.Piece < 0 || m.Piece*wire.MetadataPieceSize >= wire.MaxMetadataSize || m.Data != nil {
				t.Fatalf("ParseMetadataMsg(%q) = %+v", payload, m)
			}
		default:
			if m.Piece != 0 || m.TotalSize != 0 || m.Data != nil {
				t.Fatalf("ParseMetadataMsg(%q) = %+v, want only the type of an unknown message", payload, m)
			}
		}
		enc := wire.AppendMetadataMsg(nil, 1, m)
		again, err := wire.ParseMetadataMsg(enc[6:])
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("ParseMetadataMsg(%q) = %+v, which encodes to %q, which parses to %+v, %v", payload, m, enc, again, err)
		}
	})
}

// FuzzParsePex parses arbitrary ut_pex payloads. It must not panic; every error must
// wrap ErrBadPex; what it accepts must be bounded, dialable and unmapped; and it must
// re-encode to a message that parses to the same peers (IPv4 ones first, as AppendPex
// sends them in "added" before "added6").
func FuzzParsePex(f *testing.F) {
	for _, tt := range pexRoundTrips {
		f.Add([]byte(tt.wire[6:]))
	}
	for _, s := range []string{
		"d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e",
		"d6:added6" + bstr(compact("[::ffff:192.0.2.1]:1", "[2001:db8::1]:2")) + "8:added6.f2:\x01\x02e",
		"d5:added" + bstr(compact("192.0.2.1:0", "192.0.2.2:2")) + "e", "d5:addedi1ee", "le", "",
	} {
		f.Add([]byte(s))
	}
	canonical := func(p wire.Pex) wire.Pex {
		p.Added = slices.Clone(p.Added)
		p.Dropped = slices.Clone(p.Dropped)
		slices.SortStableFunc(p.Added, func(a, b wire.PexPeer) int { return family(a.Addr) - family(b.Addr) })
		slices.SortStableFunc(p.Dropped, func(a, b netip.AddrPort) int { return family(a) - family(b) })
		return p
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := wire.ParsePex(payload)
		if err != nil {
			if !errors.Is(err, wire.ErrBadPex) || !strings.HasPrefix(err.Error(), "wire: ") {
				t.Fatalf("ParsePex(%q) = unexpected error %v", payload, err)
			}
			return
		}
		if len(p.Added) > wire.MaxPexPeers || len(p.Dropped) > wire.MaxPexPeers {
			t.Fatalf("ParsePex(%q) = %d added, %d dropped: more than MaxPexPeers", payload, len(p.Added), len(p.Dropped))
		}
		all := slices.Clone(p.Dropped)
		for _, a := range p.Added {
			all = append(all, a.Addr)
		}
		for _, a := range all {
			if a.Port() == 0 || a.Addr().IsUnspecified() || a.Addr().IsMulticast() || a.Addr().Is4In6() || a.Addr().Zone() != "" {
				t.Fatalf("ParsePex(%q) = %+v: %v", payload, p, a)
			}
		}
		enc := wire.AppendPex(nil, 1, p)
		again, err := wire.ParsePex(enc[6:])
		if want := canonical(p); err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("ParsePex(%q) = %+v, which encodes to %q, which parses to %+v, %v; want %+v", payload, p, enc, again, err, want)
		}
	})
}

// family orders IPv4 before IPv6.
func family(a netip.AddrPort) int {
	if a.Addr().Is4() {
		return 0
	}
	return 1
}

// FuzzExtHandshake parses arbitrary extended handshakes. It must not panic, every error
// must wrap ErrBadExtHandshake, and a handshake it accepts must re-encode to one that
// parses to the same.
func FuzzExtHandshake(f *testing.F) {
	for _, s := range []string{
		"d12:complete_agoi-1e1:md11:lt_donthavei7e6:ut_pexi1ee13:metadata_sizei0e1:pi51413e4:reqqi500e11:upload_onlyi1e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e",
		"d1:md11:ut_metadatai3ee13:metadata_sizei31235ee", "d1:md1:ai-1e1:bi256ee", "d6:yourip5:12345e", "d1:mi1ee", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := wire.ParseExtHandshake(payload)
		if err != nil {
			if !errors.Is(err, wire.ErrBadExtHandshake) {
				t.Fatalf("ParseExtHandshake(%q) = unexpected error %v", payload, err)
			}
			return
		}
		enc := wire.AppendExtHandshake(nil, h)
		again, err := wire.ParseExtHandshake(enc[6:])
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("ParseExtHandshake(%q) = %+v, which encodes to %q, which parses to %+v, %v", payload, h, enc, again, err)
		}
	})
}
