package stages_test

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// countingStorage counts the reads of a MemStorage: a cached piece is not read again.
type countingStorage struct {
	*stagetest.MemStorage
	reads atomic.Int64
}

func (s *countingStorage) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	return s.MemStorage.ReadAt(p, off)
}

func filledStorage(t *testing.T, tor *stagetest.Torrent) *countingStorage {
	t.Helper()
	s := &countingStorage{MemStorage: stagetest.NewMemStorage(tor.Meta.Info.Length)}
	if _, err := s.WriteAt(tor.Data, 0); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCacheBudgetShared: two caches on a budget of two pieces keep two pieces between them,
// the least recently used of either going first; Close gives a cache's pieces back, and a
// closed cache still serves, keeping nothing.
func TestCacheBudgetShared(t *testing.T) {
	const pieceLen = 32 << 10
	ta := stagetest.NewTorrent(t, 1, "a", pieceLen, 4*pieceLen)
	tb := stagetest.NewTorrent(t, 2, "b", pieceLen, 4*pieceLen)
	sa, sb := filledStorage(t, ta), filledStorage(t, tb)
	budget := stages.NewCacheBudget(2 * pieceLen)
	a := stages.NewSharedPieceCache(&ta.Meta.Info, sa, budget)
	b := stages.NewSharedPieceCache(&tb.Meta.Info, sb, budget)

	block := func(c *stages.PieceCache, tor *stagetest.Torrent, piece int) {
		t.Helper()
		got, err := c.Block(piece, 1024, 2048)
		if err != nil {
			t.Fatalf("Block(%d) = %v", piece, err)
		}
		off := piece*pieceLen + 1024
		if !bytes.Equal(got, tor.Data[off:off+2048]) {
			t.Fatalf("Block(%d) of %s: wrong bytes", piece, tor.Meta.Info.Name)
		}
	}
	reads := func(s *countingStorage, want int64) {
		t.Helper()
		if got := s.reads.Load(); got != want {
			t.Fatalf("reads = %d, want %d", got, want)
		}
	}
	block(a, ta, 0)
	block(b, tb, 0)
	block(a, ta, 0) // cached: a's piece 0 is now the most recent
	reads(sa, 1)
	if got := budget.Size(); got != 2*pieceLen {
		t.Fatalf("budget size = %d, want %d", got, 2*pieceLen)
	}
	block(a, ta, 1) // evicts b's piece 0, the least recently used of both
	block(b, tb, 0)
	reads(sb, 2)
	block(a, ta, 1) // kept: b's piece 0 evicted a's piece 0 this time
	reads(sa, 2)
	if got := budget.Size(); got != 2*pieceLen {
		t.Fatalf("budget size = %d, want %d", got, 2*pieceLen)
	}

	a.Close()
	if got := budget.Size(); got != pieceLen {
		t.Fatalf("budget size after a.Close = %d, want %d (b's piece)", got, pieceLen)
	}
	block(a, ta, 2)
	block(a, ta, 2)
	reads(sa, 4) // served, not kept
	if got := budget.Size(); got != pieceLen {
		t.Fatalf("budget size = %d after a closed cache served, want %d", got, pieceLen)
	}
	block(b, tb, 1)
	block(b, tb, 0)
	reads(sb, 3) // both of b's fit now
}
