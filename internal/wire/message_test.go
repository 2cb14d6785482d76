package wire_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// testPieces is the piece count of the torrent in these tests: its bitfield is 5
// bytes, of which the low 3 bits of the last are spare.
const testPieces = 37

// roundTrips are valid messages as they appear on the wire. For a piece message the
// last m.Length bytes are the block; for an unknown id they are the skipped payload.
var roundTrips = []struct {
	name string
	wire string
	msg  wire.Message
}{
	{
		name: "keep-alive",
		wire: "\x00\x00\x00\x00", // length 0
		msg:  wire.Message{KeepAlive: true},
	},
	{
		name: "choke",
		wire: "\x00\x00\x00\x01" + // length 1
			"\x00", // id choke
		msg: wire.Message{ID: wire.Choke},
	},
	{
		name: "unchoke",
		wire: "\x00\x00\x00\x01" + // length 1
			"\x01", // id unchoke
		msg: wire.Message{ID: wire.Unchoke},
	},
	{
		name: "interested",
		wire: "\x00\x00\x00\x01" + // length 1
			"\x02", // id interested
		msg: wire.Message{ID: wire.Interested},
	},
	{
		name: "not interested",
		wire: "\x00\x00\x00\x01" + // length 1
			"\x03", // id not interested
		msg: wire.Message{ID: wire.NotInterested},
	},
	{
		name: "have first piece",
		wire: "\x00\x00\x00\x05" + // length 5
			"\x04" + // id have
			"\x00\x00\x00\x00", // index 0
		msg: wire.Message{ID: wire.Have, Index: 0},
	},
	{
		name: "have last piece",
		wire: "\x00\x00\x00\x05" + // length 5
			"\x04" + // id have
			"\x00\x00\x00\x24", // index 36
		msg: wire.Message{ID: wire.Have, Index: 36},
	},
	{
		name: "bitfield",
		wire: "\x00\x00\x00\x06" + // length 1+5
			"\x05" + // id bitfield
			"\x80" + // piece 0
			"\x00\x00\x01" + // piece 31
			"\xf8", // pieces 32-36; the 3 spare bits are zero
		msg: wire.Message{ID: wire.BitfieldID, Bitfield: wire.Bitfield{0x80, 0, 0, 0x01, 0xf8}},
	},
	{
		name: "bitfield empty",
		wire: "\x00\x00\x00\x06" + // length 1+5
			"\x05" + // id bitfield
			"\x00\x00\x00\x00\x00", // no pieces
		msg: wire.Message{ID: wire.BitfieldID, Bitfield: wire.Bitfield{0, 0, 0, 0, 0}},
	},
	{
		name: "request",
		wire: "\x00\x00\x00\x0d" + // length 13
			"\x06" + // id request
			"\x00\x00\x00\x07" + // index 7
			"\x00\x01\x00\x00" + // begin 65536
			"\x00\x00\x40\x00", // length 16384
		msg: wire.Message{ID: wire.Request, Index: 7, Begin: 65536, Length: wire.BlockSize},
	},
	{
		name: "request of MaxBlockLen",
		wire: "\x00\x00\x00\x0d" + // length 13
			"\x06" + // id request
			"\x00\x00\x00\x24" + // index 36
			"\xff\xff\xff\xff" + // begin 2^32-1: the codec does not know piece lengths
			"\x00\x02\x00\x00", // length 131072
		msg: wire.Message{ID: wire.Request, Index: 36, Begin: 0xffffffff, Length: wire.MaxBlockLen},
	},
	{
		name: "piece",
		wire: "\x00\x00\x00\x0e" + // length 9+5
			"\x07" + // id piece
			"\x00\x00\x00\x03" + // index 3
			"\x00\x00\x40\x00" + // begin 16384
			"hello", // block
		msg: wire.Message{ID: wire.Piece, Index: 3, Begin: 16384, Length: 5},
	},
	{
		name: "piece with empty block",
		wire: "\x00\x00\x00\x09" + // length 9
			"\x07" + // id piece
			"\x00\x00\x00\x03" + // index 3
			"\x00\x00\x00\x00", // begin 0, no block
		msg: wire.Message{ID: wire.Piece, Index: 3},
	},
	{
		name: "piece of MaxBlockLen",
		wire: "\x00\x02\x00\x09" + // length 9+131072
			"\x07" + // id piece
			"\x00\x00\x00\x24" + // index 36
			"\x00\x00\x00\x00" + // begin 0
			strings.Repeat("\xa5", wire.MaxBlockLen), // block
		msg: wire.Message{ID: wire.Piece, Index: 36, Length: wire.MaxBlockLen},
	},
	{
		name: "cancel",
		wire: "\x00\x00\x00\x0d" + // length 13
			"\x08" + // id cancel
			"\x00\x00\x00\x07" + // index 7
			"\x00\x01\x00\x00" + // begin 65536
			"\x00\x00\x40\x00", // length 16384
		msg: wire.Message{ID: wire.Cancel, Index: 7, Begin: 65536, Length: wire.BlockSize},
	},
	{
		name: "port",
		wire: "\x00\x00\x00\x03" + // length 3
			"\x09" + // id port
			"\x1a\xe1", // port 6881
		msg: wire.Message{ID: wire.Port, Port: 6881},
	},
	{
		name: "BEP 6 suggest piece",
		wire: "\x00\x00\x00\x05" + // length 5
			"\x0d" + // id 13 suggest
			"\x00\x00\x00\x24", // index 36
		msg: wire.Message{ID: wire.Suggest, Index: 36},
	},
	{
		name: "BEP 6 have all",
		wire: "\x00\x00\x00\x01" + // length 1
			"\x0e", // id 14 have all, no payload
		msg: wire.Message{ID: wire.HaveAll},
	},
	{
		name: "BEP 6 have none",
		wire: "\x00\x00\x00\x01" + // length 1
			"\x0f", // id 15 have none, no payload
		msg: wire.Message{ID: wire.HaveNone},
	},
	{
		name: "BEP 6 reject request",
		wire: "\x00\x00\x00\x0d" + // length 13
			"\x10" + // id 16 reject
			"\x00\x00\x00\x07" + // index 7
			"\x00\x01\x00\x00" + // begin 65536
			"\x00\x00\x40\x00", // length 16384
		msg: wire.Message{ID: wire.Reject, Index: 7, Begin: 65536, Length: wire.BlockSize},
	},
	{
		name: "BEP 6 allowed fast",
		wire: "\x00\x00\x00\x05" + // length 5
			"\x11" + // id 17 allowed fast
			"\x00\x00\x00\x02", // index 2
		msg: wire.Message{ID: wire.AllowedFast, Index: 2},
	},
	{
		name: "BEP 52 hash request, skipped",
		wire: "\x00\x00\x00\x05" + // length 5
			"\x15" + // id 21 hash request
			"\x00\x00\x00\x02", // 4 bytes of payload, not read
		msg: wire.Message{ID: 21, Length: 4},
	},
	{
		name: "BEP 10 extended handshake",
		wire: "\x00\x00\x00\x14" + // length 1+1+18
			"\x14" + // id 20 extended
			"\x00" + // extended id 0: handshake
			"d1:md6:ut_pexi1eee", // bencoded dictionary
		msg: wire.Message{ID: wire.Extended, Extended: []byte("\x00d1:md6:ut_pexi1eee")},
	},
	{
		name: "BEP 10 extended message over MaxExtendedLen, skipped",
		wire: "\x00\x01\x00\x02" + // length 1+65537
			"\x14" + // id 20 extended
			"\x01" + strings.Repeat("x", wire.MaxExtendedLen),
		msg: wire.Message{ID: wire.Extended, Length: wire.MaxExtendedLen + 1},
	},
	{
		name: "id 255 with MaxUnknownLen payload, skipped",
		wire: "\x00\x10\x00\x01" + // length 1+1048576
			"\xff" + // id 255
			strings.Repeat("\x00", wire.MaxUnknownLen),
		msg: wire.Message{ID: 255, Length: wire.MaxUnknownLen},
	},
}

