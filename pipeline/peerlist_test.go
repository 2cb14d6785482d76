//go:build unix

package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// deadCrowd is issue 10's crowd: 150 peers that accept a connection and never speak, 50
// addresses that drop every packet, and one honest seeder, last.
func deadCrowd(tb testing.TB, tor *stagetest.Torrent) (src stages.StaticPeers, mute []*stagetest.FakePeer, seeder *stagetest.FakePeer) {
	for range 150 {
		p := stagetest.NewFakePeer(tb, tor, stagetest.Mute)
		mute = append(mute, p)
		src = append(src, p.Addr())
	}
	for range 50 {
		src = append(src, stagetest.NewBlackHole(tb))
	}
	seeder = stagetest.NewFakePeer(tb, tor, stagetest.Honest)
	return append(src, seeder.Addr()), mute, seeder
}

// TestDeadPeersDoNotHoldBackLive (issue 10 item 5): among 150 silent peers and 50 black
// holes, the one honest seeder, last in the list, is dialled at once. Every connect and
// handshake timeout is an hour, so no dead peer ever frees its slot: the download can
// complete only if the seeder was dialled, and served it all, while the 200 dead
// attempts were all still pending, whatever the machine's speed. (The old dialer, 64
// half-open slots in list order, never reached the seeder.)
func TestDeadPeersDoNotHoldBackLive(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 60, "deadcrowd", 256<<10, 8<<20)
	src, mute, seeder := deadCrowd(t, tor)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	err, _ := run(t, tor, 60*time.Second, pipeline.WithPeerSource(src), pipeline.WithStorage(store),
		withConfig(pipeline.Config{Dial: stages.DialConfig{DialTimeout: time.Hour, HandshakeTimeout: time.Hour,
			FirstDialTimeout: time.Hour, FirstHandshakeTimeout: time.Hour}}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil: the seeder waited behind the dead peers", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if seeder.Served.Load() == 0 {
		t.Fatal("the seeder served nothing")
	}
	// Each silent peer was dialled once, and its handshake never timed out to be retried.
	for i, p := range mute {
		if n := p.Accepted.Load(); n != 1 {
			t.Errorf("silent peer %d was connected %d times, want 1", i, n)
		}
	}
}

// BenchmarkDeadPeers is issue 10's measurement with the default timeouts: 64 MiB from
// the seeder behind the dead crowd. s/op is the time to a complete download.
func BenchmarkDeadPeers(b *testing.B) {
	tor := stagetest.NewTorrent(b, 60, "deadcrowd", 256<<10, 64<<20)
	src, _, _ := deadCrowd(b, tor)
	for b.Loop() {
		store := stagetest.NewMemStorage(tor.Meta.Info.Length)
		p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(src), pipeline.WithStorage(store),
			pipeline.WithConfig(pipeline.Config{ListenAddr: "127.0.0.1:0"}))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = p.Run(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(tor.Meta.Info.Length)
}

// TestPeerListRedialsSeederThatCameBack: the only seeder serves part of the download, then
// leaves the swarm (its connection drops, and nothing listens at its address), and comes
// back on the same address; the download completes from it. (The old dialer never dialled
// an address twice once it had connected.) The peer list's waits are milliseconds, and
// whether a redial finds the seeder gone or back, it is tried again: nothing is timed.
func TestPeerListRedialsSeederThatCameBack(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 61, "comeback", 32<<10, 1<<20) // 64 blocks
	first := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	first.LeaveAfter.Store(20)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(stages.StaticPeers{first.Addr()}),
		pipeline.WithStorage(store), withConfig(pipeline.Config{Dial: stages.DialConfig{
			Peers: stages.PeerListConfig{ReconnectDelay: 10 * time.Millisecond, FailBackoff: 10 * time.Millisecond,
				MaxBackoff: 50 * time.Millisecond, MaxFails: 1000}}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-first.Left():
	case err := <-done:
		t.Fatalf("Run() = %v before the seeder left", err)
	}
	if got := p.Stats().Verified; got == int64(tor.Meta.Info.NumPieces()) {
		t.Fatalf("all %d pieces verified before the seeder left: it served more than a part", got)
	}
	second := stagetest.NewFakePeerAt(t, tor, stagetest.Honest, first.Addr().String())
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v, want nil: the seeder that came back was not dialled again", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if n := first.Served.Load(); n != 20 {
		t.Errorf("the seeder served %d blocks before leaving, want 20", n)
	}
	if second.Served.Load() == 0 || second.Accepted.Load() == 0 {
		t.Errorf("the seeder back on its address was connected %d times and served %d blocks, want more than 0",
			second.Accepted.Load(), second.Served.Load())
	}
}

// TestConnLimitSharedWithListen: MaxPeers bounds the connections of Dial and Listen
// together. Two seeders that never unchoke fill both slots by dialling; a leecher that
// connects to us then is closed right after the handshake, and once a seeder leaves, the
// next leecher gets in.
func TestConnLimitSharedWithListen(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 62, "sharedcap", 32<<10, 256<<10)
	a := stagetest.NewFakePeer(t, tor, stagetest.NeverUnchoke)
	b := stagetest.NewFakePeer(t, tor, stagetest.NeverUnchoke)
	listen := freeAddr(t)
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(a, b)),
		pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		pipeline.WithLogger(slog.New(slog.DiscardHandler)),
		pipeline.WithConfig(pipeline.Config{ListenAddr: listen.String(), MaxPeers: 2,
			Dial: stages.DialConfig{Peers: stages.PeerListConfig{ReconnectDelay: time.Hour}}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitListening(t, listen, done)
	for p.Stats().Peers < 2 {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v before both seeders were connected", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if refused := leecherRefused(t, tor, listen); !refused {
		t.Fatal("a third connection was let in past MaxPeers 2")
	}
	a.Close() // a slot frees; ReconnectDelay keeps the dialer from taking it back
	for p.Stats().Peers > 1 {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if refused := leecherRefused(t, tor, listen); refused {
		t.Fatal("a leecher was refused with a slot free")
	}
}

// leecherRefused connects to addr as a peer with every piece and BEP 10, handshakes, and
// reports whether we then closed the connection without a word (refused), or said
// something (let in: our extended handshake, interested).
func leecherRefused(t *testing.T, tor *stagetest.Torrent, addr netip.AddrPort) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	hs := append([]byte{19}, "BitTorrent protocol"...)
	hs = append(hs, 0, 0, 0, 0, 0, 0x10, 0, 0) // BEP 10
	hs = append(hs, tor.Meta.InfoHash[:]...)
	hs = append(hs, "-LE0001-leecher00000"...)
	bf := wire.NewBitfield(tor.Meta.Info.NumPieces())
	for i := range tor.Meta.Info.NumPieces() {
		bf.Set(i)
	}
	if _, err := c.Write(wire.AppendMessage(slices.Clone(hs), wire.Message{ID: wire.BitfieldID, Bitfield: bf})); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(hs))); err != nil {
		t.Fatalf("reading our handshake: %v", err)
	}
	_, err = c.Read(make([]byte, 1))
	switch {
	case err == nil:
		return false
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return true
	default:
		t.Fatalf("after the handshake: %v", err)
		return false
	}
}
