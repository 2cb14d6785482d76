package wire_test

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// pieceStream returns n piece messages of BlockSize bytes of seeded random data.
func pieceStream(n int) []byte {
	rng := rand.NewChaCha8([32]byte{'w', 'i', 'r', 'e'})
	block := make([]byte, wire.BlockSize)
	var data []byte
	for i := range n {
		rng.Read(block)
		data = wire.AppendPieceHeader(data, uint32(i%testPieces), uint32(i)*wire.BlockSize, len(block))
		data = append(data, block...)
	}
	return data
}

// BenchmarkDecodePiece decodes a piece header and reads its 16 KiB block, the receive
// path of a download, from a reader looping over a pre-built stream of 64 blocks.
func BenchmarkDecodePiece(b *testing.B) {
	data := pieceStream(64)
	for _, rd := range []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"bytes.Reader", func(r io.Reader) io.Reader { return r }},
		{"bufio.Reader/64KiB", func(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 64<<10) }},
	} {
		b.Run(rd.name, func(b *testing.B) {
			br := bytes.NewReader(data)
			d := wire.NewDecoder(rd.wrap(br), testPieces)
			block := make([]byte, wire.BlockSize)
			b.SetBytes(13 + wire.BlockSize)
			b.ReportAllocs()
			for b.Loop() {
				m, err := d.Next()
				if err == io.EOF {
					br.Reset(data) // the bufio.Reader, if any, has been drained too
					m, err = d.Next()
				}
				if err != nil || m.ID != wire.Piece {
					b.Fatalf("Next() = %+v, %v", m, err)
				}
				if err := d.ReadBlock(block[:m.Length]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeRequest decodes request messages, the receive path of an upload.
func BenchmarkDecodeRequest(b *testing.B) {
	var data []byte
	for i := range 4096 {
		data = wire.AppendRequest(data, uint32(i%testPieces), uint32(i)*wire.BlockSize, wire.BlockSize)
	}
	br := bytes.NewReader(data)
	d := wire.NewDecoder(bufio.NewReader(br), testPieces)
	b.SetBytes(17)
	b.ReportAllocs()
	for b.Loop() {
		m, err := d.Next()
		if err == io.EOF {
			br.Reset(data)
			m, err = d.Next()
		}
		if err != nil || m.ID != wire.Request {
			b.Fatalf("Next() = %+v, %v", m, err)
		}
	}
}

// BenchmarkAppendRequest encodes request messages into a reused buffer, the send path
// of a download.
func BenchmarkAppendRequest(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.SetBytes(17)
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		buf = wire.AppendRequest(buf[:0], i%testPieces, i*wire.BlockSize, wire.BlockSize)
		i++
	}
}
