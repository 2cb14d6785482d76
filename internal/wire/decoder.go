package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// A Decoder reads peer wire messages from a stream, after the handshake.
//
// Next returns one message at a time. A piece message's block is not part of the
// Message: after Next returns one, the block's m.Length bytes are the next bytes of
// the stream, and the caller reads them with ReadBlock or skips them with Discard. A
// Next called with the block still unread skips it itself.
//
// The Decoder checks each message on its own: rules about their order (BEP 3: a
// bitfield is only ever sent as the first message; no piece without a request) are
// the caller's.
//
// Decoding allocates nothing except the Bitfield of a bitfield message, and once a buffer
// of MaxExtendedLen for extended messages. Any error
// other than io.EOF means the peer broke the protocol or the stream failed: the
// Decoder's position in the stream is then undefined and the connection should be
// dropped.
type Decoder struct {
	r         io.Reader
	disc      discarder // r, when it can skip bytes itself (*bufio.Reader)
	numPieces uint64
	maxBitLen uint64 // largest length prefix of a bitfield message: 1+ceil(numPieces/8)
	pending   uint32 // bytes of the current piece's block not yet read or skipped
	buf       [12]byte
	lr        io.LimitedReader // reused to skip bytes of readers without Discard
	ext       []byte           // the payload of the last extended message (BEP 10)
}

// discarder is implemented by *bufio.Reader.
type discarder interface {
	Discard(n int) (discarded int, err error)
}

// NewDecoder returns a Decoder reading from r, for a torrent of numPieces pieces,
// which bounds the size of a bitfield message and the piece indexes a message may
// carry. r should be a *bufio.Reader over the connection: the Decoder reads a few
// bytes at a time and adds no buffer of its own, and it skips bytes with
// bufio.Reader.Discard when r has that method.
func NewDecoder(r io.Reader, numPieces int) *Decoder {
	numPieces = max(numPieces, 0)
	d := &Decoder{
		r:         r,
		numPieces: uint64(numPieces),
		maxBitLen: 1 + uint64(bitfieldLen(numPieces)),
	}
	d.disc, _ = r.(discarder)
	return d
}

// Next reads the next message.
//
// For a piece message, Next consumes only the 8-byte index/begin header and m.Length
// says how many bytes of block follow; see ReadBlock. For a message id it does not
// know (BEP 52 hash messages, ...) with a payload of at most
// MaxUnknownLen bytes, Next skips the payload and returns a Message with only ID and
// Length (the payload length) set, so the caller can log it and carry on.
//
// Every length prefix is checked against the bound for its id before any of the
// payload is read. Errors wrap ErrMessageTooLong, ErrBadLength, ErrBadBitfield or
// ErrBadIndex for a malformed message; io.EOF is returned only when the stream ends
// cleanly between two messages, and an error wrapping io.ErrUnexpectedEOF when it
// ends within one.
func (d *Decoder) Next() (Message, error) {
	if d.pending > 0 {
		if err := d.Discard(); err != nil {
			return Message{}, err
		}
	}
	// BEP 3: an alternating stream of length prefixes and messages; all integers are
	// encoded as four bytes big-endian.
	if _, err := io.ReadFull(d.r, d.buf[:4]); err != nil {
		if err == io.EOF {
			return Message{}, io.EOF
		}
		return Message{}, fmt.Errorf("wire: length prefix: %w", err)
	}
	n := binary.BigEndian.Uint32(d.buf[:4])
	if n == 0 {
		return Message{KeepAlive: true}, nil
	}
	if err := readFull(d.r, d.buf[:1], "message id"); err != nil {
		return Message{}, err
	}
	id := ID(d.buf[0])
	m := Message{ID: id}
	switch id {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		// BEP 3: 'choke', 'unchoke', 'interested', and 'not interested' have no payload;
		// BEP 6: nor have 'have all' and 'have none'.
		if n != 1 {
			return Message{}, badLength(id, n, 1)
		}
		return m, nil

	case Have, Suggest, AllowedFast:
		// BEP 3: 'have' messages have a payload which is a single number, the index;
		// BEP 6: so have 'suggest piece' and 'allowed fast'.
		if n != 5 {
			return Message{}, badLength(id, n, 5)
		}
		if err := d.read(id, d.buf[:4]); err != nil {
			return Message{}, err
		}
		m.Index = binary.BigEndian.Uint32(d.buf[:4])
		if err := d.checkIndex(id, m.Index); err != nil {
			return Message{}, err
		}
		return m, nil

	case BitfieldID:
		if uint64(n) > d.maxBitLen {
			return Message{}, tooLong(id, n, d.maxBitLen)
		}
		if uint64(n) != d.maxBitLen {
			return Message{}, errorf(ErrBadBitfield, "wire: bitfield message: length prefix %d, want %d for %d pieces", n, d.maxBitLen, d.numPieces)
		}
		// The size is ours (checked equal to 1+ceil(numPieces/8) above), not the peer's.
		bf := make(Bitfield, n-1)
		if err := d.read(id, bf); err != nil {
			return Message{}, err
		}
		bf, err := ParseBitfield(bf, int(d.numPieces))
		if err != nil {
			return Message{}, err
		}
		m.Bitfield = bf
		return m, nil

	case Request, Cancel, Reject:
		// BEP 3: 'request' messages contain an index, begin, and length; 'cancel'
		// messages have the same payload, and so have BEP 6's 'reject request'.
		if n != 13 {
			return Message{}, badLength(id, n, 13)
		}
		if err := d.read(id, d.buf[:12]); err != nil {
			return Message{}, err
		}
		m.Index = binary.BigEndian.Uint32(d.buf[0:4])
		m.Begin = binary.BigEndian.Uint32(d.buf[4:8])
		m.Length = binary.BigEndian.Uint32(d.buf[8:12])
		if err := d.checkIndex(id, m.Index); err != nil {
			return Message{}, err
		}
		// BEP 3: implementations close connections which request an amount greater
		// than 16 kiB; we tolerate up to MaxBlockLen.
		if m.Length > MaxBlockLen {
			return Message{}, errorf(ErrMessageTooLong, "wire: %v message: block length %d exceeds %d", id, m.Length, MaxBlockLen)
		}
		return m, nil

	case Piece:
		// BEP 3: 'piece' messages contain an index, begin, and piece (the block).
		if n > 9+MaxBlockLen {
			return Message{}, tooLong(id, n, 9+MaxBlockLen)
		}
		if n < 9 {
			return Message{}, errorf(ErrBadLength, "wire: piece message: length prefix %d, want at least 9", n)
		}
		if err := d.read(id, d.buf[:8]); err != nil {
			return Message{}, err
		}
		m.Index = binary.BigEndian.Uint32(d.buf[0:4])
		m.Begin = binary.BigEndian.Uint32(d.buf[4:8])
		m.Length = n - 9
		d.pending = m.Length
		if err := d.checkIndex(id, m.Index); err != nil {
			return Message{}, err
		}
		return m, nil

	case Port:
		// BEP 5: the port message carries the 2-byte UDP port of the peer's DHT node.
		if n != 3 {
			return Message{}, badLength(id, n, 3)
		}
		if err := d.read(id, d.buf[:2]); err != nil {
			return Message{}, err
		}
		m.Port = binary.BigEndian.Uint16(d.buf[:2])
		return m, nil

	case Extended:
		if n < 2 {
			return Message{}, badLength(id, n, 2)
		}
		if n-1 > MaxExtendedLen {
			break // skipped below, as an unknown id
		}
		if cap(d.ext) < int(n-1) {
			d.ext = make([]byte, 0, MaxExtendedLen) // once per connection, at most
		}
		m.Extended = d.ext[:n-1]
		if err := d.read(id, m.Extended); err != nil {
			return Message{}, err
		}
		return m, nil
	}
	// An id we do not know, or an extended message too long to keep: skipped.
	if n-1 > MaxUnknownLen {
		return Message{}, tooLong(id, n, 1+MaxUnknownLen)
	}
	m.Length = n - 1
	if err := d.skip(id, m.Length); err != nil {
		return Message{}, err
	}
	return m, nil
}

