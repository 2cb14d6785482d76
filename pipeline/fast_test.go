package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// dropWatch records the run's events and closes dropped once the peer at addr is dropped.
type dropWatch struct {
	addr    netip.AddrPort
	dropped chan struct{}

	mu     sync.Mutex
	reason error
	fault  bool
	seen   bool
}

func watchDrop(addr netip.AddrPort) *dropWatch {
	return &dropWatch{addr: addr, dropped: make(chan struct{})}
}

func (w *dropWatch) event(e stages.Event) {
	d, ok := e.(stages.PeerDropped)
	if !ok || d.Addr != w.addr {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen {
		w.seen, w.reason, w.fault = true, d.Reason, d.Fault
		close(w.dropped)
	}
}

func (w *dropWatch) result() (reason error, fault, seen bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason, w.fault, w.seen
}

// TestFastChokeReject: a Fast seeder (BEP 6) chokes three times with requests outstanding
// and rejects them one by one. The requests stay ours until rejected, each reject gives
// one back, no block is requested twice before its reject, and the download completes.
// Our first message is have none: we start with no piece.
func TestFastChokeReject(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 61, "fastchoke", 32<<10, 4<<20+12345)
	st := &stagetest.FastStats{}
	seeder := stagetest.NewHostilePeer(t, tor, stagetest.FastHandshake, stagetest.FastChokeReject(st, 3, 2*time.Millisecond))
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	err, _ := run(t, tor, 60*time.Second, pipeline.WithStorage(store),
		pipeline.WithPeerSource(stages.StaticPeers{seeder.Addr()}),
		withConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil; the seeder's script ended with %v", err, seeder.Errs())
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if n := st.Chokes.Load(); n != 3 {
		t.Errorf("seeder choked %d times with requests outstanding, want 3", n)
	}
	if n := st.Rejected.Load(); n == 0 {
		t.Error("seeder rejected no request")
	}
	if n := st.Twice.Load(); n != 0 {
		t.Errorf("%d blocks requested again before their reject", n)
	}
	if id, ok := st.FirstID(); !ok || id != wire.HaveNone {
		t.Errorf("client's first message = %v (%v), want have none", id, ok)
	}
	t.Logf("requests %d, served %d, rejected %d", st.Requests.Load(), st.Served.Load(), st.Rejected.Load())
}

// TestFastAllowedFast: a Fast seeder that never unchokes but allows every piece fast
// (BEP 6) serves the whole download.
func TestFastAllowedFast(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 62, "allowedfast", 32<<10, 300_001)
	st := &stagetest.FastStats{}
	seeder := stagetest.NewHostilePeer(t, tor, stagetest.FastHandshake, stagetest.FastAllowedOnly(st))
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	err, _ := run(t, tor, 30*time.Second, pipeline.WithStorage(store),
		pipeline.WithPeerSource(stages.StaticPeers{seeder.Addr()}),
		withConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil; the seeder's script ended with %v", err, seeder.Errs())
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if n := st.Served.Load(); n == 0 {
		t.Error("the seeder served nothing")
	}
}

// TestFastProtocolErrors: a reject of a request never made (BEP 6: the peer SHOULD close
// the connection), and have all from a peer without the Fast bit (MUST close), drop the
// peer; the download completes from honest peers.
func TestFastProtocolErrors(t *testing.T) {
	tests := []struct {
		name   string
		greet  stagetest.Greeting
		script stagetest.Script
		want   error
	}{
		{"reject never requested", stagetest.FastHandshake, stagetest.FastRejectUnrequested, stages.ErrRejectUnrequested},
		{"have all without the fast bit", stagetest.RightHandshake, stagetest.HaveAllWithoutFast, stages.ErrFastOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			tor := stagetest.NewTorrent(t, 63, "fastbad", 32<<10, 300_001)
			bad := stagetest.NewHostilePeer(t, tor, tt.greet, tt.script)
			honest := addrs(stagetest.NewFakePeer(t, tor, stagetest.Honest), stagetest.NewFakePeer(t, tor, stagetest.Honest))
			w := watchDrop(bad.Addr())
			store := stagetest.NewMemStorage(tor.Meta.Info.Length)
			err, _ := run(t, tor, 30*time.Second, pipeline.WithStorage(store),
				pipeline.WithPeerSource(gatedPeers{first: []netip.AddrPort{bad.Addr()}, then: honest, gate: w.dropped}),
				pipeline.WithEvents(w.event),
				withConfig(pipeline.Config{NoListen: true, Dial: stages.DialConfig{RetryDelay: time.Hour}}))
			if err != nil {
				t.Fatalf("Run() = %v, want nil; hostile peer's errors: %v", err, bad.Errs())
			}
			if !bytes.Equal(store.Bytes(), tor.Data) {
				t.Fatal("downloaded bytes differ from the payload")
			}
			reason, fault, seen := w.result()
			if !seen || !errors.Is(reason, tt.want) || !fault {
				t.Errorf("PeerDropped = %v (fault %v, seen %v), want a fault wrapping %v", reason, fault, seen, tt.want)
			}
		})
	}
}

// TestFastRejectsWhileChoking: a Fast leecher that never says it is interested, and so is
// never unchoked, gets from a BitStorm seeder (whose first message is have all) its
// allowed fast set, BEP 6's canonical one for 127.0.0.1; a reject for each request
// outside it, and the block of each request inside it.
func TestFastRejectsWhileChoking(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 64, "fastseed", 16<<10, 600_001)
	const n = 5
	allowed := wire.AllowedFastSet(stages.AllowedFastSize, tor.Meta.Info.NumPieces(), tor.Meta.InfoHash, netip.MustParseAddr("127.0.0.1"))
	if len(allowed) != stages.AllowedFastSize || len(allowed)+n > tor.Meta.Info.NumPieces() {
		t.Fatalf("allowed fast set %v of a %d-piece torrent: the test needs %d pieces outside it", allowed, tor.Meta.Info.NumPieces(), n)
	}
	st := &stagetest.FastStats{}
	done := make(chan struct{})
	leecher := stagetest.NewHostilePeer(t, tor, stagetest.FastHandshake, stagetest.FastLeecher(st, n, allowed, done))
	listen := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := startNode(t, ctx, tor, filled(t, tor), pipeline.Config{ListenAddr: listen.String(), Seed: true, Recheck: true,
		NoPeersTimeout: time.Minute}, netip.MustParseAddrPort("127.0.0.1:1"))
	leecher.Dial(ctx, seeder.addr)
	select {
	case <-done:
	case err := <-seeder.done:
		t.Fatalf("seeder Run() = %v before the leecher's requests were rejected; its errors: %v", err, leecher.Errs())
	case <-ctx.Done():
		t.Fatalf("leecher's requests not all rejected (%d of %d); its errors: %v", st.Rejected.Load(), n, leecher.Errs())
	}
	cancel()
	<-seeder.done
	if id, ok := st.FirstID(); !ok || id != wire.HaveAll {
		t.Errorf("seeder's first message = %v (%v), want have all", id, ok)
	}
	if got := st.Rejected.Load(); got != n {
		t.Errorf("%d requests rejected, want %d", got, n)
	}
	if got := st.Received.Load(); got != int64(len(allowed)) {
		t.Errorf("%d blocks served while choked, want %d (the allowed fast set)", got, len(allowed))
	}
	if got := st.Allowed(); !slices.Equal(got, allowed) {
		t.Errorf("allowed fast messages %v, want BEP 6's set %v", got, allowed)
	}
}
