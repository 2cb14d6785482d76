package pipeline_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// scalePeers is how many seeders the scale test and benchmark connect to at once (issue 5).
const scalePeers = 200

// scaleConfig raises the connection limit past scalePeers: the default of 50 would leave
// three quarters of the seeders waiting in the dial queue.
func scaleConfig() pipeline.Option {
	return withConfig(pipeline.Config{MaxPeers: scalePeers + 56})
}

// peerWatch samples the pipeline's connected peers every millisecond until stopped.
type peerWatch struct {
	mu      sync.Mutex
	peak    int
	reached time.Duration // since start, when the peak was first reached
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func watchPeers(p *pipeline.Pipeline) *peerWatch {
	w := &peerWatch{stop: make(chan struct{})}
	start := time.Now()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if n := p.Stats().Peers; n > w.Peak() {
				w.mu.Lock()
				w.peak, w.reached = n, time.Since(start)
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// Peak is the most peers seen connected at once so far.
func (w *peerWatch) Peak() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// Stop ends the sampling (once; later calls only report) and returns the peak and when it
// was first reached.
func (w *peerWatch) Stop() (int, time.Duration) {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
	return w.peak, w.reached
}

// TestScale200Peers downloads 32 MiB from 200 in-process seeders connected at once. The
// seeders hold their unchoke until the pipeline counts all 200 connected, so that the peak
// is reached whatever the machine's speed; then the bytes must match, every seeder must have
// been connected and half must have served, and no goroutine may outlive the run. How fast
// 200 peers start and what they cost in CPU is BenchmarkScale200Peers' business: no timing
// is asserted here.
func TestScale200Peers(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 50, "scale", 64<<10, 32<<20)
	gate := make(chan struct{})
	peers := make([]*stagetest.FakePeer, scalePeers)
	for i := range peers {
		peers[i] = stagetest.NewFakePeer(t, tor, stagetest.Honest)
		peers[i].Gate = gate
	}
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	ev := &eventLog{}
	p, err := pipeline.New(tor.Meta, pipeline.WithEvents(ev.add), pipeline.WithStorage(store),
		pipeline.WithPeerSource(addrs(peers...)), scaleConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := watchPeers(p)
	defer w.Stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// The assertion that 200 were connected at once: the download cannot start before.
	for w.Peak() < scalePeers {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v before %d peers were connected (peak %d)", err, scalePeers, w.Peak())
		case <-ctx.Done():
			close(gate)
			<-done
			t.Fatalf("only %d of %d peers connected at once before the deadline", w.Peak(), scalePeers)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(gate)
	err = <-done
	peak, _ := w.Stop()
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	var idle []string
	redials := 0
	for _, fp := range peers {
		switch n := fp.Accepted.Load(); {
		case n == 0:
			t.Errorf("peer %v was never connected", fp.Addr())
		case n > 1:
			redials++
		}
		if fp.Served.Load() == 0 {
			idle = append(idle, fp.Addr().String())
		}
	}
	// Every seeder has every piece, and the scheduler owes none of them a block: one whose
	// unchoke lands after the others took every block (and the endgame's duplicates) rightly
	// gets nothing, which under -race on a busy machine is a tenth of them or more. Half must
	// serve, or the download did not spread over the crowd.
	t.Logf("peak %d peers connected; %d of %d served blocks; %d connected more than once",
		peak, scalePeers-len(idle), scalePeers, redials)
	if len(idle) > scalePeers/2 {
		t.Errorf("%d of %d peers served no block: %v", len(idle), scalePeers, idle)
	}
	// Honest seeders give no cause to drop or ban one, nor a piece that fails its hash.
	faults := eventsOf(ev, func(e stages.PeerDropped) bool { return e.Fault })
	bans := eventsOf(ev, func(stages.PeerBanned) bool { return true })
	failed := eventsOf(ev, func(stages.PieceFailed) bool { return true })
	if len(faults)+len(bans)+len(failed) > 0 {
		t.Errorf("%d peers dropped for a fault, %d banned, %d pieces failed: %+v %+v %+v",
			len(faults), len(bans), len(failed), faults, bans, failed)
	}
}

// BenchmarkScale200Peers downloads 32 MiB from 200 in-process honest seeders, connected as
// fast as the pipeline dials them: MB/s is the download rate, first-piece-ms and
// all-peers-ms say how slowly it starts, CPU-s/GiB what 200 sessions cost. The seeders run
// in the same process, so the CPU counts both sides (see BenchmarkDownload).
func BenchmarkScale200Peers(b *testing.B) {
	tor := stagetest.NewTorrent(b, 50, "scale", 64<<10, 32<<20)
	peers := make([]*stagetest.FakePeer, scalePeers)
	for i := range peers {
		peers[i] = stagetest.NewFakePeer(b, tor, stagetest.Honest)
	}
	b.SetBytes(tor.Meta.Info.Length)
	b.ReportAllocs()
	var peakSum, reachedAll int
	var allPeers, firstPiece time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		var start time.Time // set before Run, which starts the goroutines that emit
		first := make(chan time.Duration, 1)
		var once sync.Once
		onEvent := func(e stages.Event) {
			if _, ok := e.(stages.PieceVerified); ok {
				once.Do(func() { first <- time.Since(start) })
			}
		}
		p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(peers...)), pipeline.WithStorage(discard{}),
			pipeline.WithEvents(onEvent), scaleConfig())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		w := watchPeers(p)
		start = time.Now()
		err = p.Run(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		peak, reached := w.Stop()
		peakSum += peak
		if peak >= scalePeers {
			allPeers += reached
			reachedAll++
		}
		firstPiece += <-first
	}
	n := float64(b.N)
	gib := n * float64(tor.Meta.Info.Length) / (1 << 30)
	b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "CPU-s/GiB")
	b.ReportMetric(float64(peakSum)/n, "peak-peers")
	if reachedAll > 0 { // averaged over the runs that had all of them connected at once
		b.ReportMetric(float64(allPeers.Milliseconds())/float64(reachedAll), "all-peers-ms")
	}
	b.ReportMetric(float64(firstPiece.Milliseconds())/n, "first-piece-ms")
}
