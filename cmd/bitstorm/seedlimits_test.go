package main

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestSeedIdleFlag: `bitstorm seed --seed-idle 1s` on a complete torrent with no tracker
// and no peer seeds until a second passes with nothing sent, then exits 0; --json says
// why: a seeding_done with limit idle and nothing uploaded. A negative value exits 1
// naming the flag.
func TestSeedIdleFlag(t *testing.T) {
	bin := buildBinary(t)
	tor := stagetest.NewTorrent(t, 197, "idle", 32<<10, 100_000)
	torrent, data := writeTorrent(t, tor)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "seed", "--no-dht", "--json", "--data", data, "--listen", "127.0.0.1", "--port", "0",
		"--seed-idle", "1s", torrent).Output()
	if err != nil {
		t.Fatalf("seed --seed-idle 1s: %v (context: %v)\n%s", err, ctx.Err(), out)
	}
	if !slices.ContainsFunc(parseJSONLines(t, out), func(e jsonEvent) bool {
		return e.Event == "seeding_done" && e.Limit == "idle" && e.Uploaded != nil && *e.Uploaded == 0
	}) {
		t.Errorf("seed --seed-idle 1s printed\n%s\nwant a seeding_done event for the idle limit, nothing uploaded", out)
	}
	msg, err := exec.CommandContext(ctx, bin, "seed", "--seed-idle", "-1s", torrent).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(msg), "--seed-idle must not be negative") {
		t.Errorf("seed --seed-idle -1s: %v, %q; want exit 1 naming the flag", err, msg)
	}
}
