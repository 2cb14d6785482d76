package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestMagnetFromSeeder: a magnet link with one x.pe peer, a BitStorm seeder. The metadata
// comes from the seeder over ut_metadata (BEP 9), is kept beside the resume record, and
// the piece graph built from it downloads the right bytes; the same link run again takes
// the metadata from disk and asks no peer.
func TestMagnetFromSeeder(t *testing.T) {
	checkGoroutines(t)
	// 1100 pieces: 22 KB of hashes, so the info dictionary takes two metadata pieces.
	tor := stagetest.NewTorrent(t, 31, "magnetic", 16<<10, 1100<<14-7, 77)
	if n, err := wire.MetadataPieces(len(tor.Meta.RawInfo)); err != nil || n < 2 {
		t.Fatalf("info dictionary of %d bytes is %d metadata pieces (%v), want at least 2", len(tor.Meta.RawInfo), n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seedCtx, stopSeed := context.WithCancel(ctx)
	seeder := startNode(t, seedCtx, tor, filled(t, tor), pipeline.Config{Seed: true, Recheck: true})
	out := t.TempDir()
	mag := &magnet.Magnet{InfoHash: tor.Meta.InfoHash, Peers: []netip.AddrPort{seeder.addr}}
	m, err := pipeline.FetchMetadata(ctx, mag, pipeline.WithConfig(pipeline.Config{OutDir: out, NoListen: true}))
	if err != nil {
		t.Fatalf("FetchMetadata() = %v", err)
	}
	if m.InfoHash != tor.Meta.InfoHash || !bytes.Equal(m.RawInfo, tor.Meta.RawInfo) {
		t.Fatalf("FetchMetadata() = info hash %x, %d bytes of info; want %x, %d bytes", m.InfoHash, len(m.RawInfo), tor.Meta.InfoHash, len(tor.Meta.RawInfo))
	}
	saved, err := metainfo.Load(resume.MetadataPath(out, mag.InfoHash))
	if err != nil || saved.InfoHash != mag.InfoHash {
		t.Fatalf("saved metadata: %v, info hash %x", err, saved.InfoHash)
	}

	store := stagetest.NewMemStorage(m.Info.Length)
	p, err := pipeline.New(m, pipeline.WithStorage(store), pipeline.WithPeerSource(stages.StaticPeers{seeder.addr}),
		pipeline.WithConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}

	// Again, with the seeder gone: the metadata is on disk.
	stopSeed()
	if err := <-seeder.done; err != nil {
		t.Errorf("seeder Run() = %v", err)
	}
	again, err := pipeline.FetchMetadata(ctx, mag, pipeline.WithConfig(pipeline.Config{OutDir: out, NoListen: true, NoPeersTimeout: time.Second}))
	if err != nil || again.InfoHash != mag.InfoHash {
		t.Fatalf("FetchMetadata() from disk = %v", err)
	}
}

// TestMagnetWrongMetadata: a peer whose metadata has the right size but does not hash to
// the info hash is dropped and its copy is never taken; beside an honest peer, the fetch
// returns the honest copy whichever answers first.
func TestMagnetWrongMetadata(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 32, "liar", 32<<10, 300_000)
	liar := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake, stagetest.ServeMetadata(true))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The liar alone: the client hangs up on it, and has no metadata when stopped.
	fctx, stop := context.WithCancel(ctx)
	res := make(chan error, 1)
	go func() {
		_, err := pipeline.FetchMetadata(fctx, &magnet.Magnet{InfoHash: tor.Meta.InfoHash, Peers: []netip.AddrPort{liar.Addr()}},
			pipeline.WithConfig(pipeline.Config{OutDir: t.TempDir(), NoListen: true}))
		res <- err
	}()
	select {
	case <-liar.Dropped():
	case err := <-res:
		t.Fatalf("FetchMetadata() from the liar alone returned %v before dropping it", err)
	case <-ctx.Done():
		t.Fatal("the liar was never dropped")
	}
	stop()
	if err := <-res; err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("FetchMetadata() from the liar alone = %v, want it interrupted without metadata", err)
	}

	// The liar and an honest peer.
	honest := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake, stagetest.ServeMetadata(false))
	out := t.TempDir()
	m, err := pipeline.FetchMetadata(ctx, &magnet.Magnet{InfoHash: tor.Meta.InfoHash, Peers: []netip.AddrPort{liar.Addr(), honest.Addr()}},
		pipeline.WithConfig(pipeline.Config{OutDir: out, NoListen: true}))
	if err != nil {
		t.Fatalf("FetchMetadata() = %v", err)
	}
	if !bytes.Equal(m.RawInfo, tor.Meta.RawInfo) {
		t.Fatal("FetchMetadata() returned another info dictionary than the torrent's")
	}
	if _, err := os.Stat(resume.MetadataPath(out, tor.Meta.InfoHash)); err != nil {
		t.Fatalf("metadata not kept: %v", err)
	}
}

// TestMagnetOneConnection: NewMagnet's Run fetches the metadata from the one peer of the
// link (x.pe) and downloads the data over the same connection: the peer, which sent its
// bitfield before the metadata, is connected to once, and the bytes are right. The
// metadata is kept, and a second pipeline for the link starts from it.
func TestMagnetOneConnection(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 33, "oneconn", 16<<10, 1100<<14-7, 77)
	seeder := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake, stagetest.ServeMetadataAndSeed)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := t.TempDir()
	var store *stagetest.MemStorage
	mag := &magnet.Magnet{InfoHash: tor.Meta.InfoHash, Peers: []netip.AddrPort{seeder.Addr()}}
	p, err := pipeline.NewMagnet(mag,
		pipeline.WithStorageFor(func(info *metainfo.Info) stages.Storage {
			store = stagetest.NewMemStorage(info.Length)
			return store
		}),
		pipeline.WithConfig(pipeline.Config{OutDir: out, NoListen: true, NoPex: true}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Meta() != nil {
		t.Fatal("Meta() is known before Run")
	}
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v; the seeder's script ended with %v", err, seeder.Errs())
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if n := seeder.Accepted.Load(); n != 1 {
		t.Errorf("the seeder was connected to %d times, want once: metadata and data over one connection", n)
	}
	if m := p.Meta(); m == nil || m.InfoHash != tor.Meta.InfoHash {
		t.Fatalf("Meta() = %v after Run", m)
	}
	again, err := pipeline.NewMagnet(mag, pipeline.WithConfig(pipeline.Config{OutDir: out}))
	if err != nil || again.Meta() == nil || !bytes.Equal(again.Meta().RawInfo, tor.Meta.RawInfo) {
		t.Fatalf("NewMagnet() after a run = %v, want the kept metadata", err)
	}
}
