// Package stages holds the typed units of BitStorm's download graph and the elements
// that flow between them. pipeline/graph.go wires them on github.com/reugn/go-streams:
//
//	PeerSource ──*PeerAddr──▶ Dial ──*Conn──▶ Request ──*Block──▶ Assemble ──*Piece──▶ Verify ──*Piece──▶ Write
//	(tracker,                 (bounded      (one session per    (blocks → piece    (SHA-1 on    (pwrite into
//	 static list)              slots)        peer, pipelined)     buffers, p=1)      all cores)    the files)
//	                                              ▲                                                  │
//	                                              └────────── Scheduler (picker, block state) ◀──────┘
//
// Every edge is a chan any carrying pointers; the types are stated in each constructor's
// doc. go-streams has no error path and no cancellation, so errors ride on the elements
// (Piece.Err), every stage drains its input until it is closed, and cancellation enters at
// the edges: sources close their outlet when the run's context ends and the close cascades.
// The Scheduler is the one piece of shared state: sessions ask it what to request and tell
// it what arrived; the Write sink tells it which pieces are verified on disk or failed.
//
// A magnet link runs a metadata phase first (BEP 9), with no Info yet: the peer sources,
// Dial and Listen need only the Swarm, and feed the FetchMetadata sink, which returns the
// info dictionary once its SHA-1 matches. The piece graph is then built as for a .torrent.
package stages

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// PeerAddr is the address of a peer to dial.
type PeerAddr struct {
	Addr netip.AddrPort
	From PeerOrigin // the source that found it; zero: FromSource
}

// Conn is a connection to a peer whose handshake is done: the info hash matched.
type Conn struct {
	net.Conn
	Addr     netip.AddrPort
	PeerID   [20]byte
	Reserved [8]byte       // BEP 3 reserved bits as the peer sent them, for later extensions
	Incoming bool          // the peer dialed us: Addr's port is not where it listens
	Adopted  bool          // it waited at the MetadataGate: our extended handshake went first, so no bitfield
	R        *bufio.Reader // buffered reader positioned after the handshake
	down, up []*Rate       // the rates its reader and writer wait for (Limit)

	once    sync.Once
	release func() // frees the connection slot the dialer holds for this peer
}

// Close closes the connection and frees its slot; it is safe to call more than once.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		if c.release != nil {
			c.release()
		}
	})
	return err
}

// Block is one block of piece data received from a peer (BEP 3 "piece" message).
// Data comes from the pipeline's block pool; whoever consumes the block returns it.
type Block struct {
	Piece int
	Begin int
	Data  []byte
	Peer  *Peer
}

// blocks recycles Block elements: one per 16 KiB received would otherwise be the data
// path's only allocation per block.
var blocks = sync.Pool{New: func() any { return new(Block) }}

func newBlock(piece, begin int, data []byte, p *Peer) *Block {
	b := blocks.Get().(*Block)
	*b = Block{Piece: piece, Begin: begin, Data: data, Peer: p}
	return b
}

// freeBlock returns b to the pool; its consumer calls it once done with b.
func freeBlock(b *Block) {
	*b = Block{}
	blocks.Put(b)
}

// Piece is a whole piece, assembled from blocks. Its bytes stay in the buffers they were
// received into, in order, one per block of wire.BlockSize (the last may be shorter): they
// are hashed and written from there, never copied into one buffer. Err is set by Verify
// when the piece fails its hash; Peers are the peers that sent its blocks, for blame.
type Piece struct {
	Index  int
	Blocks [][]byte
	Err    error
	Peers  []*Peer
}

// Bytes returns a copy of the piece's bytes in one slice, for tests and tools.
func (p *Piece) Bytes() []byte {
	var b []byte
	for _, blk := range p.Blocks {
		b = append(b, blk...)
	}
	return b
}

// ErrHashMismatch marks a piece whose SHA-1 is not the one in the metainfo.
var ErrHashMismatch = errors.New("piece hash mismatch")

// PeerSource produces the addresses of peers to dial (a tracker, a static list, the DHT,
// an experiment's generator). It needs only the swarm, not the metadata, so that it runs
// for a magnet link too. Open returns a Source whose outlet the implementation closes when
// ctx ends; it may call sw.Fail with an error that ends the run (tracker unreachable).
type PeerSource interface {
	Open(ctx context.Context, sw *Swarm) streams.Source
}

// Picker chooses which piece to start next for a peer. The Scheduler calls it under its
// lock, so implementations need not be safe for concurrent use. Availability calls let a
// rarest-first picker count how many peers hold each piece.
type Picker interface {
	// Pick returns a piece that has reports the peer holds and want accepts (not complete,
	// not in progress); ok is false when there is none. A piece want rejects once stays
	// rejected (the Scheduler never gives a piece up), so a picker may forget it.
	Pick(has wire.Bitfield, want func(piece int) bool) (piece int, ok bool)
	// PeerHas records that one more peer holds piece.
	PeerHas(piece int)
	// PeerGone records that a peer holding the pieces set in has left.
	PeerGone(has wire.Bitfield)
}

// Storage holds the torrent's bytes, addressed as one concatenated byte space (BEP 3).
// Implementations must allow concurrent calls.
type Storage interface {
	io.WriterAt
	io.ReaderAt
	Close() error
}

// VectorWriterAt is Storage that writes several buffers at one offset in a single call
// (pwritev): the write sink uses it, when the Storage has it, to write a piece's blocks
// with one system call instead of one per block.
type VectorWriterAt interface {
	WriteVAt(bufs [][]byte, off int64) (int, error)
}
