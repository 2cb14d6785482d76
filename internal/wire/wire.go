// Package wire encodes and decodes the BitTorrent peer wire protocol (BEP 3): the
// 68-byte handshake, the length-prefixed messages that follow it, and bitfields.
//
// A connection reads with a Decoder wrapped around a *bufio.Reader and writes with the
// Append functions into a buffer it owns, so that neither direction allocates per
// message. Piece data never passes through the package's own memory: Decoder.Next
// stops after the 8-byte header of a piece message and Decoder.ReadBlock reads the
// block straight into the caller's buffer.
//
// Every length a peer sends is checked against a bound fixed by this side (MaxBlockLen,
// MaxUnknownLen, the torrent's piece count) before anything is read or allocated on its
// account. Errors wrap sentinels (ErrMessageTooLong, ErrBadLength, ...) that a caller
// tests with errors.Is to decide to drop the peer.
//
// The package has no goroutines and never logs; a Decoder is for one goroutine.
package wire

import (
	"errors"
	"fmt"
)

// Protocol is the protocol string of the handshake.
// BEP 3: the handshake starts with character nineteen (decimal) followed by the
// string 'BitTorrent protocol'.
const Protocol = "BitTorrent protocol"

// HandshakeLen is the length of a handshake on the wire: pstrlen, pstr, 8 reserved
// bytes, info hash, peer id.
const HandshakeLen = 1 + len(Protocol) + 8 + 20 + 20

// BlockSize is the block length this client requests.
// BEP 3: all current implementations use 2^14 (16 kiB), and close connections which
// request an amount greater than that.
const BlockSize = 16 * 1024

// MaxBlockLen is the largest block length accepted in a request, cancel or piece
// message. It is larger than BlockSize so that peers which serve or ask for bigger
// blocks than BEP 3's de-facto 16 KiB are not dropped for it.
const MaxBlockLen = 128 * 1024

// MaxUnknownLen is the largest payload of a message with an unknown id (BEP 52 hash
// messages, ...) or of an extended message too long to keep, that Decoder.Next skips
// over; a longer one is ErrMessageTooLong. Skipping reads through and allocates nothing.
const MaxUnknownLen = 1 << 20

// MaxExtendedLen is the largest extended message (BEP 10) whose payload Decoder.Next
// returns; a longer one, up to MaxUnknownLen, is skipped. The largest we expect is a
// ut_metadata data message (BEP 9): a 16 KiB piece after its small dictionary.
const MaxExtendedLen = 64 << 10

// Errors that Decoder.Next, ReadHandshake, ParseBitfield and CheckInfoHash wrap. Each
// means the peer broke the protocol or is not talking it; the caller drops the peer.
var (
	// ErrNotBitTorrent means the first bytes are not "\x13BitTorrent protocol": for
	// example an MSE/PE-encrypted handshake, which starts with random bytes.
	ErrNotBitTorrent = errors.New("not a BitTorrent handshake")
	// ErrInfoHashMismatch means the handshake names another torrent than ours.
	ErrInfoHashMismatch = errors.New("info hash mismatch")
	// ErrMessageTooLong means a length prefix beyond the bound for its message id, or
	// a request or cancel for more than MaxBlockLen bytes.
	ErrMessageTooLong = errors.New("message too long")
	// ErrBadLength means a fixed-size message came with another size, or a piece
	// message shorter than its 8-byte header.
	ErrBadLength = errors.New("bad message length")
	// ErrBadBitfield means a bitfield of the wrong size for the torrent, or with spare
	// bits set.
	ErrBadBitfield = errors.New("bad bitfield")
	// ErrBadIndex means a piece index at or beyond the torrent's piece count.
	ErrBadIndex = errors.New("piece index out of range")
)

// protoError is an error whose text says where and what, and which unwraps to the
// sentinel a caller branches on: "wire: piece message: length prefix 1048585 exceeds
// 131081" is ErrMessageTooLong without repeating its text.
type protoError struct {
	msg string
	err error
}

func (e *protoError) Error() string { return e.msg }
func (e *protoError) Unwrap() error { return e.err }

func errorf(sentinel error, format string, args ...any) error {
	return &protoError{msg: fmt.Sprintf(format, args...), err: sentinel}
}
