package pipeline_test

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestPexFindsSeeder: the leecher is given one peer, which has no data but tells it of a
// seeder over ut_pex (BEP 11); the leecher dials the seeder and completes. Without PEX it
// could not: nothing else names the seeder.
func TestPexFindsSeeder(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 51, "pex", 32<<10, 300_001)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seedCtx, stopSeed := context.WithCancel(ctx)
	defer func() { stopSeed() }()
	seeder := startNode(t, seedCtx, tor, filled(t, tor), pipeline.Config{Seed: true, Recheck: true, NoPex: true}, netip.MustParseAddrPort("127.0.0.1:1"))
	offered := make(chan bool, 1)
	teller := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake,
		stagetest.PexPeer([]netip.AddrPort{seeder.addr}, offered, nil))
	leecher := startNode(t, ctx, tor, stagetest.NewMemStorage(tor.Meta.Info.Length), pipeline.Config{}, teller.Addr())
	if err := <-leecher.done; err != nil {
		t.Fatalf("leecher Run() = %v", err)
	}
	if !<-offered {
		t.Error("the leecher's extended handshake did not offer ut_pex")
	}
	if !bytes.Equal(leecher.store.Bytes(), tor.Data) {
		t.Fatal("leecher's bytes differ from the payload")
	}
	stopSeed()
	<-seeder.done
}

// TestPexTellsPeers: a seeder that dialed two peers tells each of them of the other over
// ut_pex, as reachable (it connected to them), within a few of its PEX rounds.
func TestPexTellsPeers(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 52, "pex", 32<<10, 100_000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen1, seen2 := make(chan wire.Pex, 16), make(chan wire.Pex, 16)
	f1 := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake, stagetest.PexPeer(nil, nil, seen1))
	f2 := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake, stagetest.PexPeer(nil, nil, seen2))
	seedCtx, stopSeed := context.WithCancel(ctx)
	seeder := startNode(t, seedCtx, tor, filled(t, tor), pipeline.Config{Seed: true, Recheck: true, PexInterval: 20 * time.Millisecond},
		f1.Addr(), f2.Addr())
	for _, c := range []struct {
		seen  chan wire.Pex
		other netip.AddrPort
	}{{seen1, f2.Addr()}, {seen2, f1.Addr()}} {
		for told := false; !told; {
			select {
			case p := <-c.seen:
				told = slices.ContainsFunc(p.Added, func(a wire.PexPeer) bool {
					return a.Addr == c.other && a.Flags&wire.PexReachable != 0
				})
			case <-ctx.Done():
				t.Fatalf("no ut_pex message added %v", c.other)
			}
		}
	}
	stopSeed()
	if err := <-seeder.done; err != nil {
		t.Errorf("seeder Run() = %v", err)
	}
}

// TestPexOffForPrivate: a private torrent (BEP 27) offers no ut_pex in its extended
// handshake (and pexMsg is not reached for an extension the session does not offer).
func TestPexOffForPrivate(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 53, "private", 32<<10, 100_000)
	tor.Meta.Info.Private = true // as if the info dictionary said private=1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	offered := make(chan bool, 1)
	f := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake, stagetest.PexPeer(nil, offered, nil))
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		pipeline.WithPeerSource(stages.StaticPeers{f.Addr()}),
		pipeline.WithConfig(pipeline.Config{NoListen: true, PexInterval: 20 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	select {
	case on := <-offered:
		if on {
			t.Error("a private torrent's extended handshake offered ut_pex")
		}
	case <-ctx.Done():
		t.Fatal("the fake peer never saw an extended handshake")
	}
	stop()
	<-done
}
