package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// metadataPiece returns n bytes of a fake info dictionary piece.
func metadataPiece(n int) string { return strings.Repeat("x", n) }

// metadataExtID is the extended id the peer in these tests gave ut_metadata.
const metadataExtID = 3

// metadataRoundTrips are valid ut_metadata messages as they appear on the wire.
var metadataRoundTrips = []struct {
	name string
	wire string
	msg  wire.MetadataMsg
}{
	{
		name: "request first piece", // BEP 9's example
		wire: "\x00\x00\x00\x1b" + // length 2+25
			"\x14" + // id extended
			"\x03" + // extended id: the peer's ut_metadata
			"d8:msg_typei0e5:piecei0ee",
		msg: wire.MetadataMsg{Type: wire.MetadataRequest, Piece: 0},
	},
	{
		name: "reject",
		wire: "\x00\x00\x00\x1b" + // length 2+25
			"\x14\x03" + // extended, ut_metadata
			"d8:msg_typei2e5:piecei7ee",
		msg: wire.MetadataMsg{Type: wire.MetadataReject, Piece: 7},
	},
	{
		name: "data, the only piece",
		wire: "\x00\x00\x0d\x8f" + // length 2+44+3425
			"\x14\x03" + // extended, ut_metadata
			"d8:msg_typei1e5:piecei0e10:total_sizei3425ee" + // a dictionary, then outside it
			metadataPiece(3425), // the piece: all 3425 bytes
		msg: wire.MetadataMsg{Type: wire.MetadataData, Piece: 0, TotalSize: 3425, Data: []byte(metadataPiece(3425))},
	},
	{
		name: "data, a full piece",
		wire: "\x00\x00\x40\x2f" + // length 2+45+16384
			"\x14\x03" + // extended, ut_metadata
			"d8:msg_typei1e5:piecei1e10:total_sizei40000ee" +
			metadataPiece(16384), // BEP 9: a piece that is not the last MUST be 16kiB
		msg: wire.MetadataMsg{Type: wire.MetadataData, Piece: 1, TotalSize: 40000, Data: []byte(metadataPiece(16384))},
	},
	{
		name: "data, the last piece",
		wire: "\x00\x00\x1c\x6f" + // length 2+45+7232
			"\x14\x03" + // extended, ut_metadata
			"d8:msg_typei1e5:piecei2e10:total_sizei40000ee" +
			metadataPiece(40000-2*16384), // what is left
		msg: wire.MetadataMsg{Type: wire.MetadataData, Piece: 2, TotalSize: 40000, Data: []byte(metadataPiece(7232))},
	},
	{
		name: "data, the largest metadata's last piece",
		wire: "\x00\x00\x40\x35" + // length 2+51+16384
			"\x14\x03" + // extended, ut_metadata
			"d8:msg_typei1e5:piecei1919e10:total_sizei31457280ee" +
			metadataPiece(16384),
		msg: wire.MetadataMsg{Type: wire.MetadataData, Piece: 1919, TotalSize: wire.MaxMetadataSize, Data: []byte(metadataPiece(16384))},
	},
}

func TestMetadataMsgRoundTrip(t *testing.T) {
	for _, tt := range metadataRoundTrips {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.AppendMetadataMsg(nil, metadataExtID, tt.msg); string(got) != tt.wire {
				t.Errorf("AppendMetadataMsg(%s) = %q, want %q", short(tt.msg), trim(got), trim([]byte(tt.wire)))
			}
			got, err := wire.ParseMetadataMsg([]byte(tt.wire[6:]))
			if err != nil || !reflect.DeepEqual(got, tt.msg) {
				t.Errorf("ParseMetadataMsg(%q) = %s, %v; want %s", trim([]byte(tt.wire[6:])), short(got), err, short(tt.msg))
			}
		})
	}
}

// short formats m for error messages, with the length of its data instead of the data.
func short(m wire.MetadataMsg) string {
	return fmt.Sprintf("{Type:%d Piece:%d TotalSize:%d Data:[%d bytes]}", m.Type, m.Piece, m.TotalSize, len(m.Data))
}