// tailLen is how many bytes of a message's wire form AppendMessage leaves to the
// caller: a piece's block, or the payload of an unknown id.
func tailLen(m wire.Message) int {
	if m.KeepAlive || fixedSize(m.ID) {
		return 0
	}
	return int(m.Length)
}

// fixedSize reports whether messages of type id have a payload of fixed size, which the
// Decoder reads whole and AppendMessage writes whole: those of BEP 3, BEP 5 and BEP 6.
func fixedSize(id wire.ID) bool {
	return id <= wire.Port && id != wire.Piece || id >= wire.Suggest && id <= wire.AllowedFast
}

func TestAppendMessage(t *testing.T) {
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.AppendMessage([]byte("prefix"), tt.msg)
			want := "prefix" + tt.wire[:len(tt.wire)-tailLen(tt.msg)]
			if string(got) != want {
				t.Errorf("AppendMessage(%+v) = %q, want %q", tt.msg, got, want)
			}
		})
	}
}

func TestDecoderNext(t *testing.T) {
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			d := wire.NewDecoder(strings.NewReader(tt.wire), testPieces)
			m, err := d.Next()
			if err != nil {
				t.Fatalf("Next() error = %v", err)
			}
			if !reflect.DeepEqual(m, tt.msg) {
				t.Fatalf("Next() = %+v, want %+v", m, tt.msg)
			}
			if m.ID == wire.Piece {
				block := make([]byte, m.Length)
				if err := d.ReadBlock(block); err != nil {
					t.Fatalf("ReadBlock() error = %v", err)
				}
				if want := tt.wire[len(tt.wire)-int(m.Length):]; string(block) != want {
					t.Fatalf("ReadBlock() = %.20q, want %.20q", block, want)
				}
			}
			if m, err := d.Next(); err != io.EOF {
				t.Fatalf("Next() after the message = %+v, %v, want io.EOF", m, err)
			}
		})
	}
}

