package pipeline_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// TestInteropRTorrent trades a multi-file torrent with rtorrent (libTorrent 0.13) both
// ways: rtorrent, on 127.0.0.3 (it keeps one peer per address), downloads it from a
// BitStorm seeder it learns from opentracker; then, the BitStorm seeder gone, a BitStorm
// leecher downloads it from rtorrent alone. The bytes must match each time.
func TestInteropRTorrent(t *testing.T) {
	ctx, bin, sw, seeder, _ := bitstormSeededSwarm(t, 20241127, swarmtest.RTorrent)
	rtOut := t.TempDir()
	started := time.Now()
	rt, rtPort, err := swarmtest.StartRTorrent(ctx, t.TempDir(), sw.torrent, rtOut)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	for swarmtest.ComparePayload(sw.dir, rtOut, seedFiles) != nil {
		if exited(rt) {
			t.Fatalf("rtorrent exited\n%s", rt.Tail(20))
		}
		sleepOrFail(t, ctx, 200*time.Millisecond, func() string {
			return "rtorrent did not finish\nrtorrent:\n" + rt.Tail(20) + "\nbitstorm seeder:\n" + seeder.Tail(20)
		})
	}
	t.Logf("rtorrent from the bitstorm seeder: %.1f MiB in %.2fs from its start",
		float64(swarmtest.TotalSize(seedFiles))/(1<<20), time.Since(started).Seconds())
	seeder.Stop()

	// Now rtorrent seeds, and a BitStorm leecher takes the torrent from it alone.
	leechFromOnly(t, ctx, bin, sw, "rtorrent", swarmtest.RTorrentAddr+":"+strconv.Itoa(rtPort), func() string { return rt.Tail(20) })
}