// trim shortens a message with a piece in it for error messages.
func trim(b []byte) []byte {
	if len(b) > 80 {
		return append(b[:80:80], "..."...)
	}
	return b
}

// TestMetadataMsgThroughDecoder reads each message through the Decoder over the hostile
// readers of testing/iotest: a data message with a full piece must come out whole, as an
// extended message, not be skipped as too long.
func TestMetadataMsgThroughDecoder(t *testing.T) {
	var stream []byte
	for _, tt := range metadataRoundTrips {
		stream = append(stream, tt.wire...)
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			d := wire.NewDecoder(rd.wrap(bytes.NewReader(stream)), testPieces)
			for _, tt := range metadataRoundTrips {
				m, err := d.Next()
				if err != nil || m.ID != wire.Extended || len(m.Extended) == 0 || m.Extended[0] != metadataExtID {
					t.Fatalf("%s: Next() = %v %q, %v; want an extended message with id %d", tt.name, m.ID, trim(m.Extended), err, metadataExtID)
				}
				got, err := wire.ParseMetadataMsg(m.Extended[1:])
				if err != nil || !reflect.DeepEqual(got, tt.msg) {
					t.Fatalf("%s: ParseMetadataMsg() = %s, %v; want %s", tt.name, short(got), err, short(tt.msg))
				}
			}
		})
	}
}

func TestParseMetadataMsg(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want wire.MetadataMsg
	}{
		// BEP 9: an unrecognized message ID MUST be ignored; the caller sees its type.
		{name: "unknown type", in: "d8:msg_typei7e5:piecei99999e3:fooli1eee" + "trailing", want: wire.MetadataMsg{Type: 7}},
		{name: "unknown type, no piece", in: "d8:msg_typei3ee", want: wire.MetadataMsg{Type: 3}},
		{name: "unknown keys", in: "d8:msg_typei0e5:piecei1e4:zzzzld1:ai1eeee", want: wire.MetadataMsg{Type: wire.MetadataRequest, Piece: 1}},
		{name: "keys out of order", in: "d5:piecei1e8:msg_typei2ee", want: wire.MetadataMsg{Type: wire.MetadataReject, Piece: 1}},
		{name: "data whose piece looks like bencode", in: "d8:msg_typei1e5:piecei0e10:total_sizei2ee" + "ee",
			want: wire.MetadataMsg{Type: wire.MetadataData, TotalSize: 2, Data: []byte("ee")}},
		{name: "request for the last piece of the largest metadata", in: "d8:msg_typei0e5:piecei1919ee",
			want: wire.MetadataMsg{Type: wire.MetadataRequest, Piece: 1919}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ParseMetadataMsg([]byte(tt.in))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMetadataMsg(%q) = %s, %v; want %s", tt.in, short(got), err, short(tt.want))
			}
		})
	}
}

