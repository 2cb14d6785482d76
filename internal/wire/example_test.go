package wire_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// The read loop of a connection: one Decoder over a bufio.Reader, one block buffer,
// unknown messages skipped and reported.
func ExampleDecoder() {
	// What a peer might send after the handshake.
	var conn bytes.Buffer
	bf := wire.NewBitfield(4)
	bf.Set(2)
	conn.Write(wire.AppendMessage(nil, wire.Message{ID: wire.BitfieldID, Bitfield: bf}))
	conn.Write([]byte("\x00\x00\x00\x03\x14\x01x"))            // BEP 10 extended message
	conn.Write([]byte("\x00\x00\x00\x05\x11\x00\x00\x00\x02")) // BEP 6 allowed fast
	conn.Write([]byte("\x00\x00\x00\x03\x17\x00\x01"))         // BEP 52 hash reject, not known
	conn.Write(wire.AppendState(nil, wire.Unchoke))
	conn.Write(wire.AppendPieceHeader(nil, 2, 0, 5))
	conn.WriteString("hello")
	conn.Write(wire.AppendKeepAlive(nil))

	d := wire.NewDecoder(bufio.NewReader(&conn), 4)
	block := make([]byte, wire.BlockSize)
	for {
		m, err := d.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Println("drop peer:", err)
			return
		}
		switch {
		case m.KeepAlive:
			fmt.Println("keep-alive")
		case m.ID == wire.BitfieldID:
			fmt.Println("bitfield: has piece 2:", m.Bitfield.Has(2))
		case m.ID == wire.Piece:
			if m.Length > uint32(len(block)) {
				fmt.Println("drop peer: block longer than requested")
				return
			}
			if err := d.ReadBlock(block[:m.Length]); err != nil {
				fmt.Println("drop peer:", err)
				return
			}
			fmt.Printf("piece %d at %d: %q\n", m.Index, m.Begin, block[:m.Length])
		case m.ID == wire.Extended:
			fmt.Printf("extended message %d: %q\n", m.Extended[0], m.Extended[1:])
		case m.ID == wire.AllowedFast:
			fmt.Println("allowed fast: piece", m.Index)
		case m.ID > wire.AllowedFast:
			fmt.Printf("skipped %v message of %d bytes\n", m.ID, m.Length)
		default:
			fmt.Println(m.ID)
		}
	}
	// Output:
	// bitfield: has piece 2: true
	// extended message 1: "x"
	// allowed fast: piece 2
	// skipped hash reject message of 2 bytes
	// unchoke
	// piece 2 at 0: "hello"
	// keep-alive
}

func ExampleReadHandshake() {
	ours := wire.Handshake{InfoHash: [20]byte{1, 2, 3}, PeerID: [20]byte([]byte("-BS0001-000000000000"))}
	ours.Reserved[5] |= 0x10 // BEP 10 extension protocol
	conn := bytes.NewReader(ours.Append(nil))

	theirs, err := wire.ReadHandshake(conn)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(theirs.CheckInfoHash(ours.InfoHash), string(theirs.PeerID[:8]))

	_, err = wire.ReadHandshake(bytes.NewReader([]byte("\x8f\x1e random MSE key ...")))
	fmt.Println(err)
	// Output:
	// <nil> -BS0001-
	// wire: handshake: pstrlen 143, want 19
}
