package pipeline_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

// freeAddrOn returns host with a port that was free on it a moment ago.
func freeAddrOn(t *testing.T, host string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// filled returns storage holding the whole payload of tor.
func filled(t *testing.T, tor *stagetest.Torrent) *stagetest.MemStorage {
	st := stagetest.NewMemStorage(tor.Meta.Info.Length)
	if _, err := st.WriteAt(tor.Data, 0); err != nil {
		t.Fatal(err)
	}
	return st
}

// node is one BitStorm client of an in-process swarm.
type node struct {
	p     *pipeline.Pipeline
	store *stagetest.MemStorage
	addr  netip.AddrPort
	done  chan error
}

func startNode(t *testing.T, ctx context.Context, tor *stagetest.Torrent, store *stagetest.MemStorage, cfg pipeline.Config, peers ...netip.AddrPort) *node {
	t.Helper()
	n := &node{store: store, done: make(chan error, 1)}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = freeAddr(t).String()
	}
	n.addr = netip.MustParseAddrPort(cfg.ListenAddr)
	cfg.Request.ChokeRound = 200 * time.Millisecond
	opts := []pipeline.Option{pipeline.WithConfig(cfg), pipeline.WithStorage(store),
		pipeline.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))}
	if len(peers) > 0 { // otherwise the torrent's trackers
		opts = append(opts, pipeline.WithPeerSource(stages.StaticPeers(peers)))
	}
	p, err := pipeline.New(tor.Meta, opts...)
	if err != nil {
		t.Fatal(err)
	}
	n.p = p
	go func() { n.done <- p.Run(ctx) }()
	// Wait for the listener, so that peers started next can dial this one at once.
	for {
		c, err := net.Dial("tcp", n.addr.String())
		if err == nil {
			c.Close()
			return n
		}
		select {
		case err := <-n.done:
			t.Fatalf("node stopped before listening: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestSeedToLeecher: a BitStorm seeder (its data found by recheck) uploads the whole torrent
// to a BitStorm leecher that dials it.
func TestSeedToLeecher(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 20, "seeded", 64<<10, 700_001, 300_000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seedCtx, stopSeed := context.WithCancel(ctx)
	seeder := startNode(t, seedCtx, tor, filled(t, tor), pipeline.Config{Seed: true, Recheck: true})
	leecher := startNode(t, ctx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length), pipeline.Config{}, seeder.addr)
	if err := <-leecher.done; err != nil {
		t.Fatalf("leecher Run() = %v", err)
	}
	if !bytes.Equal(leecher.store.Bytes(), tor.Data) {
		t.Fatal("leecher's bytes differ from the payload")
	}
	if up := seeder.p.Stats().Uploaded; up < tor.Meta.Info.Length {
		t.Errorf("seeder uploaded %d bytes, want at least %d", up, tor.Meta.Info.Length)
	}
	stopSeed()
	if err := <-seeder.done; err != nil {
		t.Errorf("seeder Run() after stop = %v, want nil (it was complete)", err)
	}
}

// TestIPv6Peers: a BitStorm seeder listening on [::1] uploads the torrent to a BitStorm
// leecher that dials it there, and the leecher, listening on [::1] too, takes an incoming
// IPv6 peer that seeds to it.
func TestIPv6Peers(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 24, "six", 32<<10, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seedCtx, stopSeed := context.WithCancel(ctx)
	defer stopSeed()
	seeder := startNode(t, seedCtx, tor, filled(t, tor), pipeline.Config{Seed: true, Recheck: true,
		ListenAddr: freeAddrOn(t, "::1").String()})
	leecher := startNode(t, ctx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length),
		pipeline.Config{ListenAddr: freeAddrOn(t, "::1").String()}, seeder.addr)
	if err := <-leecher.done; err != nil {
		t.Fatalf("leecher Run() = %v", err)
	}
	if !bytes.Equal(leecher.store.Bytes(), tor.Data) {
		t.Fatal("leecher's bytes differ from the payload")
	}
	if up := seeder.p.Stats().Uploaded; up < tor.Meta.Info.Length {
		t.Errorf("seeder on [::1] uploaded %d bytes, want at least %d", up, tor.Meta.Info.Length)
	}

	// An IPv6 peer dials in and seeds.
	st := stagetest.NewMemStorage(tor.Meta.Info.Length)
	incoming := startNode(t, ctx, tor, st, pipeline.Config{ListenAddr: freeAddrOn(t, "::1").String()})
	dialer := stagetest.NewHostilePeer(t, tor, stagetest.RightHandshake, stagetest.Seed)
	dialer.Dial(ctx, incoming.addr)
	if err := <-incoming.done; err != nil {
		t.Fatalf("Run() with an incoming IPv6 seeder = %v", err)
	}
	if !bytes.Equal(st.Bytes(), tor.Data) {
		t.Fatal("bytes from the incoming IPv6 peer differ from the payload")
	}
	dialer.Close()
}

// TestLeechersFinishAfterSeederLeaves: two BitStorm leechers download from a seeder that
// shows each of them half the pieces and leaves once each has its half; they finish by
// exchanging the other halves.
func TestLeechersFinishAfterSeederLeaves(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 21, "exchange", 32<<10, 8<<20)
	n := tor.Meta.Info.NumPieces()
	seeder := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	seeder.Split = 2
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The leechers seed on after completing, so that the first to finish still serves the
	// other; the test stops them once both are complete.
	leechCtx, stopLeechers := context.WithCancel(ctx)
	a := startNode(t, leechCtx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length), pipeline.Config{Seed: true}, seeder.Addr())
	if !seeder.WaitAccepted(ctx, 1) { // a is the seeder's first connection: even pieces
		t.Fatal("the seeder accepted no connection")
	}
	b := startNode(t, leechCtx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length), pipeline.Config{Seed: true}, seeder.Addr(), a.addr)
	for union(a.p.Have(), b.p.Have(), n) < n {
		select {
		case <-ctx.Done():
			t.Fatal("the leechers never got their halves from the seeder")
		case <-time.After(time.Millisecond):
		}
	}
	seeder.Close()
	t.Logf("seeder left with a holding %d and b %d of %d pieces", a.p.Stats().Pieces, b.p.Stats().Pieces, n)
	for a.p.Stats().Pieces < n || b.p.Stats().Pieces < n {
		select {
		case <-ctx.Done():
			t.Fatalf("leechers stuck at %d and %d of %d pieces", a.p.Stats().Pieces, b.p.Stats().Pieces, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
	stopLeechers()
	for name, nd := range map[string]*node{"a": a, "b": b} {
		if err := <-nd.done; err != nil {
			t.Fatalf("leecher %s Run() = %v", name, err)
		}
		if !bytes.Equal(nd.store.Bytes(), tor.Data) {
			t.Fatalf("leecher %s's bytes differ from the payload", name)
		}
	}
	half := tor.Meta.Info.Length / 2
	if up := a.p.Stats().Uploaded; up < half-tor.Meta.Info.PieceLength {
		t.Errorf("a uploaded %d bytes, want about half the torrent (%d) to b", up, half)
	}
	if up := b.p.Stats().Uploaded; up < half-tor.Meta.Info.PieceLength {
		t.Errorf("b uploaded %d bytes, want about half the torrent (%d) to a", up, half)
	}
}

func union(a, b wire.Bitfield, n int) int {
	u := 0
	for i := range n {
		if a.Has(i) || b.Has(i) {
			u++
		}
	}
	return u
}

// TestResumeAfterInterrupt: a download cancelled midway leaves a resume record; the same
// download started again trusts it and fetches only what is missing.
func TestResumeAfterInterrupt(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 22, "resumed", 32<<10, 1<<20, 333_333)
	dir := t.TempDir()
	first := interruptedRun(t, tor, dir, 50*time.Millisecond).Pieces
	rec, err := resume.Load(resume.Path(dir, tor.Meta.InfoHash), &tor.Meta.Info, tor.Meta.InfoHash)
	if err != nil {
		t.Fatalf("no resume record after the interrupt: %v", err)
	}
	if rec.Pieces.Count() != first {
		t.Fatalf("record lists %d pieces, the run verified %d", rec.Pieces.Count(), first)
	}

	err, p2, rec2 := runInDir(t, tor, dir, stagetest.NewFakePeer(t, tor, stagetest.Honest))
	if err != nil {
		t.Fatalf("second Run() = %v", err)
	}
	if got, want := eventsOf(&rec2.eventLog, func(stages.Resumed) bool { return true }), (stages.Resumed{Pieces: first, FromRecord: true}); len(got) != 1 || got[0] != want {
		t.Errorf("second run's Resumed events %+v, want one %+v", got, want)
	}
	if got, max := p2.Stats().Downloaded, missingBytes(&tor.Meta.Info, rec.Pieces); got > max {
		t.Errorf("second run downloaded %d bytes, want at most the %d missing", got, max)
	}
	checkPayloadFiles(t, dir, tor)
}

// TestRecheckAfterCrash: files written after the last record (as after kill -9) make the
// record untrusted; the data is rechecked, a corrupted piece is found and fetched again.
func TestRecheckAfterCrash(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 23, "crashed", 32<<10, 600_000)
	dir := t.TempDir()
	name := filepath.Join(dir, "crashed")
	// Everything on disk, but byte 40000 (piece 1) is wrong, and the record, from an earlier
	// moment, claims nothing.
	data := bytes.Clone(tor.Data)
	data[40000] ^= 1
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	var events eventLog
	p, err := pipeline.New(tor.Meta, pipeline.WithConfig(pipeline.Config{OutDir: dir, ListenAddr: "127.0.0.1:0"}),
		pipeline.WithPeerSource(addrs(honest)), pipeline.WithEvents(events.add))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if got, want := eventsOf(&events, func(stages.Resumed) bool { return true }), (stages.Resumed{Pieces: tor.Meta.Info.NumPieces() - 1}); len(got) != 1 || got[0] != want {
		t.Errorf("Resumed events %+v, want one %+v: a recheck", got, want)
	}
	if got := p.Stats().Downloaded; got != tor.Meta.Info.PieceSize(1) {
		t.Errorf("downloaded %d bytes, want only the corrupted piece's %d", got, tor.Meta.Info.PieceSize(1))
	}
	got, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(got, tor.Data) {
		t.Fatalf("file differs from the payload after the recheck (err %v)", err)
	}
}