func TestParseMetadataMsgErrors(t *testing.T) {
	const head = "d8:msg_typei1e5:piecei0e10:total_sizei100ee"
	for _, tt := range []struct {
		name string
		in   string
		want string // a part of the error
	}{
		{name: "empty", in: "", want: "does not start with a dictionary"},
		{name: "a list", in: "le", want: "does not start with a dictionary"},
		{name: "an integer", in: "i0e", want: "does not start with a dictionary"},
		{name: "cut", in: "d8:msg_typei0e5:piecei0e", want: "unexpected end of input"},
		{name: "a piece where the dictionary should end", in: "d8:msg_typei1e" + metadataPiece(100), want: "bencode: offset 14"},
		{name: "string longer than the message", in: "d8:msg_typei0e5:piece99:", want: "string length exceeds input"},
		{name: "duplicate key", in: "d8:msg_typei0e8:msg_typei1e5:piecei0ee", want: `duplicate dictionary key "msg_type"`},
		{name: "nested too deep", in: "d1:a" + strings.Repeat("l", 8) + strings.Repeat("e", 8) + "8:msg_typei0e5:piecei0ee",
			want: "nesting deeper than 8"},
		{name: "non-canonical integer", in: "d8:msg_typei00e5:piecei0ee", want: "leading zero"},
		{name: "msg_type missing", in: "d5:piecei0ee", want: "msg_type: missing"},
		{name: "msg_type a string", in: "d8:msg_type1:05:piecei0ee", want: "msg_type: want an integer, got string"},
		{name: "msg_type negative", in: "d8:msg_typei-1e5:piecei0ee", want: "msg_type: -1 is not a message type"},
		{name: "msg_type huge", in: "d8:msg_typei9223372036854775807e5:piecei0ee", want: "is not a message type"},
		{name: "piece missing", in: "d8:msg_typei0ee", want: "piece: missing"},
		{name: "piece a list", in: "d8:msg_typei2e5:piecelee", want: "piece: want an integer, got list"},
		{name: "piece negative", in: "d8:msg_typei0e5:piecei-1ee", want: "piece: -1 is not a piece of a metadata of at most 31457280 bytes"},
		{name: "piece beyond the largest metadata", in: "d8:msg_typei0e5:piecei1920ee", want: "piece: 1920 is not a piece"},
		{name: "trailing bytes after a request", in: "d8:msg_typei0e5:piecei0eex", want: "1 bytes after the dictionary of a message that carries no data"},
		{name: "trailing bytes after a reject", in: "d8:msg_typei2e5:piecei0ee\x00\x00", want: "2 bytes after the dictionary"},
		{name: "total_size missing", in: "d8:msg_typei1e5:piecei0ee" + metadataPiece(10), want: "total_size: missing in a data message"},
		{name: "total_size a dictionary", in: "d8:msg_typei1e5:piecei0e10:total_sizedee", want: "total_size: want an integer, got dictionary"},
		{name: "total_size zero", in: "d8:msg_typei1e5:piecei0e10:total_sizei0ee", want: "total_size: 0 is not in [1, 31457280]"},
		{name: "total_size too large", in: "d8:msg_typei1e5:piecei0e10:total_sizei31457281ee" + metadataPiece(16384),
			want: "total_size: 31457281 is not in [1, 31457280]"},
		{name: "piece beyond total_size", in: "d8:msg_typei1e5:piecei1e10:total_sizei100ee" + metadataPiece(100),
			want: "piece: 1 is not a piece of a 100-byte metadata"},
		{name: "data missing", in: head, want: "piece 0 of a 100-byte metadata has 0 bytes, want 100"},
		{name: "data short", in: head + metadataPiece(99), want: "has 99 bytes, want 100"},
		{name: "data long", in: head + metadataPiece(101), want: "has 101 bytes, want 100"},
		{name: "not the last piece and short", in: "d8:msg_typei1e5:piecei0e10:total_sizei16385ee" + metadataPiece(16383),
			want: "piece 0 of a 16385-byte metadata has 16383 bytes, want 16384"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := wire.ParseMetadataMsg([]byte(tt.in))
			if !errors.Is(err, wire.ErrBadMetadataMsg) || !strings.HasPrefix(err.Error(), "wire: bad ut_metadata message: ") ||
				!strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseMetadataMsg(%q) = %s, %v; want an ErrBadMetadataMsg saying %q", trim([]byte(tt.in)), short(m), err, tt.want)
			}
		})
	}
}

