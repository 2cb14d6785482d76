package wire

import (
	"errors"
	"fmt"
	"math"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// BEP 9, ut_metadata: peers send each other the info dictionary (the "metadata") in
// pieces of 16 KiB, so that a magnet link, which carries only the info hash, is enough to
// join a swarm. A message is a bencoded dictionary ({"msg_type": t, "piece": i}, plus
// "total_size" for data), and a data message carries the piece's bytes after the
// dictionary, outside it.

// MetadataPieceSize is the size of a metadata piece. BEP 9: all blocks are 16KiB except
// the last block which may be smaller.
const MetadataPieceSize = 16 << 10

// MaxMetadataSize is the largest info dictionary we fetch or accept from peers: 30 MiB,
// libtorrent's default (settings_pack max_metadata_size = 3 * 1024 * 10240), so a magnet
// link that qBittorrent or Deluge can open, we can too. Real info dictionaries are a few
// KiB to a few MiB (20 bytes of hash per piece); the cap only bounds the buffer a peer can
// make us allocate by claiming a size, and it is below metainfo.MaxTorrentSize, so any
// metadata we accept can be saved as a .torrent that metainfo.Parse reads back.
const MaxMetadataSize = 3 * 1024 * 10240

// ErrBadMetadataMsg wraps the errors of ParseMetadataMsg.
var ErrBadMetadataMsg = errors.New("bad ut_metadata message")

// MetadataMsgType is the "msg_type" of a ut_metadata message.
type MetadataMsgType int

// BEP 9 message types. BEP 9: an unrecognized message ID MUST be ignored, so
// ParseMetadataMsg returns other types too, and the caller ignores them.
const (
	MetadataRequest MetadataMsgType = 0 // asks for piece Piece
	MetadataData    MetadataMsgType = 1 // carries piece Piece of a TotalSize-byte info dictionary
	MetadataReject  MetadataMsgType = 2 // the sender does not have piece Piece
)

// MetadataMsg is a ut_metadata message (BEP 9).
type MetadataMsg struct {
	Type  MetadataMsgType
	Piece int // the piece asked for, sent or refused; 0 for a type we do not know
	// TotalSize is the size of the whole info dictionary ("total_size"), for
	// MetadataData. BEP 9 gives it the meaning of the handshake's "metadata_size"; a
	// session checks that the two agree before it stores the piece.
	TotalSize int
	// Data is the piece, for MetadataData: MetadataPieceSize bytes, or what is left in
	// the last piece. ParseMetadataMsg returns a sub-slice of its payload.
	Data []byte
}

// MetadataPieces returns the number of pieces of an info dictionary of size bytes, or an
// error if size is not in [1, MaxMetadataSize]: a peer that announces such a
// "metadata_size" cannot give us the metadata.
func MetadataPieces(size int) (int, error) {
	if size < 1 || size > MaxMetadataSize {
		return 0, fmt.Errorf("wire: metadata size %d is not in [1, %d]", size, MaxMetadataSize)
	}
	return (size + MetadataPieceSize - 1) / MetadataPieceSize, nil
}

// MetadataPiece returns piece index of the info dictionary raw, as a data message
// carries it, and false if there is no such piece.
func MetadataPiece(raw []byte, index int) ([]byte, bool) {
	if index < 0 || index >= (len(raw)+MetadataPieceSize-1)/MetadataPieceSize {
		return nil, false
	}
	start := index * MetadataPieceSize
	end := min(start+MetadataPieceSize, len(raw))
	return raw[start:end:end], true
}

// AppendMetadataMsg appends the extended message carrying m, with extended id extID: the
// id the receiving peer gave ut_metadata in its handshake. Data is appended for a
// MetadataData message only, as is TotalSize.
func AppendMetadataMsg(dst []byte, extID uint8, m MetadataMsg) []byte {
	var dict [64]byte
	d := append(dict[:0], "d8:msg_type"...)
	d = appendBInt(d, int64(m.Type))
	d = append(d, "5:piece"...)
	d = appendBInt(d, int64(m.Piece))
	var data []byte
	if m.Type == MetadataData {
		d = append(d, "10:total_size"...)
		d = appendBInt(d, int64(m.TotalSize))
		data = m.Data
	}
	d = append(d, 'e')
	dst = appendExtendedHeader(dst, extID, len(d)+len(data))
	dst = append(dst, d...)
	return append(dst, data...)
}

// appendExtendedHeader appends the length prefix, message id and extended id of an
// extended message whose payload after the extended id is n bytes long.
func appendExtendedHeader(dst []byte, extID uint8, n int) []byte {
	l := uint32(2 + n)
	return append(dst, byte(l>>24), byte(l>>16), byte(l>>8), byte(l), byte(Extended), extID)
}

// ParseMetadataMsg reads a ut_metadata message: payload is the extended message after
// its extended id byte. It checks the message against BEP 9 and against itself: piece
// must be a piece of a metadata of at most MaxMetadataSize bytes, and a data message's
// piece of total_size bytes, with exactly the bytes that piece has. Keys it does not
// know are ignored; for a msg_type it does not know, it returns only Type. Every error
// wraps ErrBadMetadataMsg.
func ParseMetadataMsg(payload []byte) (MetadataMsg, error) {
	var m MetadataMsg
	end, err := dictEnd(payload)
	if err != nil {
		return m, fmt.Errorf("wire: %w: %w", ErrBadMetadataMsg, err)
	}
	f, err := dictFields(payload[:end], "msg_type", "piece", "total_size")
	if err != nil {
		return m, fmt.Errorf("wire: %w: %w", ErrBadMetadataMsg, err)
	}
	t, ok := rawInt(f[0])
	switch {
	case f[0] == nil:
		return m, badMetadata("msg_type: missing")
	case !ok:
		return m, badMetadata("msg_type: want an integer, got %s", rawType(f[0]))
	case t < 0 || t > math.MaxInt32:
		return m, badMetadata("msg_type: %d is not a message type", t)
	}
	m.Type = MetadataMsgType(t)
	if m.Type != MetadataRequest && m.Type != MetadataData && m.Type != MetadataReject {
		return m, nil // BEP 9: to be ignored, whatever else it holds
	}

	pieces := (MaxMetadataSize + MetadataPieceSize - 1) / MetadataPieceSize
	if m.Type == MetadataData {
		size, ok := rawInt(f[2])
		switch {
		case f[2] == nil:
			return m, badMetadata("total_size: missing in a data message")
		case !ok:
			return m, badMetadata("total_size: want an integer, got %s", rawType(f[2]))
		case size < 1 || size > MaxMetadataSize:
			return m, badMetadata("total_size: %d is not in [1, %d]", size, MaxMetadataSize)
		}
		m.TotalSize = int(size)
		pieces, _ = MetadataPieces(m.TotalSize)
	}
	p, ok := rawInt(f[1])
	switch {
	case f[1] == nil:
		return m, badMetadata("piece: missing")
	case !ok:
		return m, badMetadata("piece: want an integer, got %s", rawType(f[1]))
	case p < 0 || p >= int64(pieces):
		if m.Type == MetadataData {
			return m, badMetadata("piece: %d is not a piece of a %d-byte metadata", p, m.TotalSize)
		}
		return m, badMetadata("piece: %d is not a piece of a metadata of at most %d bytes", p, MaxMetadataSize)
	}
	m.Piece = int(p)

	rest := payload[end:]
	if m.Type != MetadataData {
		if len(rest) > 0 {
			return m, badMetadata("%d bytes after the dictionary of a message that carries no data", len(rest))
		}
		return m, nil
	}
	// BEP 9: if it is not the last piece of the metadata, it MUST be 16kiB.
	if want := min(MetadataPieceSize, m.TotalSize-m.Piece*MetadataPieceSize); len(rest) != want {
		return m, badMetadata("piece %d of a %d-byte metadata has %d bytes, want %d", m.Piece, m.TotalSize, len(rest), want)
	}
	m.Data = rest[:len(rest):len(rest)]
	return m, nil
}

// dictEnd returns the length of the bencoded dictionary that payload starts with. The
// bencode package validates whole values only, so this asks it about a prefix: the scan
// of payload stops with a *bencode.SyntaxError at the first byte it cannot take, and if
// the bytes before it are one valid value, that value is the dictionary (a bencoded
// value is never a prefix of another one). The scan stops where the dictionary ends, so
// it never reads the piece after it; it allocates nothing and nests at most 8 deep (the
// dictionary is flat; the depth admits unknown keys with small values).
func dictEnd(payload []byte) (int, error) {
	const depth = 8
	if len(payload) == 0 || payload[0] != 'd' {
		return 0, errors.New("does not start with a dictionary")
	}
	err := bencode.Validate(payload, depth)
	if err == nil {
		return len(payload), nil
	}
	var se *bencode.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 && se.Offset < len(payload) && bencode.Validate(payload[:se.Offset], depth) == nil {
		return se.Offset, nil
	}
	return 0, err
}

func badMetadata(format string, args ...any) error {
	return fmt.Errorf("wire: %w: %s", ErrBadMetadataMsg, fmt.Sprintf(format, args...))
}
