package pipeline_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/reugn/go-streams"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestPeers: Pipeline.Peers shows the connected peer as its session sees it: its
// address, the client its peer id names (BEP 20), a dialed and plain connection, its
// share of the pieces, the choke and interest both ways, and once its pieces are here
// exactly their bytes downloaded, at a rate; and nothing once the run has ended.
func TestPeers(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 131, "peers", 16<<10, 20*16<<10)
	n := tor.Meta.Info.NumPieces()
	gate := make(chan struct{})
	seeder := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	seeder.Split = 2 // it has the even pieces only: the download cannot end, and the session stays
	seeder.Gate = gate
	verified := make(chan int, n)
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(originPeers{seeder.Addr(), stages.FromPEX}),
		pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		pipeline.WithEvents(func(e stages.Event) {
			if v, ok := e.(stages.PieceVerified); ok {
				verified <- v.Piece
			}
		}),
		withConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Peers(); got != nil {
		t.Fatalf("Peers() before Run = %v, want none", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// Choked by the gate, and interested: it has pieces we lack.
	waitPeers := func(what string, ok func(stages.PeerSnapshot) bool) stages.PeerSnapshot {
		t.Helper()
		for {
			ps := p.Peers()
			if len(ps) == 1 && ok(ps[0]) {
				return ps[0]
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: Peers() still %+v", what, ps)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	ps := waitPeers("interested and choked", func(ps stages.PeerSnapshot) bool { return ps.Interested && ps.Choked })
	half := (n + 1) / 2
	if ps.From != stages.FromPEX {
		t.Errorf("the seeder's origin %v, want FromPEX: the source's", ps.From)
	}
	if ps.Addr != seeder.Addr() || ps.Client != "FK 0.0.0.1" || ps.Incoming || ps.Encrypted ||
		ps.Have != half || ps.Progress != float64(half)/float64(n) || !ps.PeerChoked || ps.PeerInterested ||
		ps.Downloaded != 0 || ps.Uploaded != 0 || ps.DownRate != 0 || ps.Since.IsZero() {
		t.Errorf("the gated seeder: %+v, want %v, client FK 0.0.0.1 (-FK0001-), dialed, plain, %d of %d pieces, choked by us, nothing moved",
			ps, seeder.Addr(), half, n)
	}

	close(gate)
	for range half {
		select {
		case <-verified:
		case <-ctx.Done():
			t.Fatalf("the seeder's %d pieces did not all arrive", half)
		}
	}
	var want int64
	for i := 0; i < n; i += 2 {
		want += tor.Meta.Info.PieceSize(i)
	}
	ps = waitPeers("its pieces downloaded", func(ps stages.PeerSnapshot) bool { return !ps.Choked })
	if ps.Downloaded != want || ps.DownRate <= 0 || ps.Uploaded != 0 || ps.UpRate != 0 {
		t.Errorf("after its %d pieces: downloaded %d at %g B/s, uploaded %d at %g B/s; want %d bytes at a rate, none up",
			half, ps.Downloaded, ps.DownRate, ps.Uploaded, ps.UpRate, want)
	}
	cancel()
	<-done
	if got := p.Peers(); got != nil {
		t.Errorf("Peers() after Run = %+v, want none", got)
	}
}

// TestPeersUpload: a seeder's snapshot of a leecher that dialed it shows it incoming,
// interested and unchoked, the bytes sent to it at a rate, and the name its BEP 10
// handshake gives; the leecher sees the seeder dialed, with every piece.
func TestPeersUpload(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 132, "upload", 16<<10, 40*16<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seeder := startNode(t, ctx, tor, filled(t, tor), pipeline.Config{Seed: true, Recheck: true})
	// The leecher's writes wait: it stays a leecher, connected, whatever the machine's speed.
	store := newGatedStorage(t, tor.Meta.Info.Length)
	leecher, err := pipeline.New(tor.Meta, pipeline.WithStorage(store),
		pipeline.WithPeerSource(stages.StaticPeers{seeder.addr}), withConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- leecher.Run(ctx) }()

	var ps stages.PeerSnapshot
	for {
		got := seeder.p.Peers()
		if len(got) == 1 && got[0].Uploaded > 0 {
			ps = got[0]
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the seeder never uploaded to the leecher; its peers: %+v", got)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !ps.Incoming || ps.Addr.Addr() != seeder.addr.Addr() || ps.Client != stages.ClientName || !ps.PeerInterested ||
		ps.PeerChoked || ps.Uploaded%(16<<10) != 0 || ps.UpRate <= 0 || ps.Downloaded != 0 || ps.Interested || ps.Progress >= 1 {
		t.Errorf("the seeder's view of the leecher: %+v; want incoming from 127.0.0.1, client %q, interested and unchoked, whole blocks sent at a rate, nothing received, not complete",
			ps, stages.ClientName)
	}
	if ps.From != stages.FromIncoming {
		t.Errorf("the leecher's origin at the seeder %v, want FromIncoming", ps.From)
	}
	lp := leecher.Peers()
	if len(lp) == 1 && lp[0].From != stages.FromSource {
		t.Errorf("the seeder's origin at the leecher %v, want FromSource (StaticPeers names no source)", lp[0].From)
	}
	if len(lp) != 1 || lp[0].Addr != seeder.addr || lp[0].Incoming || lp[0].Client != stages.ClientName || lp[0].Progress != 1 ||
		!lp[0].Interested {
		t.Errorf("the leecher's view of the seeder: %+v; want %v dialed, client %q, every piece, interested", lp, seeder.addr, stages.ClientName)
	}
	cancel()
	store.release()
	<-done
	<-seeder.done
}

// originPeers is a PeerSource of one address that says where it found it, as the
// tracker, DHT and PEX sources do.
type originPeers struct {
	addr netip.AddrPort
	from stages.PeerOrigin
}

func (o originPeers) Open(ctx context.Context, _ *stages.Swarm) streams.Source {
	out := make(chan any, 1)
	out <- &stages.PeerAddr{Addr: o.addr, From: o.from}
	go func() {
		<-ctx.Done()
		close(out)
	}()
	return stages.NewSource(out)
}