// ReadBlock reads the block of the piece message Next just returned into dst, which
// must be exactly m.Length bytes long. The error wraps io.ErrUnexpectedEOF if the
// stream ends within the block.
func (d *Decoder) ReadBlock(dst []byte) error {
	if uint64(len(dst)) != uint64(d.pending) {
		return fmt.Errorf("wire: read block: len(dst) = %d, want %d", len(dst), d.pending)
	}
	if len(dst) == 0 {
		return nil
	}
	k, err := io.ReadFull(d.r, dst)
	d.pending -= uint32(k)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("wire: piece message: block: %w", err)
	}
	return nil
}

// Discard skips what is left unread of the block of the piece message Next just
// returned; it does nothing if there is none.
func (d *Decoder) Discard() error {
	if d.pending == 0 {
		return nil
	}
	n := d.pending
	d.pending = 0
	return d.skip(Piece, n)
}

// read fills p with payload of a message of type id.
func (d *Decoder) read(id ID, p []byte) error {
	if _, err := io.ReadFull(d.r, p); err != nil {
		return payloadErr(id, err)
	}
	return nil
}

// skip reads n bytes of payload of a message of type id and drops them, with
// bufio.Reader.Discard when it can, so that nothing is copied or allocated.
func (d *Decoder) skip(id ID, n uint32) error {
	if n == 0 {
		return nil
	}
	var k int64
	var err error
	if d.disc != nil {
		var dk int
		dk, err = d.disc.Discard(int(n))
		k = int64(dk)
	} else {
		d.lr = io.LimitedReader{R: d.r, N: int64(n)}
		k, err = io.Copy(io.Discard, &d.lr)
		d.lr.R = nil
	}
	if err == nil && k < int64(n) {
		err = io.EOF
	}
	if err != nil {
		return payloadErr(id, err)
	}
	return nil
}

func (d *Decoder) checkIndex(id ID, index uint32) error {
	if uint64(index) >= d.numPieces {
		return errorf(ErrBadIndex, "wire: %v message: piece index %d, want < %d", id, index, d.numPieces)
	}
	return nil
}

// payloadErr says where a read within a message failed: the stream ending there is
// io.ErrUnexpectedEOF, since its length prefix promised more.
func payloadErr(id ID, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wire: %v message: %w", id, err)
}

func badLength(id ID, n, want uint32) error {
	return errorf(ErrBadLength, "wire: %v message: length prefix %d, want %d", id, n, want)
}

func tooLong(id ID, n uint32, limit uint64) error {
	return errorf(ErrMessageTooLong, "wire: %v message: length prefix %d exceeds %d", id, n, limit)
}
