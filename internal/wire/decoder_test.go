package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// readers wrap a stream in the hostile readers of testing/iotest, and in bufio
// readers, whose Discard the Decoder uses to skip bytes.
var readers = []struct {
	name       string
	wrap       func(io.Reader) io.Reader
	readsAhead bool // of what its caller asks for
}{
	{"plain", func(r io.Reader) io.Reader { return r }, false},
	{"OneByteReader", iotest.OneByteReader, false},
	{"HalfReader", iotest.HalfReader, false},
	{"DataErrReader", iotest.DataErrReader, true},
	{"DataErrReader(OneByteReader)", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }, true},
	{"bufio.Reader", func(r io.Reader) io.Reader { return bufio.NewReader(r) }, true},
	{"bufio.Reader of 16 bytes over OneByteReader", func(r io.Reader) io.Reader {
		return bufio.NewReaderSize(iotest.OneByteReader(r), 16)
	}, true},
}

// TestDecoderReaders decodes every kind of message in one stream through each reader,
// reading some piece blocks, discarding some and leaving the rest to Next.
func TestDecoderReaders(t *testing.T) {
	data, msgs, _ := stream(1 << 30)
	for _, rd := range readers {
		for _, piece := range []string{"ReadBlock", "Discard", "Next"} {
			t.Run(rd.name+"/"+piece, func(t *testing.T) {
				d := wire.NewDecoder(rd.wrap(bytes.NewReader(data)), testPieces)
				for i, want := range msgs {
					m, err := d.Next()
					if err != nil {
						t.Fatalf("message %d: Next() error = %v, want %+v", i, err, want)
					}
					if !reflect.DeepEqual(m, want) {
						t.Fatalf("message %d: Next() = %+v, want %+v", i, m, want)
					}
					if m.ID != wire.Piece {
						continue
					}
					switch piece {
					case "ReadBlock":
						block := make([]byte, m.Length)
						if err := d.ReadBlock(block); err != nil {
							t.Fatalf("message %d: ReadBlock() error = %v", i, err)
						}
					case "Discard":
						if err := d.Discard(); err != nil {
							t.Fatalf("message %d: Discard() error = %v", i, err)
						}
					}
				}
				if m, err := d.Next(); err != io.EOF {
					t.Fatalf("Next() at the end = %+v, %v, want io.EOF", m, err)
				}
			})
		}
	}
}

// TestDecoderTruncated cuts a stream at every byte: the Decoder must report io.EOF
// when the cut falls between two messages and io.ErrUnexpectedEOF anywhere else.
func TestDecoderTruncated(t *testing.T) {
	data, _, ends := stream(100)
	boundary := map[int]bool{0: true}
	for _, e := range ends {
		boundary[e] = true
	}
	for _, rd := range readers {
		for _, readBlocks := range []bool{true, false} {
			for cut := 0; cut <= len(data); cut++ {
				d := wire.NewDecoder(rd.wrap(bytes.NewReader(data[:cut])), testPieces)
				var err error
				for err == nil {
					var m wire.Message
					m, err = d.Next()
					if err == nil && m.ID == wire.Piece && readBlocks {
						err = d.ReadBlock(make([]byte, m.Length))
					}
				}
				want := io.ErrUnexpectedEOF
				if boundary[cut] {
					want = io.EOF
				}
				if !errors.Is(err, want) || want == io.EOF && err != io.EOF {
					t.Errorf("%s, ReadBlock %v: stream cut at %d of %d: error = %v, want %v",
						rd.name, readBlocks, cut, len(data), err, want)
				}
			}
		}
	}
}

