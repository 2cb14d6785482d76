package wire

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
)

// BEP 6, the Fast Extension: a peer that sets Reserved[7]&0x04 speaks it, and it is on
// for a connection when both sides set the bit. It adds five messages, which the Decoder
// reads whatever the bits said (a session drops a peer that sends them without the
// extension: BEP 6 says it MUST close the connection), and it changes what others mean:
// every request gets exactly one answer, its piece or a reject, and a choke no longer
// discards the requests queued at the choking peer.

// FastBit is the bit of Handshake.Reserved[7] that announces the Fast Extension (BEP 6).
const FastBit = 0x04

// SupportsFast reports whether reserved, from a handshake, announces the Fast Extension.
func SupportsFast(reserved [8]byte) bool { return reserved[7]&FastBit != 0 }

// The message ids of BEP 6.
const (
	Suggest     ID = 13 // index: "you might like to download this piece"
	HaveAll     ID = 14 // no payload: in place of a bitfield with every bit set
	HaveNone    ID = 15 // no payload: in place of an empty bitfield
	Reject      ID = 16 // index, begin, length: the answer to a request that will not be served
	AllowedFast ID = 17 // index: the sender serves this piece even while it chokes the receiver
)

// AppendReject appends a reject of the request for length bytes at offset begin of piece
// index to dst.
// BEP 6: <len=0x000D><op=0x10><index><begin><length>, the payload of the request.
func AppendReject(dst []byte, index, begin, length uint32) []byte {
	return appendBlockMsg(dst, Reject, index, begin, length)
}

// AppendSuggest appends a suggest piece message for piece index to dst.
// BEP 6: <len=0x0005><op=0x0D><index>.
func AppendSuggest(dst []byte, index uint32) []byte {
	return appendIndexMsg(dst, Suggest, index)
}

// AppendAllowedFast appends an allowed fast message for piece index to dst.
// BEP 6: <len=0x0005><op=0x11><index>.
func AppendAllowedFast(dst []byte, index uint32) []byte {
	return appendIndexMsg(dst, AllowedFast, index)
}

func appendIndexMsg(dst []byte, id ID, index uint32) []byte {
	dst = append(dst, 0, 0, 0, 5, byte(id))
	return binary.BigEndian.AppendUint32(dst, index)
}

// AllowedFastSet returns the first k pieces of the allowed fast set of a peer at ip, for a
// torrent of numPieces pieces with infoHash, by BEP 6's canonical algorithm: SHA-1 over
// the peer's /24 and the info hash, then over each digest in turn, every 4 bytes of a
// digest a piece index modulo numPieces, duplicates skipped. The set has fewer than k
// pieces only when the torrent has fewer; it is nil for an address that is not IPv4 (BEP 6
// has no provision for IPv6).
func AllowedFastSet(k, numPieces int, infoHash [20]byte, ip netip.Addr) []int {
	ip = ip.Unmap()
	if !ip.Is4() || numPieces <= 0 || k <= 0 {
		return nil
	}
	k = min(k, numPieces)
	a4 := ip.As4()
	// BEP 6: x = 0xFFFFFF00 & ip, then x.append(infohash).
	x := make([]byte, 0, 24)
	x = append(x, a4[0], a4[1], a4[2], 0)
	x = append(x, infoHash[:]...)
	set := make([]int, 0, k)
	for len(set) < k {
		sum := sha1.Sum(x)
		x = sum[:]
		for i := 0; i < 5 && len(set) < k; i++ {
			index := int(binary.BigEndian.Uint32(x[4*i:]) % uint32(numPieces))
			if !containsInt(set, index) {
				set = append(set, index)
			}
		}
	}
	return set
}

func containsInt(s []int, v int) bool {
	for _, w := range s {
		if w == v {
			return true
		}
	}
	return false
}
