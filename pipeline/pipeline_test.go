package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// checkGoroutines fails the test when goroutines started during it are still running.
func checkGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines leaked:\n%s", n-base, buf[:runtime.Stack(buf, true)])
		}
	})
}

// runLog is what a run reported: its typed events, which tests assert on.
type runLog struct {
	eventLog
}

// run downloads tor with opts within timeout, recording its events (unless opts give
// their own WithEvents).
func run(t *testing.T, tor *stagetest.Torrent, timeout time.Duration, opts ...pipeline.Option) (error, *runLog) {
	t.Helper()
	rec := &runLog{}
	opts = append([]pipeline.Option{pipeline.WithEvents(rec.add),
		withConfig(pipeline.Config{})}, opts...)
	p, err := pipeline.New(tor.Meta, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Run(ctx), rec
}

// withConfig sets c, listening on an ephemeral loopback port unless c says otherwise.
func withConfig(c pipeline.Config) pipeline.Option {
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:0"
	}
	return pipeline.WithConfig(c)
}

func addrs(ps ...*stagetest.FakePeer) stages.StaticPeers {
	var out stages.StaticPeers
	for _, p := range ps {
		out = append(out, p.Addr())
	}
	return out
}

// TestDownloadAmongHostilePeers composes the stages against honest peers and three hostile
// ones: one that corrupts every block, one that never unchokes, one that hangs up mid-block.
func TestDownloadAmongHostilePeers(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 1, "hostile", 64<<10, 300_001, 17, 1<<20, 123_457)
	honest1 := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	honest2 := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	corrupt := stagetest.NewFakePeer(t, tor, stagetest.Corrupt)
	never := stagetest.NewFakePeer(t, tor, stagetest.NeverUnchoke)
	hangup := stagetest.NewFakePeer(t, tor, stagetest.HangUp)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)

	err, rec := run(t, tor, 60*time.Second,
		pipeline.WithPeerSource(addrs(corrupt, never, hangup, honest1, honest2)),
		pipeline.WithStorage(store),
		withConfig(pipeline.Config{Queue: 8}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if !store.Closed() {
		t.Error("storage was not closed")
	}
	banned := eventsOf(&rec.eventLog, func(e stages.PeerBanned) bool { return e.Addr == corrupt.Addr() })
	if corrupt.Served.Load() > 0 && len(banned) == 0 {
		t.Errorf("corrupt peer served %d blocks but was not banned; events:%s", corrupt.Served.Load(), peerEvents(&rec.eventLog))
	}
	if n := corrupt.Accepted.Load(); n != 1 {
		t.Errorf("corrupt peer was connected %d times, want 1 (banned peers are not redialed)", n)
	}
	// Its hang-up ends its session, a fault or not as the moment of the hang-up decides.
	if hangup.Served.Load() > 0 && len(eventsOf(&rec.eventLog, func(e stages.PeerDropped) bool { return e.Addr == hangup.Addr() })) == 0 {
		t.Errorf("hang-up peer's disconnect was not noticed; events:%s", peerEvents(&rec.eventLog))
	}
}

// TestDownloadToFiles writes a multi-file torrent through the default storage and checks the
// bytes of every file on disk, across piece boundaries that span files.
func TestDownloadToFiles(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 2, "multi", 32<<10, 10_000, 0, 70_000, 5, 200_000)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	dir := t.TempDir()
	err, _ := run(t, tor, 30*time.Second,
		pipeline.WithPeerSource(addrs(honest)),
		withConfig(pipeline.Config{OutDir: dir}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	checkPayloadFiles(t, dir, tor)
}

// TestStartupWithManyBadPeers is the prototype's hang: 150 addresses of which most are dead,
// mute or stalled, and five honest. The download must start and finish; the time to the
// first verified piece is logged.
func TestStartupWithManyBadPeers(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 3, "crowd", 64<<10, 4<<20)
	var src stages.StaticPeers
	for range 90 { // closed ports: connection refused
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, ln.Addr().(*net.TCPAddr).AddrPort())
		ln.Close()
	}
	for range 40 { // accept and never handshake
		src = append(src, stagetest.NewFakePeer(t, tor, stagetest.Mute).Addr())
	}
	for range 10 { // unchoke, then never send a block
		src = append(src, stagetest.NewFakePeer(t, tor, stagetest.Stall).Addr())
	}
	for range 5 {
		src = append(src, stagetest.NewFakePeer(t, tor, stagetest.NeverUnchoke).Addr())
	}
	for i := range 5 { // honest, two of them slow
		p := stagetest.NewFakePeer(t, tor, stagetest.Honest)
		if i < 2 {
			p.Delay = 2 * time.Millisecond
		}
		src = append(src, p.Addr())
	}
	if len(src) != 150 {
		t.Fatalf("built %d addresses, want 150", len(src))
	}
	// The honest peers come last: they wait behind every bad one.
	start := time.Now()
	first := make(chan time.Duration, 1)
	var once sync.Once
	firstPiece := func(e stages.Event) {
		if _, ok := e.(stages.PieceVerified); ok {
			once.Do(func() { first <- time.Since(start) })
		}
	}
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(src), pipeline.WithEvents(firstPiece),
		pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)), withConfig(pipeline.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	t.Logf("first verified piece after %v, complete after %v", <-first, time.Since(start))
}