// TestDecoderAutoDiscard checks that Next skips a block the caller left unread, and
// ReadBlock's and Discard's bookkeeping around it.
func TestDecoderAutoDiscard(t *testing.T) {
	const data = "\x00\x00\x00\x0e" + // length 9+5
		"\x07" + // id piece
		"\x00\x00\x00\x01" + // index 1
		"\x00\x00\x00\x00" + // begin 0
		"hello" + // block, never read
		"\x00\x00\x00\x05" + // length 5
		"\x04" + // id have
		"\x00\x00\x00\x02" + // index 2
		"\x00\x00\x00\x0e" + // length 9+5
		"\x07" + // id piece
		"\x00\x00\x00\x01" + // index 1
		"\x00\x00\x00\x05" + // begin 5
		"world" // block, read after a failed ReadBlock

	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			d := wire.NewDecoder(rd.wrap(strings.NewReader(data)), testPieces)
			if m, err := d.Next(); err != nil || m.ID != wire.Piece || m.Length != 5 {
				t.Fatalf("Next() = %+v, %v, want a piece of 5 bytes", m, err)
			}
			if m, err := d.Next(); err != nil || m.ID != wire.Have || m.Index != 2 {
				t.Fatalf("Next() after an unread block = %+v, %v, want have 2", m, err)
			}
			if err := d.ReadBlock(make([]byte, 1)); err == nil {
				t.Fatalf("ReadBlock(1 byte) with no block pending: error = nil")
			}
			if err := d.ReadBlock(nil); err != nil {
				t.Fatalf("ReadBlock(nil) with no block pending: error = %v", err)
			}
			if err := d.Discard(); err != nil {
				t.Fatalf("Discard() with no block pending: error = %v", err)
			}
			if m, err := d.Next(); err != nil || m.ID != wire.Piece || m.Begin != 5 {
				t.Fatalf("Next() = %+v, %v, want a piece at 5", m, err)
			}
			for _, n := range []int{4, 6} {
				if err := d.ReadBlock(make([]byte, n)); err == nil {
					t.Fatalf("ReadBlock(%d bytes) of a 5-byte block: error = nil", n)
				}
			}
			block := make([]byte, 5)
			if err := d.ReadBlock(block); err != nil || string(block) != "world" {
				t.Fatalf("ReadBlock() = %q, %v, want %q", block, err, "world")
			}
			if err := d.Discard(); err != nil {
				t.Fatalf("Discard() after ReadBlock: error = %v", err)
			}
			if m, err := d.Next(); err != io.EOF {
				t.Fatalf("Next() at the end = %+v, %v, want io.EOF", m, err)
			}
		})
	}
}

// TestDecoderBadIndexKeepsSync: a piece for an unknown index is an error, but the
// Decoder still knows where the next message starts.
func TestDecoderBadIndexKeepsSync(t *testing.T) {
	d := wire.NewDecoder(strings.NewReader(
		"\x00\x00\x00\x0a"+"\x07"+"\x00\x00\x00\x25"+"\x00\x00\x00\x00"+"x"+ // piece of index 37
			"\x00\x00\x00\x01"+"\x01", // unchoke
	), testPieces)
	if _, err := d.Next(); !errors.Is(err, wire.ErrBadIndex) {
		t.Fatalf("Next() error = %v, want %v", err, wire.ErrBadIndex)
	}
	if m, err := d.Next(); err != nil || m.ID != wire.Unchoke {
		t.Fatalf("Next() = %+v, %v, want unchoke", m, err)
	}
}

// TestDecoderReadErrors checks that errors of the underlying reader come out of
// Next, ReadBlock and Discard wrapped, never as io.EOF.
func TestDecoderReadErrors(t *testing.T) {
	errBoom := errors.New("boom")
	piece := "\x00\x00\x00\x0e" + "\x07" + "\x00\x00\x00\x01" + "\x00\x00\x00\x00" + "hello"

	if _, err := wire.NewDecoder(iotest.ErrReader(errBoom), testPieces).Next(); !errors.Is(err, errBoom) {
		t.Errorf("Next() on a failing reader: error = %v, want %v", err, errBoom)
	}
	// TimeoutReader fails its second read: here the message id.
	d := wire.NewDecoder(iotest.TimeoutReader(strings.NewReader(piece)), testPieces)
	if _, err := d.Next(); !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("Next() = %v, want %v", err, iotest.ErrTimeout)
	}

	// Fail in the block, read directly or skipped.
	for _, op := range []string{"ReadBlock", "Discard", "Next"} {
		r := io.MultiReader(strings.NewReader(piece[:16]), iotest.ErrReader(errBoom))
		d := wire.NewDecoder(r, testPieces)
		if _, err := d.Next(); err != nil {
			t.Fatalf("Next() error = %v", err)
		}
		var err error
		switch op {
		case "ReadBlock":
			err = d.ReadBlock(make([]byte, 5))
		case "Discard":
			err = d.Discard()
		case "Next":
			_, err = d.Next()
		}
		if !errors.Is(err, errBoom) {
			t.Errorf("%s() in a failing block: error = %v, want %v", op, err, errBoom)
		}
	}
}