// TestSeedRatioEndsSeeding: a seeder with SeedRatio 1 stops by itself, with nil, once it
// has uploaded one copy; one with SeedTime stops after that time.
func TestSeedRatioEndsSeeding(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 24, "ratio", 32<<10, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := startNode(t, ctx, tor, filled(t, tor), pipeline.Config{SeedRatio: 1, Recheck: true})
	leecher := startNode(t, ctx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length), pipeline.Config{}, seeder.addr)
	if err := <-leecher.done; err != nil {
		t.Fatalf("leecher Run() = %v", err)
	}
	select {
	case err := <-seeder.done:
		if err != nil {
			t.Fatalf("seeder Run() = %v, want nil at ratio 1", err)
		}
	case <-ctx.Done():
		t.Fatal("seeder did not stop at ratio 1")
	}
	if up := seeder.p.Stats().Uploaded; up < tor.Meta.Info.Length {
		t.Errorf("seeder stopped after uploading %d of %d bytes", up, tor.Meta.Info.Length)
	}

	timed := startNode(t, ctx, tor, filled(t, tor), pipeline.Config{SeedTime: 300 * time.Millisecond, Recheck: true})
	select {
	case err := <-timed.done:
		if err != nil {
			t.Fatalf("seeder Run() = %v, want nil after its seed time", err)
		}
	case <-ctx.Done():
		t.Fatal("seeder did not stop after its seed time")
	}
}