// TestUnsolicitedBlockDropsPeer: a peer that sends a block we never asked for is dropped
// with that reason, and the download completes from the others.
func TestUnsolicitedBlockDropsPeer(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 4, "unsolicited", 32<<10, 256<<10)
	bad := stagetest.NewFakePeer(t, tor, stagetest.Unsolicited)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	err, rec := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(bad, honest)), pipeline.WithStorage(store))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	// Dropped for a fault of its own (its reason, "sent a block we did not request", wraps a
	// sentinel stages does not export).
	dropped := eventsOf(&rec.eventLog, func(e stages.PeerDropped) bool { return e.Addr == bad.Addr() && e.Fault })
	if bad.Served.Load() > 0 && len(dropped) == 0 {
		t.Errorf("peer sending unsolicited blocks was not dropped; events:%s", peerEvents(&rec.eventLog))
	}
}

// TestStalledPeerRequestsGoElsewhere: a peer that unchokes and then never answers holds
// requests; after SnubTimeout it is snubbed and its requests go to the honest peer, after
// SilentTimeout it is dropped; the download completes.
func TestStalledPeerRequestsGoElsewhere(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 5, "stall", 32<<10, 512<<10)
	stall := stagetest.NewFakePeer(t, tor, stagetest.Stall)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	honest.Delay = 5 * time.Millisecond // the download outlasts the snub timeout
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	err, rec := run(t, tor, 30*time.Second, pipeline.WithStorage(store), pipeline.WithPeerSource(addrs(stall, honest)),
		pipeline.WithPicker(stages.NewSequential(tor.Meta.Info.NumPieces())),
		withConfig(pipeline.Config{Request: stages.RequestConfig{SnubTimeout: 100 * time.Millisecond,
			SilentTimeout: 200 * time.Millisecond, Tick: 20 * time.Millisecond}}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	snubbed := func(p *stagetest.FakePeer) bool {
		return len(eventsOf(&rec.eventLog, func(e stages.PeerSnubbed) bool { return e.Addr == p.Addr() })) > 0
	}
	if !snubbed(stall) {
		t.Errorf("the stalled peer was not snubbed; events:%s", peerEvents(&rec.eventLog))
	}
	if snubbed(honest) {
		t.Errorf("the honest peer was snubbed; events:%s", peerEvents(&rec.eventLog))
	}
}

// TestCancelStopsPromptly: cancelling the context ends Run with context.Canceled, closes the
// storage and leaves no goroutine behind, while peers are connected and requests pending.
func TestCancelStopsPromptly(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 6, "cancel", 32<<10, 1<<20)
	slow := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	slow.Delay = 20 * time.Millisecond
	stall := stagetest.NewFakePeer(t, tor, stagetest.Stall)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	verified := make(chan struct{})
	var once sync.Once
	firstPiece := func(e stages.Event) {
		if _, ok := e.(stages.PieceVerified); ok {
			once.Do(func() { close(verified) })
		}
	}
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(slow, stall)), pipeline.WithStorage(store),
		pipeline.WithEvents(firstPiece), withConfig(pipeline.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-verified:
	case err := <-done:
		t.Fatalf("Run() = %v before a piece was verified", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no piece verified in 30s")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run() = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !store.Closed() {
		t.Error("storage was not closed")
	}
	// Verified pieces stay: every piece the stats counted is in storage.
	st := p.Stats()
	got := store.Bytes()
	n := 0
	for i := range tor.Meta.Info.NumPieces() {
		off, size := tor.Meta.Info.PieceOffset(i), tor.Meta.Info.PieceSize(i)
		if bytes.Equal(got[off:off+size], tor.Data[off:off+size]) {
			n++
		}
	}
	if n < st.Pieces {
		t.Errorf("%d pieces in storage, stats say %d verified", n, st.Pieces)
	}
}

