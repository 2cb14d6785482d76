package wire

import "encoding/binary"

// BEP 5, the DHT: a peer that sets the last bit of the reserved bytes (Reserved[7]&0x01)
// runs a DHT node, and may send a port message with the UDP port of that node. "Upon
// receiving this message, a node should attempt to ping the node on the received port
// and IP address of the remote peer": the session hands the address to the DHT node.

// DHTBit is the bit of Handshake.Reserved[7] that announces a DHT node.
const DHTBit = 0x01

// SupportsDHT reports whether reserved, from a handshake, announces a DHT node (BEP 5).
func SupportsDHT(reserved [8]byte) bool { return reserved[7]&DHTBit != 0 }

// AppendPort appends a port message (BEP 5) carrying the UDP port of our DHT node to dst.
// The Decoder reads it into Message.Port.
func AppendPort(dst []byte, port uint16) []byte {
	dst = append(dst, 0, 0, 0, 3, byte(Port))
	return binary.BigEndian.AppendUint16(dst, port)
}