// TestSeedTimeThenStop: a download with SeedTime seeds on after completing, then ends with
// nil on its own; the tracker hears started, completed and, last, stopped.
func TestSeedTimeThenStop(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 25, "seedtime", 32<<10, 200_000)
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	tr := stagetest.NewFakeTracker(t, peer.Addr())
	tor = tor.WithAnnounce(t, tr.URL())
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	const seedTime = time.Second
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(store), withConfig(pipeline.Config{SeedTime: seedTime}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil once the seed time is over", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	// The download takes milliseconds; a run that ended sooner than the seed time did not seed.
	if took := time.Since(start); took < seedTime {
		t.Errorf("Run() returned after %v, before the seed time of %v was over", took, seedTime)
	}
	ev := tr.Events()
	if len(ev) < 3 || ev[0] != "started" || ev[len(ev)-1] != "stopped" || !slices.Contains(ev, "completed") {
		t.Fatalf("tracker events = %q, want started, completed, ..., stopped", ev)
	}
	// BEP 3: left counts down from the whole size; downloaded counts what came in.
	size := tor.Meta.Info.Length
	for _, a := range tr.Announces() {
		switch a.Event {
		case "started":
			if a.Left != size || a.Downloaded != 0 || a.Uploaded != 0 {
				t.Errorf("started announce %+v, want left %d, nothing downloaded or uploaded", a, size)
			}
		case "completed", "stopped":
			if a.Left != 0 || a.Downloaded < size {
				t.Errorf("%s announce %+v, want left 0 and at least %d downloaded", a.Event, a, size)
			}
		}
	}
}

// TestSeedRatioThenStop: a leecher with SeedRatio 1 finishes, serves a second leecher that
// knows only it, and ends with nil once it has uploaded the torrent's size, which its
// last announce reports.
func TestSeedRatioThenStop(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 26, "ratio", 32<<10, 1<<20)
	origin := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	tr := stagetest.NewFakeTracker(t, origin.Addr())
	tor = tor.WithAnnounce(t, tr.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startNode(t, ctx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length), pipeline.Config{SeedRatio: 1})
	b := startNode(t, ctx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length), pipeline.Config{}, a.addr)
	if err := <-b.done; err != nil {
		t.Fatalf("second leecher Run() = %v", err)
	}
	if !bytes.Equal(b.store.Bytes(), tor.Data) {
		t.Fatal("the second leecher's bytes differ from the payload")
	}
	if err := <-a.done; err != nil {
		t.Fatalf("Run() with SeedRatio 1 = %v, want nil once the ratio is reached", err)
	}
	if up := a.p.Stats().Uploaded; up < tor.Meta.Info.Length {
		t.Errorf("the seeding leecher stopped after uploading %d bytes, before the ratio of 1 (%d)", up, tor.Meta.Info.Length)
	}
	if !bytes.Equal(a.store.Bytes(), tor.Data) {
		t.Error("the first leecher's bytes differ from the payload")
	}
	ann := tr.Announces()
	if last := ann[len(ann)-1]; last.Event != "stopped" || last.Uploaded < tor.Meta.Info.Length || last.Left != 0 {
		t.Errorf("last announce %+v, want stopped with left 0 and at least %d uploaded", last, tor.Meta.Info.Length)
	}
}
