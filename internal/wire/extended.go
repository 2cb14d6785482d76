package wire

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// BEP 10, the extension protocol: a peer that sets bit 20 from the right of the reserved
// bytes (Reserved[5]&0x10) understands extended messages, and the extended message with
// extended id 0 is a handshake, a bencoded dictionary of what the sender supports.

// ExtensionBit is the bit of Handshake.Reserved[5] that announces the extension protocol.
const ExtensionBit = 0x10

// SupportsExtensions reports whether reserved, from a handshake, announces BEP 10.
func SupportsExtensions(reserved [8]byte) bool { return reserved[5]&ExtensionBit != 0 }

// ErrBadExtHandshake wraps the errors of ParseExtHandshake.
var ErrBadExtHandshake = errors.New("bad extended handshake")

// ExtHandshake is what BitStorm reads and writes of a BEP 10 handshake. It lists no
// extension messages ("m" is empty), so peers send it none.
type ExtHandshake struct {
	Port   uint16 // "p": the sender's listening port; 0 when absent
	Client string // "v": the client's name and version
	Reqq   int    // "reqq": requests the sender queues without dropping any; 0 when absent
}

// AppendExtHandshake appends the extended message carrying h (BEP 10 extended id 0).
func AppendExtHandshake(dst []byte, h ExtHandshake) []byte {
	var b []byte
	b = append(b, 0) // extended id 0: the handshake
	b = append(b, "d1:mde"...)
	if h.Port != 0 {
		b = append(b, "1:pi"...)
		b = strconv.AppendInt(b, int64(h.Port), 10)
		b = append(b, 'e')
	}
	if h.Reqq > 0 {
		b = append(b, "4:reqqi"...)
		b = strconv.AppendInt(b, int64(h.Reqq), 10)
		b = append(b, 'e')
	}
	if h.Client != "" {
		b = append(b, "1:v"...)
		b = strconv.AppendInt(b, int64(len(h.Client)), 10)
		b = append(b, ':')
		b = append(b, h.Client...)
	}
	b = append(b, 'e')
	return AppendMessage(dst, Message{ID: Extended, Extended: b})
}

// ParseExtHandshake reads the dictionary of an extended handshake, the payload of an
// extended message after its id byte 0. Keys it does not know are ignored, as BEP 10
// asks; a value of the wrong type, or out of range, is an error.
func ParseExtHandshake(payload []byte) (ExtHandshake, error) {
	var h ExtHandshake
	v, err := bencode.Decode(payload)
	if err != nil {
		return h, fmt.Errorf("wire: %w: %w", ErrBadExtHandshake, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return h, fmt.Errorf("wire: %w: a %s, not a dictionary", ErrBadExtHandshake, bencode.TypeName(v))
	}
	if p, ok := d["p"]; ok {
		n, ok := p.(int64)
		if !ok || n < 0 || n > 65535 {
			return h, fmt.Errorf("wire: %w: p: %v is not a port", ErrBadExtHandshake, p)
		}
		h.Port = uint16(n)
	}
	if q, ok := d["reqq"]; ok {
		n, ok := q.(int64)
		if !ok || n < 1 || n > 1<<20 {
			return h, fmt.Errorf("wire: %w: reqq: %v is not a queue length", ErrBadExtHandshake, q)
		}
		h.Reqq = int(n)
	}
	if c, ok := d["v"].(string); ok {
		h.Client = c
	}
	return h, nil
}