// TestDecoderAllocs: decoding allocates nothing but bitfields, whether it skips bytes
// with bufio.Reader.Discard or through io.Discard.
func TestDecoderAllocs(t *testing.T) {
	var data []byte
	for _, tt := range roundTrips {
		if tt.msg.ID != wire.BitfieldID || tt.msg.KeepAlive {
			data = append(data, tt.wire...)
		}
	}
	block := make([]byte, wire.MaxBlockLen)
	for _, rd := range []string{"bytes.Reader", "bufio.Reader"} {
		t.Run(rd, func(t *testing.T) {
			if rd == "bytes.Reader" && raceEnabled {
				// Skipping bytes without bufio.Reader.Discard goes through io.Discard,
				// whose buffer pool the race detector empties at random.
				t.Skip("allocations through sync.Pool are not deterministic under -race")
			}
			br := bytes.NewReader(data)
			var r io.Reader = br
			bufr := bufio.NewReader(br)
			if rd == "bufio.Reader" {
				r = bufr
			}
			d := wire.NewDecoder(r, testPieces)
			allocs := testing.AllocsPerRun(20, func() {
				br.Reset(data)
				bufr.Reset(br)
				for i := 0; ; i++ {
					m, err := d.Next()
					if err == io.EOF {
						return
					}
					if err != nil {
						t.Fatalf("Next() error = %v", err)
					}
					if m.ID == wire.Piece && i%2 == 0 {
						if err := d.ReadBlock(block[:m.Length]); err != nil {
							t.Fatalf("ReadBlock() error = %v", err)
						}
					}
				}
			})
			if allocs != 0 {
				t.Errorf("decoding %d bytes: %v allocations, want 0", len(data), allocs)
			}
		})
	}
}

// TestDecoderHugeLengthPrefix: a length prefix of 2^32-1 is rejected from the bound,
// before any payload is read, and costs only the error value: nothing the size of what
// the peer claims.
func TestDecoderHugeLengthPrefix(t *testing.T) {
	for _, id := range []wire.ID{wire.BitfieldID, wire.Piece, 20, 255} {
		t.Run(id.String(), func(t *testing.T) {
			data := []byte("\xff\xff\xff\xff" + string(byte(id)) + "payload that is never read")
			r := bytes.NewReader(data)
			d := wire.NewDecoder(r, testPieces)
			var err error
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			allocs := testing.AllocsPerRun(100, func() {
				r.Reset(data)
				_, err = d.Next()
			})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, wire.ErrMessageTooLong) {
				t.Fatalf("Next() error = %v, want %v", err, wire.ErrMessageTooLong)
			}
			if read := len(data) - r.Len(); read != 5 {
				t.Errorf("Next() read %d bytes, want 5 (length prefix and id)", read)
			}
			// The error value (a string and its wrapper) is all that may be allocated.
			if allocs > 8 {
				t.Errorf("Next() = %v allocations, want at most 8 (the error)", allocs)
			}
			if perRun := (after.TotalAlloc - before.TotalAlloc) / 101; perRun > 1024 {
				t.Errorf("Next() allocated %d bytes per call, want at most 1024", perRun)
			}
		})
	}
}

func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	hs := wire.Handshake{}
	bf := wire.NewBitfield(testPieces)
	allocs := testing.AllocsPerRun(100, func() {
		b := buf[:0]
		b = wire.AppendKeepAlive(b)
		b = wire.AppendState(b, wire.Interested)
		b = wire.AppendHave(b, 1)
		b = wire.AppendRequest(b, 1, 2, 3)
		b = wire.AppendCancel(b, 1, 2, 3)
		b = wire.AppendPieceHeader(b, 1, 2, 3)
		b = wire.AppendMessage(b, wire.Message{ID: wire.BitfieldID, Bitfield: bf})
		b = wire.AppendMessage(b, wire.Message{ID: wire.Port, Port: 6881})
		b = hs.Append(b)
		buf = b
	})
	if allocs != 0 {
		t.Errorf("appending into a buffer with room: %v allocations, want 0", allocs)
	}
}
