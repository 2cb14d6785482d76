package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// gatedTorrent is a torrent whose one seeder, an in-process fake listed by its own
// tracker, holds back its data until open.
type gatedTorrent struct {
	tor  *stagetest.Torrent
	path string // its .torrent
	open func()
}

func newGatedTorrent(t *testing.T, seed uint64, name string) *gatedTorrent {
	t.Helper()
	tor := stagetest.NewTorrent(t, seed, name, 16<<10, 300_000)
	gate := make(chan struct{})
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	peer.Gate = gate
	tor = tor.WithAnnounce(t, stagetest.NewFakeTracker(t, peer.Addr()).URL())
	g := &gatedTorrent{tor: tor, path: saveTorrent(t, t.TempDir(), tor), open: sync.OnceFunc(func() { close(gate) })}
	t.Cleanup(g.open)
	return g
}

// TestDaemonQueue: with the download queue enabled at size 1 (session-set by a raw RPC
// request: transmission-remote 3.00 has no queue options), of two torrents added with
// transmission-remote the second is listed Queued (status 3, queuePosition 0) while the
// first downloads, and starts once the first has finished; both complete. The queue
// settings and -pr's peer-limit-global survive a restart, and a size of 0 for an enabled
// queue is refused.
func TestDaemonQueue(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	first, second := newGatedTorrent(t, 131, "queue-first"), newGatedTorrent(t, 132, "queue-second")
	dl, state := t.TempDir(), t.TempDir()
	bin := buildBinary(t)
	p := startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	rpc := &rpcClient{addr: p.rpc}

	if res, _ := rpc.call(t, "session-set", map[string]any{"download-queue-enabled": true, "download-queue-size": 0}); res == "success" {
		t.Error("session-set of an enabled download queue of size 0 succeeded")
	}
	if res, _ := rpc.call(t, "session-set", map[string]any{"download-queue-enabled": true, "download-queue-size": 1}); res != "success" {
		t.Fatalf("session-set download queue: %s", res)
	}
	p.mustRemote(t, ctx, "-pr", "77") // peer-limit-global
	p.mustRemote(t, ctx, "-a", first.path)
	p.mustRemote(t, ctx, "-a", second.path)

	if r := p.row(t, ctx, "queue-second"); r.status != "Queued" {
		t.Fatalf("-l lists the second torrent %+v, want Queued", r)
	}
	if r := p.row(t, ctx, "queue-first"); r.status == "Queued" || r.status == "Stopped" {
		t.Fatalf("-l lists the first torrent %+v, want it running", r)
	}
	byName := map[string]map[string]any{}
	for _, tr := range rpc.torrentGet(t, "name", "status", "queuePosition") {
		byName[tr["name"].(string)] = tr
	}
	if q := byName["queue-second"]; q["status"] != 3.0 || q["queuePosition"] != 0.0 {
		t.Errorf("torrent-get of the queued torrent: %v, want status 3 (queued to download) and queuePosition 0", q)
	}
	if q := byName["queue-first"]; q["status"] == 3.0 || q["queuePosition"] != 1.0 {
		t.Errorf("torrent-get of the running torrent: %v, want not queued, queuePosition 1 (after the queued one)", q)
	}

	first.open()
	p.waitRow(t, ctx, "queue-first", complete100)
	p.waitRow(t, ctx, "queue-second", func(r listRow) bool { return r.status != "Queued" })
	second.open()
	p.waitRow(t, ctx, "queue-second", complete100)
	for _, g := range []*gatedTorrent{first, second} {
		checkOnDisk(t, dl, g.tor)
	}

	p.stop(t, ctx)
	p = startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	rpc = &rpcClient{addr: p.rpc}
	_, args := rpc.call(t, "session-get", map[string]any{"fields": []string{"download-queue-enabled", "download-queue-size", "seed-queue-enabled", "seed-queue-size", "peer-limit-global"}})
	want := map[string]any{"download-queue-enabled": true, "download-queue-size": 1.0, "seed-queue-enabled": false, "seed-queue-size": 10.0, "peer-limit-global": 77.0}
	for k, v := range want {
		if args[k] != v {
			t.Errorf("session-get after a restart: %s = %v, want %v", k, args[k], v)
		}
	}
	p.stop(t, ctx)
}
