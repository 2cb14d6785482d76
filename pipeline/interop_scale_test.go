package pipeline_test

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// fiftySeeders is how many libtorrent seeders TestInteropFiftyLibtorrentSeeders runs.
const fiftySeeders = 50

// TestInteropFiftyLibtorrentSeeders downloads the 66 MiB multi-file payload with the bitstorm
// binary from 50 libtorrent seeders on 127.0.0.1, all found through opentracker, and checks
// every file's bytes and that bitstorm connected to at least 40 of the seeders (its --verbose
// log). The seeders are 50 sessions of one Python process: 50 interpreters would not fit
// beside the download on two cores. opentracker answers bitstorm's announce (numwant 80)
// with every seeder it knows, and the test waits until it knows all 50.
func TestInteropFiftyLibtorrentSeeders(t *testing.T) {
	ctx, bin, sw, _ := opentrackerSwarm(t, 4*time.Minute, 20240605, interopFiles)

	began := time.Now()
	seeders, ports, err := swarmtest.StartLibtorrentSeeders(ctx, sw.torrent, sw.dir, fiftySeeders)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seeders.Stop)
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, fiftySeeders); err != nil {
		t.Fatalf("%v\nseeders:\n%s", err, seeders.Tail(20))
	}
	t.Logf("%d libtorrent seeders up and announced in %.1fs", fiftySeeders, time.Since(began).Seconds())

	out := filepath.Join(sw.dir, "out")
	leech, _ := startBitstorm(t, ctx, bin, filepath.Join(sw.dir, "leecher.log"),
		"download", "--verbose", "--max-peers", "60", "--out", out, "--port", strconv.Itoa(freePort(t)), sw.torrent)
	res, err := leech.Wait()
	if err != nil || ctx.Err() != nil {
		t.Logf("bitstorm log (last lines):\n%s\nseeders (last lines):\n%s", leech.Tail(40), seeders.Tail(20))
		t.Fatalf("bitstorm download: %v (context: %v)", err, ctx.Err())
	}
	if err := swarmtest.ComparePayload(sw.dir, out, interopFiles); err != nil {
		t.Fatalf("downloaded files differ from the payload:\n%v", err)
	}
	connected := connectedPeers(leech.LogPath)
	var reached []int
	for _, p := range ports {
		if connected[fmt.Sprintf("127.0.0.1:%d", p)] {
			reached = append(reached, p)
		}
	}
	if len(reached) < 40 {
		t.Errorf("bitstorm connected to %d of the %d seeders, want at least 40; it connected to %v",
			len(reached), fiftySeeders, connected)
	}
	if dropped := droppedPeers(leech.LogPath); len(dropped) > 0 {
		t.Errorf("bitstorm dropped %d seeders on its own account, first: %+v", len(dropped), dropped[0])
	}
	// Each session logs its upload total in the second after it changes: wait for the
	// round after the download to see which seeders served.
	sleepOrFail(t, ctx, 1500*time.Millisecond, func() string { return "waiting for the seeders' status" })
	served := seedersServed(seeders.LogPath)
	t.Logf("bitstorm: %.1f MiB from %d seeders (connected to %d, %d of them served) in %.2fs = %.1f MiB/s; cpu %.2fs, peak rss %.1f MiB",
		float64(swarmtest.TotalSize(interopFiles))/(1<<20), fiftySeeders, len(reached), len(served),
		res.Wall.Seconds(), mibPerSec(interopFiles, res.Wall), res.CPU().Seconds(), float64(res.MaxRSS)/(1<<20))
}

// seedersServed returns the upload total of each seeder port that logged one, from the
// "status port=P ... uploaded=U" lines of StartLibtorrentSeeders' log (the last line wins).
func seedersServed(path string) map[int]int64 {
	up := make(map[int]int64)
	re := regexp.MustCompile(`^status port=(\d+) .*uploaded=(\d+)`)
	sc := bufio.NewScanner(bytes.NewReader(readLog(path)))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			p, _ := strconv.Atoi(m[1])
			n, _ := strconv.ParseInt(m[2], 10, 64)
			if n > 0 {
				up[p] = n
			}
		}
	}
	return up
}