// TestAppendHelpers checks that the helpers for single message kinds agree with
// AppendMessage.
func TestAppendHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want wire.Message
	}{
		{"AppendKeepAlive", wire.AppendKeepAlive(nil), wire.Message{KeepAlive: true}},
		{"AppendState choke", wire.AppendState(nil, wire.Choke), wire.Message{ID: wire.Choke}},
		{"AppendState unchoke", wire.AppendState(nil, wire.Unchoke), wire.Message{ID: wire.Unchoke}},
		{"AppendState interested", wire.AppendState(nil, wire.Interested), wire.Message{ID: wire.Interested}},
		{"AppendState not interested", wire.AppendState(nil, wire.NotInterested), wire.Message{ID: wire.NotInterested}},
		{"AppendHave", wire.AppendHave(nil, 0xdeadbeef), wire.Message{ID: wire.Have, Index: 0xdeadbeef}},
		{"AppendRequest", wire.AppendRequest(nil, 1, 2, 3), wire.Message{ID: wire.Request, Index: 1, Begin: 2, Length: 3}},
		{"AppendCancel", wire.AppendCancel(nil, 1, 2, 3), wire.Message{ID: wire.Cancel, Index: 1, Begin: 2, Length: 3}},
		{"AppendReject", wire.AppendReject(nil, 1, 2, 3), wire.Message{ID: wire.Reject, Index: 1, Begin: 2, Length: 3}},
		{"AppendSuggest", wire.AppendSuggest(nil, 0xdeadbeef), wire.Message{ID: wire.Suggest, Index: 0xdeadbeef}},
		{"AppendAllowedFast", wire.AppendAllowedFast(nil, 7), wire.Message{ID: wire.AllowedFast, Index: 7}},
		{"AppendState have all", wire.AppendState(nil, wire.HaveAll), wire.Message{ID: wire.HaveAll}},
		{"AppendState have none", wire.AppendState(nil, wire.HaveNone), wire.Message{ID: wire.HaveNone}},
		{"AppendPieceHeader", wire.AppendPieceHeader(nil, 1, 2, wire.BlockSize), wire.Message{ID: wire.Piece, Index: 1, Begin: 2, Length: wire.BlockSize}},
		{"KeepAlive wins over ID", wire.AppendMessage(nil, wire.Message{KeepAlive: true, ID: wire.Have}), wire.Message{KeepAlive: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := wire.AppendMessage(nil, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("%s = %q, want %q", tt.name, tt.got, want)
			}
		})
	}
}

func TestAppendPieceHeaderWire(t *testing.T) {
	got := wire.AppendPieceHeader(nil, 0x01020304, 0x4000, wire.BlockSize)
	want := "\x00\x00\x40\x09" + // length 9+16384
		"\x07" + // id piece
		"\x01\x02\x03\x04" + // index
		"\x00\x00\x40\x00" // begin 16384
	if string(got) != want {
		t.Errorf("AppendPieceHeader() = %q, want %q", got, want)
	}
}

