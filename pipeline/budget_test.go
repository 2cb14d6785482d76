package pipeline_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestSessionInFlightBudget: a session whose torrents share an in-flight budget of 8
// pieces. A torrent whose only peer never answers takes the whole budget and holds it;
// three others, downloading at once, still complete with the right bytes on their
// MinActive pieces each; the budget never went past its limit and those pieces, though
// each torrent alone may have 2048 pieces in progress; once the three are done and the
// stalled one is paused, the budget is whole again.
func TestSessionInFlightBudget(t *testing.T) {
	checkGoroutines(t)
	const plen = 32 << 10
	s, err := pipeline.NewSession(pipeline.SessionConfig{
		ListenAddr:  "127.0.0.1:0",
		MaxInFlight: 8 * plen,
		// A first request round of 64 blocks: 32 pieces, were there no budget.
		Defaults: pipeline.Config{NoPex: true, Request: stages.RequestConfig{InitialQueue: 64}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	budget := s.InFlight()
	if budget.Limit() != 8*plen {
		t.Fatalf("budget limit %d, want %d", budget.Limit(), 8*plen)
	}

	stalled := stagetest.NewTorrent(t, 90, "stalled", plen, 1<<20)
	mute := stagetest.NewFakePeer(t, stalled, stagetest.Stall)
	st, err := s.Add(pipeline.FromMetaInfo(stalled.Meta), false, pipeline.WithStorage(stagetest.NewMemStorage(stalled.Meta.Info.Length)),
		pipeline.WithPeerSource(stages.StaticPeers{mute.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	// Its pieces are started (the peer unchoked) before the others are added.
	for deadline := time.Now().Add(30 * time.Second); budget.Used() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled torrent started no piece in 30s")
		}
	}

	var tors []*stagetest.Torrent
	var stores []*stagetest.MemStorage
	var trs []*pipeline.Torrent
	for k := range 3 {
		tor := stagetest.NewTorrent(t, uint64(91+k), "t"+string(rune('a'+k)), plen, 1<<20)
		peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
		store := stagetest.NewMemStorage(tor.Meta.Info.Length)
		tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithStorage(store), pipeline.WithPeerSource(stages.StaticPeers{peer.Addr()}))
		if err != nil {
			t.Fatal(err)
		}
		tors, stores, trs = append(tors, tor), append(stores, store), append(trs, tr)
	}
	w := waiter{60 * time.Second}
	for k, tr := range trs {
		w.finished(t, tr)
		if !bytes.Equal(stores[k].Bytes(), tors[k].Data) {
			t.Errorf("torrent %d: bytes differ from the payload", k)
		}
	}
	bound := budget.Limit() + 4*stages.MinActive*plen
	if peak := budget.Peak(); peak < budget.Limit() || peak > bound {
		t.Errorf("peak in flight %d bytes (%d pieces), want between the limit %d and %d (and each torrent's %d pieces)",
			peak, peak/plen, budget.Limit(), bound, stages.MinActive)
	}
	if budget.Used() == 0 {
		t.Fatal("nothing in flight while the stalled torrent runs: its pieces gave their bytes back early")
	}
	st.Pause()
	if used := budget.Used(); used != 0 {
		t.Errorf("%d bytes in flight after every run ended (three finished, one paused), want 0", used)
	}
}

// writeOrder is storage that records the pieces in the order their first block is
// written: a piece is written before the Scheduler counts it done.
type writeOrder struct {
	*stagetest.MemStorage
	plen   int64
	mu     sync.Mutex
	pieces []int
}

func (w *writeOrder) WriteAt(p []byte, off int64) (int, error) {
	if off%w.plen == 0 {
		w.mu.Lock()
		w.pieces = append(w.pieces, int(off/w.plen))
		w.mu.Unlock()
	}
	return w.MemStorage.WriteAt(p, off)
}

// TestFileLowPriority: of a torrent's two files, the first low and the second normal,
// the pieces of the second (and the piece they share, normal as its higher file) are
// fetched first. With 4 pieces in progress at most, when the first low piece starts every
// normal one has started and all but 3 are written: so at least 38 of the 41 normal
// pieces are written before any low one (in practice all 41).
func TestFileLowPriority(t *testing.T) {
	checkGoroutines(t)
	const plen = 16 << 10
	tor := stagetest.NewTorrent(t, 95, "lowfirst", plen, 650_000, 650_000) // 80 pieces, 39 shared
	info := &tor.Meta.Info
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	store := &writeOrder{MemStorage: stagetest.NewMemStorage(info.Length), plen: plen}
	err, _ := run(t, tor, 60*time.Second, pipeline.WithPeerSource(stages.StaticPeers{peer.Addr()}), pipeline.WithStorage(store),
		withConfig(pipeline.Config{NoPex: true, MaxInFlight: 1}), // 4 pieces in progress at most
		pipeline.WithFilePriorities(func(i int, _ metainfo.File) pipeline.FilePriority {
			return []pipeline.FilePriority{pipeline.FileLow, pipeline.FileNormal}[i]
		}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("bytes differ from the payload")
	}
	lowOnly := func(i int) bool { return info.PieceOffset(i)+info.PieceSize(i) <= 650_000 }
	normal, before := 0, -1
	for _, i := range store.pieces {
		if !lowOnly(i) {
			normal++
		} else if before < 0 {
			before = normal
		}
	}
	if normal != 41 || len(store.pieces) != 80 {
		t.Fatalf("%d pieces written, %d of them normal; want 80 and 41", len(store.pieces), normal)
	}
	if before < normal-3 {
		t.Errorf("the first low piece was written after %d normal pieces, want at least %d of %d: order %v", before, normal-3, normal, store.pieces)
	}
	t.Logf("normal pieces written before the first low one: %d of %d", before, normal)
}