// TestParseMetadataMsgAllocs: the data of a message is a sub-slice of the payload and the
// dictionary is scanned in place, so what a message costs does not grow with its size,
// however hostile it is.
func TestParseMetadataMsgAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own account")
	}
	for _, tt := range []struct {
		name string
		in   func(n int) string // a message whose size grows with n
		max  float64
	}{
		{"data", func(n int) string {
			return fmt.Sprintf("d8:msg_typei1e5:piecei0e10:total_sizei%dee", n) + metadataPiece(n)
		}, 4},
		{"lists that cost bencode.Decode megabytes", func(n int) string {
			return "d1:a" + strings.Repeat("le", n) + "8:msg_typei0e5:piecei0ee"
		}, 10},
		{"a long, bad dictionary", func(n int) string {
			return "d8:msg_typei0e5:piecei0e" + strings.Repeat("1:a", n)
		}, 20},
		{"a long string value", func(n int) string {
			return "d1:a" + strconv.Itoa(n) + ":" + metadataPiece(n) + "8:msg_typei0e5:piecei0ee"
		}, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var allocs [2]float64
			for i, n := range []int{100, 10000} {
				payload := []byte(tt.in(n))
				allocs[i] = testing.AllocsPerRun(20, func() { wire.ParseMetadataMsg(payload) })
			}
			if allocs[0] != allocs[1] || allocs[1] > tt.max {
				t.Errorf("ParseMetadataMsg made %v allocations for n = 100, %v for n = 10000; want the same, at most %v",
					allocs[0], allocs[1], tt.max)
			}
		})
	}
	m, err := wire.ParseMetadataMsg([]byte(metadataRoundTrips[3].wire[6:]))
	if err != nil || cap(m.Data) != len(m.Data) {
		t.Errorf("ParseMetadataMsg() = Data of len %d, cap %d, %v; want the capacity capped", len(m.Data), cap(m.Data), err)
	}
}

func TestMetadataPieces(t *testing.T) {
	for _, tt := range []struct {
		size, want int
		ok         bool
	}{
		{-1, 0, false},
		{0, 0, false}, // no metadata_size: the peer cannot give us the metadata
		{1, 1, true},
		{16384, 1, true},
		{16385, 2, true},
		{40000, 3, true},
		{wire.MaxMetadataSize, 1920, true},
		{wire.MaxMetadataSize + 1, 0, false},
	} {
		n, err := wire.MetadataPieces(tt.size)
		if n != tt.want || (err == nil) != tt.ok {
			t.Errorf("MetadataPieces(%d) = %d, %v; want %d, ok %v", tt.size, n, err, tt.want, tt.ok)
		}
	}
}

func TestMetadataPiece(t *testing.T) {
	raw := make([]byte, 40000)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	for _, tt := range []struct {
		index      int
		start, end int
		ok         bool
	}{
		{index: 0, start: 0, end: 16384, ok: true},
		{index: 1, start: 16384, end: 32768, ok: true},
		{index: 2, start: 32768, end: 40000, ok: true},
		{index: 3},
		{index: -1},
	} {
		got, ok := wire.MetadataPiece(raw, tt.index)
		if ok != tt.ok || !bytes.Equal(got, raw[tt.start:tt.end]) || cap(got) != len(got) {
			t.Errorf("MetadataPiece(40000 bytes, %d) = [%d bytes], %v; want raw[%d:%d], %v", tt.index, len(got), ok, tt.start, tt.end, tt.ok)
		}
	}
	if got, ok := wire.MetadataPiece(nil, 0); ok || got != nil {
		t.Errorf("MetadataPiece(nil, 0) = %q, %v; want nothing", got, ok)
	}
	// The pieces MetadataPiece cuts are those a data message must carry.
	for i := range 3 {
		piece, _ := wire.MetadataPiece(raw, i)
		msg := wire.AppendMetadataMsg(nil, 1, wire.MetadataMsg{Type: wire.MetadataData, Piece: i, TotalSize: len(raw), Data: piece})
		if m, err := wire.ParseMetadataMsg(msg[6:]); err != nil || !bytes.Equal(m.Data, piece) {
			t.Errorf("piece %d: ParseMetadataMsg(AppendMetadataMsg()) = %+v, %v", i, m.Piece, err)
		}
	}
}

// TestMaxMetadataMsg: the largest data message fits in what the Decoder returns.
func TestMaxMetadataMsg(t *testing.T) {
	msg := wire.AppendMetadataMsg(nil, 255, wire.MetadataMsg{
		Type: wire.MetadataData, Piece: 1918, TotalSize: wire.MaxMetadataSize, Data: make([]byte, wire.MetadataPieceSize),
	})
	if n := len(msg) - 5; n > wire.MaxExtendedLen {
		t.Errorf("largest ut_metadata message: %d bytes after the id, more than MaxExtendedLen = %d", n, wire.MaxExtendedLen)
	}
}