func TestDecoderRejects(t *testing.T) {
	tests := []struct {
		name string
		wire string
		err  error
		text string // the whole error text, when it is checked
	}{
		{
			name: "choke with payload",
			wire: "\x00\x00\x00\x02" + // length 2
				"\x00" + // id choke
				"\x00",
			err:  wire.ErrBadLength,
			text: "wire: choke message: length prefix 2, want 1",
		},
		{
			name: "not interested of 2^32-1 bytes",
			wire: "\xff\xff\xff\xff" + // length 2^32-1
				"\x03", // id not interested
			err: wire.ErrBadLength,
		},
		{
			name: "have too short",
			wire: "\x00\x00\x00\x04" + // length 4
				"\x04" + // id have
				"\x00\x00\x00",
			err: wire.ErrBadLength,
		},
		{
			name: "have too long",
			wire: "\x00\x00\x00\x06" + // length 6
				"\x04" + // id have
				"\x00\x00\x00\x01\x00",
			err: wire.ErrBadLength,
		},
		{
			name: "have of the piece count",
			wire: "\x00\x00\x00\x05" + // length 5
				"\x04" + // id have
				"\x00\x00\x00\x25", // index 37, one past the last
			err:  wire.ErrBadIndex,
			text: "wire: have message: piece index 37, want < 37",
		},
		{
			name: "have of 2^32-1",
			wire: "\x00\x00\x00\x05" + // length 5
				"\x04" + // id have
				"\xff\xff\xff\xff", // index 2^32-1
			err: wire.ErrBadIndex,
		},
		{
			name: "bitfield a byte too long",
			wire: "\x00\x00\x00\x07" + // length 1+6
				"\x05" + // id bitfield
				"\x00\x00\x00\x00\x00\x00",
			err:  wire.ErrMessageTooLong,
			text: "wire: bitfield message: length prefix 7 exceeds 6",
		},
		{
			name: "bitfield of 2^32-1 bytes",
			wire: "\xff\xff\xff\xff" + // length 2^32-1
				"\x05", // id bitfield
			err: wire.ErrMessageTooLong,
		},
		{
			name: "bitfield a byte too short",
			wire: "\x00\x00\x00\x05" + // length 1+4
				"\x05" + // id bitfield
				"\x00\x00\x00\x00",
			err: wire.ErrBadBitfield,
		},
		{
			name: "bitfield without payload",
			wire: "\x00\x00\x00\x01" + // length 1
				"\x05", // id bitfield
			err: wire.ErrBadBitfield,
		},
		{
			name: "bitfield with a spare bit set",
			wire: "\x00\x00\x00\x06" + // length 1+5
				"\x05" + // id bitfield
				"\xff\xff\xff\xff" + // pieces 0-31
				"\xf9", // pieces 32-36, and spare bit 39
			err: wire.ErrBadBitfield,
		},
		{
			name: "request too short",
			wire: "\x00\x00\x00\x0c" + // length 12
				"\x06" + // id request
				"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x40",
			err: wire.ErrBadLength,
		},
		{
			name: "request too long",
			wire: "\x00\x00\x00\x0e" + // length 14
				"\x06" + // id request
				"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00",
			err: wire.ErrBadLength,
		},
		{
			name: "request of the piece count",
			wire: "\x00\x00\x00\x0d" + // length 13
				"\x06" + // id request
				"\x00\x00\x00\x25" + // index 37
				"\x00\x00\x00\x00" + // begin 0
				"\x00\x00\x40\x00", // length 16384
			err: wire.ErrBadIndex,
		},
		{
			name: "request of MaxBlockLen+1",
			wire: "\x00\x00\x00\x0d" + // length 13
				"\x06" + // id request
				"\x00\x00\x00\x00" + // index 0
				"\x00\x00\x00\x00" + // begin 0
				"\x00\x02\x00\x01", // length 131073
			err:  wire.ErrMessageTooLong,
			text: "wire: request message: block length 131073 exceeds 131072",
		},
		{
			name: "cancel too short",
			wire: "\x00\x00\x00\x05" + // length 5
				"\x08" + // id cancel
				"\x00\x00\x00\x00",
			err: wire.ErrBadLength,
		},
		{
			name: "cancel of the piece count",
			wire: "\x00\x00\x00\x0d" + // length 13
				"\x08" + // id cancel
				"\x00\x00\x00\x25" + // index 37
				"\x00\x00\x00\x00" + // begin 0
				"\x00\x00\x40\x00", // length 16384
			err: wire.ErrBadIndex,
		},
		{
			name: "cancel of MaxBlockLen+1",
			wire: "\x00\x00\x00\x0d" + // length 13
				"\x08" + // id cancel
				"\x00\x00\x00\x00" + // index 0
				"\x00\x00\x00\x00" + // begin 0
				"\x00\x02\x00\x01", // length 131073
			err: wire.ErrMessageTooLong,
		},
		{
			name: "piece without header",
			wire: "\x00\x00\x00\x01" + // length 1
				"\x07", // id piece
			err: wire.ErrBadLength,
		},
		{
			name: "piece with half a header",
			wire: "\x00\x00\x00\x08" + // length 8
				"\x07" + // id piece
				"\x00\x00\x00\x00\x00\x00\x00",
			err:  wire.ErrBadLength,
			text: "wire: piece message: length prefix 8, want at least 9",
		},
		{
			name: "piece of MaxBlockLen+1",
			wire: "\x00\x02\x00\x0a" + // length 9+131073
				"\x07", // id piece; nothing more is read
			err: wire.ErrMessageTooLong,
		},
		{
			name: "piece of 1 MiB",
			wire: "\x00\x10\x00\x09" + // length 9+1048576
				"\x07", // id piece; nothing more is read
			err:  wire.ErrMessageTooLong,
			text: "wire: piece message: length prefix 1048585 exceeds 131081",
		},
		{
			name: "piece of 2^32-1 bytes",
			wire: "\xff\xff\xff\xff" + // length 2^32-1
				"\x07", // id piece
			err: wire.ErrMessageTooLong,
		},
		{
			name: "piece of the piece count",
			wire: "\x00\x00\x00\x0a" + // length 9+1
				"\x07" + // id piece
				"\x00\x00\x00\x25" + // index 37
				"\x00\x00\x00\x00" + // begin 0
				"x", // block
			err: wire.ErrBadIndex,
		},
		{
			name: "port too short",
			wire: "\x00\x00\x00\x02" + // length 2
				"\x09" + // id port
				"\x1a",
			err: wire.ErrBadLength,
		},
		{
			name: "port too long",
			wire: "\x00\x00\x00\x05" + // length 5
				"\x09" + // id port
				"\x00\x00\x1a\xe1", // a 4-byte port, as some old clients sent
			err: wire.ErrBadLength,
		},
		{
			name: "have all with payload",
			wire: "\x00\x00\x00\x02" + // length 2
				"\x0e" + // id 14 have all
				"\x00",
			err:  wire.ErrBadLength,
			text: "wire: have all message: length prefix 2, want 1",
		},
		{
			name: "have none of 2^32-1 bytes",
			wire: "\xff\xff\xff\xff" + // length 2^32-1
				"\x0f", // id 15 have none
			err: wire.ErrBadLength,
		},
		{
			name: "suggest too short",
			wire: "\x00\x00\x00\x04" + // length 4
				"\x0d" + // id 13 suggest
				"\x00\x00\x00",
			err: wire.ErrBadLength,
		},
		{
			name: "suggest of the piece count",
			wire: "\x00\x00\x00\x05" + // length 5
				"\x0d" + // id 13 suggest
				"\x00\x00\x00\x25", // index 37
			err:  wire.ErrBadIndex,
			text: "wire: suggest message: piece index 37, want < 37",
		},
		{
			name: "allowed fast too long",
			wire: "\x00\x00\x00\x09" + // length 9
				"\x11" + // id 17 allowed fast
				"\x00\x00\x00\x01\x00\x00\x00\x02", // two indexes in one message
			err: wire.ErrBadLength,
		},
		{
			name: "allowed fast of 2^32-1",
			wire: "\x00\x00\x00\x05" + // length 5
				"\x11" + // id 17 allowed fast
				"\xff\xff\xff\xff", // index 2^32-1
			err: wire.ErrBadIndex,
		},
		{
			name: "reject too short",
			wire: "\x00\x00\x00\x09" + // length 9
				"\x10" + // id 16 reject
				"\x00\x00\x00\x00\x00\x00\x00\x00",
			err: wire.ErrBadLength,
		},
		{
			name: "reject of the piece count",
			wire: "\x00\x00\x00\x0d" + // length 13
				"\x10" + // id 16 reject
				"\x00\x00\x00\x25" + // index 37
				"\x00\x00\x00\x00" + // begin 0
				"\x00\x00\x40\x00", // length 16384
			err: wire.ErrBadIndex,
		},
		{
			name: "reject of MaxBlockLen+1",
			wire: "\x00\x00\x00\x0d" + // length 13
				"\x10" + // id 16 reject
				"\x00\x00\x00\x00" + // index 0
				"\x00\x00\x00\x00" + // begin 0
				"\x00\x02\x00\x01", // length 131073
			err:  wire.ErrMessageTooLong,
			text: "wire: reject message: block length 131073 exceeds 131072",
		},
		{
			name: "extended of MaxUnknownLen+1",
			wire: "\x00\x10\x00\x02" + // length 1+1048577
				"\x14", // id 20 extended; nothing more is read
			err:  wire.ErrMessageTooLong,
			text: "wire: extended message: length prefix 1048578 exceeds 1048577",
		},
		{
			name: "id 200 of 2^32-1 bytes",
			wire: "\xff\xff\xff\xff" + // length 2^32-1
				"\xc8", // id 200
			err:  wire.ErrMessageTooLong,
			text: "wire: id 200 message: length prefix 4294967295 exceeds 1048577",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := wire.NewDecoder(strings.NewReader(tt.wire), testPieces)
			m, err := d.Next()
			if !errors.Is(err, tt.err) {
				t.Fatalf("Next() = %+v, %v, want %v", m, err, tt.err)
			}
			if tt.text != "" && err.Error() != tt.text {
				t.Errorf("Next() error = %q, want %q", err, tt.text)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("Next() error = %q, want it to start with %q", err, "wire: ")
			}
		})
	}
}

