package stages_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// blocksOf cuts the payload of tor into blocks, as sessions would emit them, in order.
func blocksOf(tor *stagetest.Torrent, pool *bufpool.Pool, peer *stages.Peer) []*stages.Block {
	info := &tor.Meta.Info
	var out []*stages.Block
	for i := range info.NumPieces() {
		off, size := info.PieceOffset(i), info.PieceSize(i)
		for begin := int64(0); begin < size; begin += wire.BlockSize {
			n := min(wire.BlockSize, size-begin)
			buf := pool.Get()[:n]
			copy(buf, tor.Data[off+begin:off+begin+n])
			out = append(out, &stages.Block{Piece: i, Begin: int(begin), Data: buf, Peer: peer})
		}
	}
	return out
}

func env(tor *stagetest.Torrent) *stages.Env {
	sw := stages.NewSwarm(tor.Meta.InfoHash, [20]byte{}, 0, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return &stages.Env{Swarm: sw, Info: &tor.Meta.Info}
}

// TestAssembleThenVerify composes two stages directly: blocks in any order fold into whole
// pieces, and Verify marks exactly the corrupted one.
func TestAssembleThenVerify(t *testing.T) {
	tor := stagetest.NewTorrent(t, 50, "asm", 40<<10, 200_000) // 5 pieces, the last short
	e := env(tor)
	pool := bufpool.New(wire.BlockSize, 64)
	peer := stages.NewPeer(netip.MustParseAddrPort("127.0.0.1:1"))
	in := blocksOf(tor, pool, peer)
	slices.Reverse(in)    // arrival order does not matter
	in[3].Data[0] ^= 0xFF // corrupt the piece of this block
	bad := in[3].Piece

	pieces := stagetest.Run[*stages.Block, *stages.Piece](t,
		stages.Assemble(e, pool), in)
	if len(pieces) != tor.Meta.Info.NumPieces() {
		t.Fatalf("Assemble emitted %d pieces, want %d", len(pieces), tor.Meta.Info.NumPieces())
	}
	verified := stagetest.Run[*stages.Piece, *stages.Piece](t, stages.Verify(e.Info, 2), pieces)
	for _, p := range verified {
		off := tor.Meta.Info.PieceOffset(p.Index)
		switch {
		case p.Index == bad && !errors.Is(p.Err, stages.ErrHashMismatch):
			t.Errorf("piece %d was corrupted, Verify set Err = %v", p.Index, p.Err)
		case p.Index != bad && p.Err != nil:
			t.Errorf("piece %d: Verify set Err = %v, want nil", p.Index, p.Err)
		case p.Index != bad && !bytes.Equal(p.Bytes(), tor.Data[off:off+tor.Meta.Info.PieceSize(p.Index)]):
			t.Errorf("piece %d assembled wrong", p.Index)
		}
		if len(p.Peers) != 1 || p.Peers[0] != peer {
			t.Errorf("piece %d: Peers = %v, want the one sender", p.Index, p.Peers)
		}
	}
}
