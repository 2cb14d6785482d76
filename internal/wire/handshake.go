package wire

import (
	"fmt"
	"io"
)

// Handshake is the first message each side sends on a connection.
// BEP 3: the pstrlen byte 19, the string "BitTorrent protocol", eight reserved bytes,
// the 20-byte info hash, then the 20-byte peer id.
type Handshake struct {
	// Reserved is kept as received: its bits announce extensions (BEP 10 extension
	// protocol: Reserved[5]&0x10, BEP 6 fast extension: Reserved[7]&0x04, BEP 5 DHT:
	// Reserved[7]&0x01).
	Reserved [8]byte
	// InfoHash is the SHA-1 of the bencoded info dictionary of the torrent.
	InfoHash [20]byte
	// PeerID identifies the sender.
	PeerID [20]byte
}

// Append appends the HandshakeLen bytes of h to dst and returns the extended slice. It
// does not allocate when dst has the capacity.
func (h *Handshake) Append(dst []byte) []byte {
	dst = append(dst, byte(len(Protocol)))
	dst = append(dst, Protocol...)
	dst = append(dst, h.Reserved[:]...)
	dst = append(dst, h.InfoHash[:]...)
	return append(dst, h.PeerID[:]...)
}

// CheckInfoHash returns an error wrapping ErrInfoHashMismatch unless h names the
// torrent want.
// BEP 3: if both sides don't send the same value, they sever the connection.
func (h *Handshake) CheckInfoHash(want [20]byte) error {
	if h.InfoHash != want {
		return errorf(ErrInfoHashMismatch, "wire: handshake: info hash %x, want %x", h.InfoHash, want)
	}
	return nil
}

// ReadHandshake reads a handshake from r. It reads at most HandshakeLen bytes, and
// stops early on a first byte other than 19 or a protocol string other than Protocol,
// returning an error wrapping ErrNotBitTorrent: a peer that opens with an MSE/PE
// (encrypted) handshake, as aria2 and rtorrent do, sends random bytes, and is then
// expected to retry in plain text on a new connection.
//
// The caller checks the info hash (CheckInfoHash). ReadHandshake returns io.EOF if r
// ends before the first byte, and an error wrapping io.ErrUnexpectedEOF if it ends
// within the handshake.
func ReadHandshake(r io.Reader) (Handshake, error) {
	var h Handshake
	var buf [HandshakeLen]byte
	// Read the pstrlen byte alone first, so that a stream which is not BitTorrent is
	// rejected before waiting for bytes the other side may never send.
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		if err == io.EOF {
			return h, io.EOF
		}
		return h, fmt.Errorf("wire: handshake: %w", err)
	}
	if buf[0] != byte(len(Protocol)) {
		return h, errorf(ErrNotBitTorrent, "wire: handshake: pstrlen %d, want %d", buf[0], len(Protocol))
	}
	pstr := buf[1 : 1+len(Protocol)]
	if err := readFull(r, pstr, "handshake"); err != nil {
		return h, err
	}
	if string(pstr) != Protocol {
		return h, errorf(ErrNotBitTorrent, "wire: handshake: protocol %q, want %q", pstr, Protocol)
	}
	rest := buf[1+len(Protocol):]
	if err := readFull(r, rest, "handshake"); err != nil {
		return h, err
	}
	copy(h.Reserved[:], rest[0:8])
	copy(h.InfoHash[:], rest[8:28])
	copy(h.PeerID[:], rest[28:48])
	return h, nil
}

// readFull fills p from r. Running out of input is io.ErrUnexpectedEOF, since the
// caller has already started on a message; errors say where.
func readFull(r io.Reader, p []byte, where string) error {
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("wire: %s: %w", where, err)
	}
	return nil
}