// TestDecoderNoPieces covers a torrent whose piece count is 0: every index is out of
// range and the only bitfield is the empty one.
func TestDecoderNoPieces(t *testing.T) {
	d := wire.NewDecoder(strings.NewReader(
		"\x00\x00\x00\x01"+"\x05"+ // bitfield of 0 pieces
			"\x00\x00\x00\x05"+"\x04"+"\x00\x00\x00\x00", // have 0
	), 0)
	m, err := d.Next()
	if err != nil || m.ID != wire.BitfieldID || len(m.Bitfield) != 0 {
		t.Fatalf("Next() = %+v, %v, want an empty bitfield", m, err)
	}
	if m, err := d.Next(); !errors.Is(err, wire.ErrBadIndex) {
		t.Fatalf("Next() = %+v, %v, want %v", m, err, wire.ErrBadIndex)
	}
}

func TestIDString(t *testing.T) {
	tests := []struct {
		id   wire.ID
		want string
	}{
		{wire.Choke, "choke"},
		{wire.Unchoke, "unchoke"},
		{wire.Interested, "interested"},
		{wire.NotInterested, "not interested"},
		{wire.Have, "have"},
		{wire.BitfieldID, "bitfield"},
		{wire.Request, "request"},
		{wire.Piece, "piece"},
		{wire.Cancel, "cancel"},
		{wire.Port, "port"},
		{10, "id 10"},
		{wire.Suggest, "suggest"},
		{wire.HaveAll, "have all"},
		{wire.HaveNone, "have none"},
		{wire.Reject, "reject"},
		{wire.AllowedFast, "allowed fast"},
		{21, "hash request"},
		{20, "extended"},
		{255, "id 255"},
	}
	for _, tt := range tests {
		if got := tt.id.String(); got != tt.want {
			t.Errorf("ID(%d).String() = %q, want %q", uint8(tt.id), got, tt.want)
		}
	}
}

// stream concatenates the wire forms of roundTrips no longer than maxLen, and returns
// the messages in it with the offset at which each ends.
func stream(maxLen int) (data []byte, msgs []wire.Message, ends []int) {
	for _, tt := range roundTrips {
		if len(tt.wire) > maxLen {
			continue
		}
		data = append(data, tt.wire...)
		msgs = append(msgs, tt.msg)
		ends = append(ends, len(data))
	}
	return data, msgs, ends
}
