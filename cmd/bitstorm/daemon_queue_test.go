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
// request: transmission-remote 3.00 has no queue options), of three torrents added with
// transmission-remote the second and third are listed Queued (status 3, queuePosition 0
// and 1) while the first downloads; -S and -s take the second out of the queue and put it
// back at the end, where a restart keeps it, and queue-move-top to the front again;
// torrent-start-now starts the third at once; the second starts once
// both others have finished, and all complete. The queue settings and -pr's
// peer-limit-global survive a restart, and a size of 0 for an enabled queue is refused.
func TestDaemonQueue(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	first, second, third := newGatedTorrent(t, 131, "queue-first"), newGatedTorrent(t, 132, "queue-second"), newGatedTorrent(t, 133, "queue-third")
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
	p.mustRemote(t, ctx, "-a", third.path)

	if r := p.row(t, ctx, "queue-second"); r.status != "Queued" {
		t.Fatalf("-l lists the second torrent %+v, want Queued", r)
	}
	if r := p.row(t, ctx, "queue-first"); r.status == "Queued" || r.status == "Stopped" {
		t.Fatalf("-l lists the first torrent %+v, want it running", r)
	}
	queue := func(step string, want map[string][2]float64) { // name: status, queuePosition
		t.Helper()
		for _, tr := range rpc.torrentGet(t, "name", "status", "queuePosition") {
			w, ok := want[tr["name"].(string)]
			if ok && (tr["status"] != w[0] || tr["queuePosition"] != w[1]) {
				t.Errorf("%s: torrent-get %v, want status %v and queuePosition %v", step, tr, w[0], w[1])
			}
		}
	}
	queue("added", map[string][2]float64{"queue-second": {3, 0}, "queue-third": {3, 1}})

	p.mustRemote(t, ctx, "-t", "2", "-S")
	if r := p.row(t, ctx, "queue-second"); r.status != "Stopped" {
		t.Fatalf("-l lists the queued torrent stopped %+v, want Stopped", r)
	}
	queue("second stopped", map[string][2]float64{"queue-third": {3, 0}})
	p.mustRemote(t, ctx, "-t", "2", "-s")
	queue("second started again", map[string][2]float64{"queue-third": {3, 0}, "queue-second": {3, 1}})
	// A restart brings the queue back as it was: the first one runs, the others wait in
	// their order (not by id).
	p.stop(t, ctx)
	p = startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	rpc = &rpcClient{addr: p.rpc}
	queue("restarted", map[string][2]float64{"queue-third": {3, 0}, "queue-second": {3, 1}})
	if r := p.row(t, ctx, "queue-first"); r.status == "Queued" || r.status == "Stopped" {
		t.Fatalf("-l lists the first torrent after a restart %+v, want it running", r)
	}
	if res, _ := rpc.call(t, "queue-move-top", map[string]any{"ids": []int{2}}); res != "success" {
		t.Fatalf("queue-move-top: %s", res)
	}
	queue("second moved to the top", map[string][2]float64{"queue-second": {3, 0}, "queue-third": {3, 1}})
	// The move is saved at once: a kill right after it keeps it.
	p.kill(t, ctx)
	p = startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	rpc = &rpcClient{addr: p.rpc}
	queue("killed after the move", map[string][2]float64{"queue-second": {3, 0}, "queue-third": {3, 1}})

	if res, _ := rpc.call(t, "torrent-start-now", map[string]any{"ids": []int{3}}); res != "success" {
		t.Fatalf("torrent-start-now: %s", res)
	}
	if r := p.row(t, ctx, "queue-third"); r.status == "Queued" || r.status == "Stopped" {
		t.Fatalf("-l lists the torrent started now %+v, want it running", r)
	}
	queue("third started now", map[string][2]float64{"queue-second": {3, 0}})

	first.open()
	third.open()
	p.waitRow(t, ctx, "queue-first", complete100)
	p.waitRow(t, ctx, "queue-third", complete100)
	p.waitRow(t, ctx, "queue-second", func(r listRow) bool { return r.status != "Queued" })
	second.open()
	p.waitRow(t, ctx, "queue-second", complete100)
	for _, g := range []*gatedTorrent{first, second, third} {
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
