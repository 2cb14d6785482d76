package wire

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
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

// Names of the extension messages BitStorm speaks, as they appear in the "m" dictionary.
const (
	ExtMetadata = "ut_metadata" // BEP 9: the info dictionary, fetched from peers
	ExtPex      = "ut_pex"      // BEP 11: peer exchange
)

// Our extended message ids. BEP 10: the ids in a handshake's "m" are the ones the sender
// wants to receive, so a peer sends us a ut_metadata message with extended id
// LocalMetadataID, and we send it ours with the id from its own handshake.
const (
	LocalMetadataID uint8 = 1
	LocalPexID      uint8 = 2
)

// LocalExtensions returns the "m" dictionary of our handshake: every extension message
// BitStorm understands, with our id for it. The map is fresh; the caller may change it.
func LocalExtensions() map[string]uint8 {
	return map[string]uint8{ExtMetadata: LocalMetadataID, ExtPex: LocalPexID}
}

// ErrBadExtHandshake wraps the errors of ParseExtHandshake.
var ErrBadExtHandshake = errors.New("bad extended handshake")

// ExtHandshake is what BitStorm reads and writes of a BEP 10 handshake.
type ExtHandshake struct {
	// M maps extension names to the extended ids the sender receives them with ("m").
	// BEP 10: id 0 means the extension is disabled, and the dictionary is additive: a
	// later handshake lists only what changed, so a session merges each into what it
	// has. Entries whose id is not an integer in [0, 255] are dropped when parsing.
	M            map[string]uint8
	Port         uint16     // "p": the sender's listening port; 0 when absent
	Client       string     // "v": the client's name and version
	Reqq         int        // "reqq": requests the sender queues without dropping any; 0 when absent
	MetadataSize int        // "metadata_size" (BEP 9): bytes of the info dictionary; 0 when absent
	YourIP       netip.Addr // "yourip": the receiver's address as the sender sees it; invalid when absent
}

// AppendExtHandshake appends the extended message carrying h (BEP 10 extended id 0).
// With a nil M, the "m" dictionary is empty: peers send us no extension messages. Our
// full handshake is
//
//	ExtHandshake{M: LocalExtensions(), Port: port, Client: name, Reqq: n, MetadataSize: len(rawInfo)}
//
// with MetadataSize left 0 while we do not have the metadata (BEP 9 has no way to
// say "I have none", so the key is left out), and YourIP set when the peer's address is
// known.
func AppendExtHandshake(dst []byte, h ExtHandshake) []byte {
	var b []byte
	b = append(b, 0) // extended id 0: the handshake
	b = append(b, 'd')
	// Keys in sorted order, as bencoding requires (BEP 3).
	b = append(b, "1:md"...)
	for _, name := range slices.Sorted(maps.Keys(h.M)) {
		b = appendBString(b, name)
		b = appendBInt(b, int64(h.M[name]))
	}
	b = append(b, 'e')
	if h.MetadataSize > 0 {
		b = append(b, "13:metadata_size"...)
		b = appendBInt(b, int64(h.MetadataSize))
	}
	if h.Port != 0 {
		b = append(b, "1:p"...)
		b = appendBInt(b, int64(h.Port))
	}
	if h.Reqq > 0 {
		b = append(b, "4:reqq"...)
		b = appendBInt(b, int64(h.Reqq))
	}
	if h.Client != "" {
		b = append(b, "1:v"...)
		b = appendBString(b, h.Client)
	}
	if h.YourIP.IsValid() {
		b = append(b, "6:yourip"...)
		if h.YourIP.Is4() {
			ip := h.YourIP.As4()
			b = appendBString(b, string(ip[:]))
		} else {
			ip := h.YourIP.As16()
			b = appendBString(b, string(ip[:]))
		}
	}
	b = append(b, 'e')
	return AppendMessage(dst, Message{ID: Extended, Extended: b})
}

// ParseExtHandshake reads the dictionary of an extended handshake, the payload of an
// extended message after its id byte 0. Keys it does not know are ignored, as BEP 10
// asks; a value of the wrong type, or out of range, is an error, except for the
// informational "v" and "yourip", which are ignored when malformed, and single entries
// of "m" (see ExtHandshake.M). MetadataSize is not checked against MaxMetadataSize:
// MetadataPieces does that, for a session that wants the metadata.
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
	if m, ok := d["m"]; ok {
		md, ok := m.(map[string]any)
		if !ok {
			return h, fmt.Errorf("wire: %w: m: a %s, not a dictionary", ErrBadExtHandshake, bencode.TypeName(m))
		}
		for name, id := range md {
			// BEP 10: ids are single bytes. A bad entry is dropped rather than failing the
			// handshake: it is most likely an extension we do not know, which BEP 10
			// asks us to ignore.
			if n, ok := id.(int64); ok && n >= 0 && n <= math.MaxUint8 {
				if h.M == nil {
					h.M = make(map[string]uint8, len(md))
				}
				h.M[name] = uint8(n)
			}
		}
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
	if s, ok := d["metadata_size"]; ok {
		n, ok := s.(int64)
		if !ok || n < 0 || n > math.MaxInt32 {
			return h, fmt.Errorf("wire: %w: metadata_size: %v is not a size", ErrBadExtHandshake, s)
		}
		h.MetadataSize = int(n)
	}
	if c, ok := d["v"].(string); ok {
		h.Client = c
	}
	// BEP 10: yourip is the compact form of an IPv4 (4 bytes) or IPv6 (16 bytes) address.
	if s, ok := d["yourip"].(string); ok && (len(s) == 4 || len(s) == 16) {
		h.YourIP, _ = netip.AddrFromSlice([]byte(s))
	}
	return h, nil
}

// appendBString appends s as a bencoded string.
func appendBString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// appendBInt appends n as a bencoded integer.
func appendBInt(b []byte, n int64) []byte {
	b = append(b, 'i')
	b = strconv.AppendInt(b, n, 10)
	return append(b, 'e')
}

// dictFields returns the raw values of keys in the bencoded dictionary d, nil for a key
// that is absent. d is validated first (bencode.DictValue), and nothing is copied or
// decoded: for the flat dictionaries of ut_metadata and ut_pex this costs no allocation
// however hostile the input, where bencode.Decode builds tens of bytes per input byte.
func dictFields(d []byte, keys ...string) ([][]byte, error) {
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := bencode.DictValue(d, k)
		if err != nil && !errors.Is(err, bencode.ErrNoKey) {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

// rawString returns the contents of the valid raw bencoded value v if it is a string.
func rawString(v []byte) ([]byte, bool) {
	if len(v) == 0 || v[0] < '0' || v[0] > '9' {
		return nil, false
	}
	i := 0
	for v[i] != ':' {
		i++
	}
	return v[i+1:], true
}

// rawInt returns the valid raw bencoded value v if it is an integer.
func rawInt(v []byte) (int64, bool) {
	if len(v) == 0 || v[0] != 'i' {
		return 0, false
	}
	// Validated: canonical digits that fit in an int64, so they need no checks here.
	digits, neg := v[1:len(v)-1], v[1] == '-'
	if neg {
		digits = digits[1:]
	}
	var u uint64
	for _, c := range digits {
		u = u*10 + uint64(c-'0')
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to itself, as it should
	}
	return int64(u), true
}

// rawType names the bencode type of the valid raw value v, for error messages.
func rawType(v []byte) string {
	switch {
	case len(v) == 0:
		return "nothing"
	case v[0] == 'i':
		return "integer"
	case v[0] == 'l':
		return "list"
	case v[0] == 'd':
		return "dictionary"
	}
	return "string"
}