// TestTrackerUnreachable: with a tracker that refuses connections the run fails with
// ErrTrackerUnreachable after its retries.
func TestTrackerUnreachable(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 7, "notracker", 32<<10, 64<<10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/announce"
	ln.Close()
	src := &stages.Tracker{Tiers: [][]string{{url}}, MaxFailures: 3, Backoff: 10 * time.Millisecond}
	err, _ = run(t, tor, 30*time.Second, pipeline.WithPeerSource(src), pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)))
	if !errors.Is(err, stages.ErrTrackerUnreachable) || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("Run() = %v, want tracker unreachable after 3 attempts", err)
	}
}

// TestTrackerLifecycle: peers come from the tracker, and it hears started, completed and
// stopped, in that order.
func TestTrackerLifecycle(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 8, "tracked", 32<<10, 300_000)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	tr := stagetest.NewFakeTracker(t, honest.Addr(), honest.Addr())
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(&stages.Tracker{Tiers: [][]string{{tr.URL()}}}), pipeline.WithStorage(store))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if got, want := tr.Events(), []string{"started", "completed", "stopped"}; !slices.Equal(got, want) {
		t.Errorf("tracker events = %q, want %q", got, want)
	}
	if n := honest.Accepted.Load(); n != 1 {
		t.Errorf("peer listed twice was connected %d times, want 1", n)
	}
}

// TestNoPeers: a run whose only peer is dead fails with ErrNoPeers, and says so in one
// Failed event.
func TestNoPeers(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 9, "nopeers", 32<<10, 64<<10)
	dead := netip.MustParseAddrPort("127.0.0.1:1")
	err, rec := run(t, tor, 30*time.Second, pipeline.WithPeerSource(stages.StaticPeers{dead}),
		pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		withConfig(pipeline.Config{NoPeersTimeout: 1500 * time.Millisecond}))
	if !errors.Is(err, pipeline.ErrNoPeers) {
		t.Fatalf("Run() = %v, want ErrNoPeers", err)
	}
	wantFailed(t, rec, err)
}

// wantFailed fails unless rec holds one Failed event, with err.
func wantFailed(t *testing.T, rec *runLog, err error) {
	t.Helper()
	failed := eventsOf(&rec.eventLog, func(stages.Failed) bool { return true })
	if len(failed) != 1 || failed[0].Err != err {
		t.Errorf("Failed events %v, want one with Run's error %v", failed, err)
	}
}

// TestDiskErrorIsFatal: a storage that fails writes ends the run with a disk error.
func TestDiskErrorIsFatal(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 10, "diskerr", 32<<10, 256<<10)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	err, rec := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(honest)),
		pipeline.WithStorage(stagetest.NewMemStorage(1000))) // too small: every write fails
	if err == nil || !strings.Contains(err.Error(), "disk error") {
		t.Fatalf("Run() = %v, want a disk error", err)
	}
	wantFailed(t, rec, err)
}
