package wire

import (
	"encoding/binary"
	"strconv"
)

// ID is the type of a message: the byte after its length prefix.
// BEP 3: all non-keepalive messages start with a single byte which gives their type.
type ID uint8

// The message ids of BEP 3, BEP 5's port and BEP 10's extended.
const (
	Choke         ID = 0  // no payload
	Unchoke       ID = 1  // no payload
	Interested    ID = 2  // no payload
	NotInterested ID = 3  // no payload
	Have          ID = 4  // index
	BitfieldID    ID = 5  // bitfield
	Request       ID = 6  // index, begin, length
	Piece         ID = 7  // index, begin, block
	Cancel        ID = 8  // index, begin, length
	Port          ID = 9  // BEP 5: the DHT node's UDP port, 2 bytes
	Extended      ID = 20 // BEP 10: an extended id byte, then that message's payload
)

var idNames = [...]string{
	Choke:         "choke",
	Unchoke:       "unchoke",
	Interested:    "interested",
	NotInterested: "not interested",
	Have:          "have",
	BitfieldID:    "bitfield",
	Request:       "request",
	Piece:         "piece",
	Cancel:        "cancel",
	Port:          "port",
	Extended:      "extended",     // BEP 10
	Suggest:       "suggest",      // BEP 6
	HaveAll:       "have all",     // BEP 6
	HaveNone:      "have none",    // BEP 6
	Reject:        "reject",       // BEP 6
	AllowedFast:   "allowed fast", // BEP 6
	// Ids the Decoder skips, named for debug logs.
	21: "hash request", // BEP 52
	22: "hashes",       // BEP 52
	23: "hash reject",  // BEP 52
}

// String returns the name of id ("not interested"), or "id 42" for an id without one.
func (id ID) String() string {
	if int(id) < len(idNames) && idNames[id] != "" {
		return idNames[id]
	}
	return "id " + strconv.Itoa(int(id))
}

// Message is one decoded peer wire message. Which fields are set depends on ID.
//
// For a Piece message the block data is not in Message: it follows on the stream, and
// Length says how long it is (see Decoder.ReadBlock). For an id the Decoder does not
// know, only ID and Length (the payload length) are set, and the payload has already
// been skipped.
type Message struct {
	// KeepAlive is set for a keep-alive (a zero length prefix), whose other fields
	// are zero: test it before ID, since a keep-alive's ID reads as Choke.
	// BEP 3: messages of length zero are keepalives, and ignored.
	KeepAlive bool
	// ID is the message type.
	ID ID
	// Index is the piece index of a have, request, piece or cancel message, and of the
	// suggest, reject and allowed fast messages of BEP 6.
	Index uint32
	// Begin is the byte offset within the piece of a request, piece, cancel or reject
	// message.
	Begin uint32
	// Length is the requested length of a request, cancel or reject message, the length of the
	// block data that follows a piece message, and the payload length of an unknown id.
	Length uint32
	// Bitfield is the payload of a bitfield message, freshly allocated by the Decoder
	// (its size comes from our piece count, never from the peer): the caller may keep it.
	Bitfield Bitfield
	// Port is the DHT port of a port message (BEP 5).
	Port uint16
	// Extended is the payload of an extended message (BEP 10): its extended id byte, then
	// that message's own payload. It lies in the Decoder's buffer, valid until the next
	// call of Next. An extended message longer than MaxExtendedLen is skipped like an
	// unknown id: Extended is nil and Length is set.
	Extended []byte
}

// AppendKeepAlive appends a keep-alive message (a zero length prefix) to dst.
func AppendKeepAlive(dst []byte) []byte {
	return append(dst, 0, 0, 0, 0)
}

// AppendState appends a message without payload to dst: id is Choke, Unchoke,
// Interested, NotInterested, or BEP 6's HaveAll or HaveNone (any other id makes a message
// peers reject).
func AppendState(dst []byte, id ID) []byte {
	return append(dst, 0, 0, 0, 1, byte(id))
}

// AppendHave appends a have message for piece index to dst.
func AppendHave(dst []byte, index uint32) []byte {
	return appendIndexMsg(dst, Have, index)
}

// AppendRequest appends a request for length bytes at offset begin of piece index to dst.
func AppendRequest(dst []byte, index, begin, length uint32) []byte {
	return appendBlockMsg(dst, Request, index, begin, length)
}

// AppendCancel appends a cancel of an earlier request to dst.
// BEP 3: 'cancel' messages have the same payload as request messages.
func AppendCancel(dst []byte, index, begin, length uint32) []byte {
	return appendBlockMsg(dst, Cancel, index, begin, length)
}

func appendBlockMsg(dst []byte, id ID, index, begin, length uint32) []byte {
	dst = append(dst, 0, 0, 0, 13, byte(id))
	dst = binary.BigEndian.AppendUint32(dst, index)
	dst = binary.BigEndian.AppendUint32(dst, begin)
	return binary.BigEndian.AppendUint32(dst, length)
}

// AppendPieceHeader appends the first 13 bytes of a piece message carrying dataLen
// bytes at offset begin of piece index: length prefix, id, index and begin. The caller
// writes the dataLen bytes of the block after them.
func AppendPieceHeader(dst []byte, index, begin uint32, dataLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(9+dataLen))
	dst = append(dst, byte(Piece))
	dst = binary.BigEndian.AppendUint32(dst, index)
	return binary.BigEndian.AppendUint32(dst, begin)
}

// AppendMessage appends m to dst, reading the fields its ID uses; a KeepAlive m is a
// keep-alive whatever its other fields. For Piece, only the header is appended, as by
// AppendPieceHeader with m.Length as the block length, and the caller writes the block
// after it. For an id the Decoder does not know, the length prefix (1 + m.Length) and
// the id are appended, and the caller writes the m.Length bytes of payload.
func AppendMessage(dst []byte, m Message) []byte {
	if m.KeepAlive {
		return AppendKeepAlive(dst)
	}
	switch m.ID {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return AppendState(dst, m.ID)
	case Have, Suggest, AllowedFast:
		return appendIndexMsg(dst, m.ID, m.Index)
	case BitfieldID:
		dst = binary.BigEndian.AppendUint32(dst, uint32(1+len(m.Bitfield)))
		dst = append(dst, byte(BitfieldID))
		return append(dst, m.Bitfield...)
	case Request, Cancel, Reject:
		return appendBlockMsg(dst, m.ID, m.Index, m.Begin, m.Length)
	case Piece:
		return AppendPieceHeader(dst, m.Index, m.Begin, int(m.Length))
	case Port:
		dst = append(dst, 0, 0, 0, 3, byte(Port))
		return binary.BigEndian.AppendUint16(dst, m.Port)
	case Extended:
		if m.Extended == nil {
			break
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(1+len(m.Extended)))
		dst = append(dst, byte(Extended))
		return append(dst, m.Extended...)
	}
	// An id without fields: its header, for the Length bytes of payload that were skipped.
	dst = binary.BigEndian.AppendUint32(dst, 1+m.Length)
	return append(dst, byte(m.ID))
}
