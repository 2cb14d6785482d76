package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestDaemonReannounceAndExit: transmission-remote -it shows what the tracker answered
// (its seeders and leechers); --reannounce has a running torrent announce to its
// tracker at once, though the tracker asked for an hour (and is refused,
// saying why, for a stopped torrent); --exit (session-close) stops the daemon as SIGTERM
// does: it answers, then exits 0.
func TestDaemonReannounceAndExit(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	announces := make(chan string, 16)
	tracker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		announces <- r.URL.Query().Get("event")
		w.Write([]byte("d8:completei3e10:incompletei5e8:intervali3600e5:peers0:e"))
	}))
	t.Cleanup(tracker.Close)
	tor := stagetest.NewTorrent(t, 141, "reannounce", 16<<10, 50_000).WithAnnounce(t, tracker.URL+"/announce")
	next := func(what string) string {
		t.Helper()
		select {
		case ev := <-announces:
			return ev
		case <-ctx.Done():
			t.Fatalf("%s: no announce", what)
			return ""
		}
	}
	p := startDaemonProc(t, ctx, buildBinary(t), "--download-dir", t.TempDir(), "--state-dir", t.TempDir(), "--no-dht")
	p.mustRemote(t, ctx, "-a", saveTorrent(t, t.TempDir(), tor))
	if ev := next("added"); ev != "started" {
		t.Fatalf("first announce event %q, want started", ev)
	}
	// -it shows what the announce answered (trackerStats), the RPC its counts.
	for out := ""; !strings.Contains(out, "Got a list of 0 peers") || !strings.Contains(out, "Asking for more peers in"); out = p.mustRemote(t, ctx, "-t", "1", "-it") {
		select {
		case <-ctx.Done():
			t.Fatalf("-it never showed the tracker's answer:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	rpc := &rpcClient{addr: p.rpc}
	if ts := rpc.torrentGet(t, "trackerStats"); len(ts) != 1 {
		t.Fatalf("torrent-get: %v", ts)
	} else if st := ts[0]["trackerStats"].([]any)[0].(map[string]any); st["seederCount"] != 3.0 || st["leecherCount"] != 5.0 || st["lastAnnounceResult"] != "Success" {
		t.Errorf("trackerStats %v, want 3 seeders, 5 leechers, Success", st)
	}
	p.mustRemote(t, ctx, "-t", "1", "--reannounce")
	if ev := next("--reannounce"); ev != "" {
		t.Fatalf("re-announce event %q, want none (a regular announce)", ev)
	}
	p.mustRemote(t, ctx, "-t", "1", "-S")
	if ev := next("stopped"); ev != "stopped" {
		t.Fatalf("announce event at stop %q, want stopped", ev)
	}
	if out, ok := p.remote(t, ctx, "-t", "1", "--reannounce"); ok || !strings.Contains(out, "not running") {
		t.Errorf("--reannounce of a stopped torrent: %q, want a refusal saying it is not running", out)
	}

	if out := p.mustRemote(t, ctx, "--exit"); !strings.Contains(out, `responded: "success"`) {
		t.Errorf("--exit: %q", out)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("daemon after session-close: %v, want exit 0\n%s", err, p.log.String())
		}
		p.exited <- nil
	case <-ctx.Done():
		t.Fatal("daemon still running after session-close")
	}
}
