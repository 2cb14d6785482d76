package pipeline_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// limitFiles is one 48 MiB file: at the 1 MiB/s limit below, three times the window.
var limitFiles = []swarmtest.FileSpec{{Path: "limited.bin", Size: 48 << 20}}

// TestInteropDownloadLimit: bitstorm download --download-limit 1M from an unlimited
// libtorrent seeder holds the limit: over ten seconds of the download, no more than ten
// seconds' worth, within 5 %, plus the limiter's burst and the pieces in flight, is
// verified on disk. Only the upper bound is asserted: a slow machine stays under it, so
// the test does not depend on the machine's speed; the rate reached is logged.
func TestInteropDownloadLimit(t *testing.T) {
	ctx, bin, sw, meta := opentrackerSwarm(t, 3*time.Minute, 20261206, limitFiles)
	info := &meta.Info
	seeder, err := swarmtest.StartLibtorrentSeeder(ctx, sw.torrent, sw.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Stop()
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, 1); err != nil {
		t.Fatal(err)
	}
	const limit = 1 << 20
	out := filepath.Join(sw.dir, "out")
	p, _ := startBitstorm(t, ctx, bin, filepath.Join(sw.dir, "limited.log"), "download", "--download-limit", "1M",
		"--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), sw.torrent)
	defer p.Stop()
	good := make([]bool, info.NumPieces())
	// The window opens at the first verified piece, when the connection is up.
	if !waitPieces(t, ctx, p, info, out, good, 1) {
		t.Fatalf("no piece verified\n%s", p.Tail(20))
	}
	start, startPieces := time.Now(), count(good)
	window := 10 * time.Second
	for time.Since(start) < window {
		sleepOrFail(t, ctx, 100*time.Millisecond, func() string { return p.Tail(20) })
	}
	hashPieces(t, info, out, good, func(i int) bool { return !good[i] })
	took := time.Since(start)
	got := int64(count(good)-startPieces) * info.PieceLength
	// Allowed: the limit over the window (5 % margin), the limiter's 64 KiB burst, and
	// the pieces that may have been in flight when the window opened (the request window
	// holds up to a few MiB outstanding at the seeder, buffered by TCP).
	allowed := int64(float64(limit)*took.Seconds()*1.05) + 64<<10 + 4*info.PieceLength
	t.Logf("%d bytes verified in %v: %.2f MiB/s under a 1 MiB/s limit (allowed %d)", got, took.Round(time.Millisecond),
		float64(got)/took.Seconds()/(1<<20), allowed)
	if got > allowed {
		t.Errorf("%s verified in %v under a 1 MiB/s limit, more than the %s allowed", fmt.Sprint(got), took, fmt.Sprint(allowed))
	}
	if count(good) == info.NumPieces() {
		t.Errorf("the whole %d MiB was downloaded within the window: the limit did not hold", limitFiles[0].Size>>20)
	}
}

// TestInteropUploadLimit: a bitstorm seeder with --upload-limit 1M takes at least as long
// as the limit allows (within 5 %, less the burst) to serve 8 MiB to a libtorrent
// leecher; only that lower bound on time, an upper bound on the rate, is asserted.
func TestInteropUploadLimit(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "up-limited.bin", Size: 8 << 20}}
	ctx, bin, sw, _ := opentrackerSwarm(t, 3*time.Minute, 20261207, files)
	const limit = 1 << 20
	seeder, _ := startBitstorm(t, ctx, bin, filepath.Join(sw.dir, "seed.log"), "seed", "--upload-limit", "1M",
		"--data", sw.dir, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), sw.torrent)
	defer seeder.Stop()
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, 1); err != nil {
		t.Fatal(err)
	}
	res, err := swarmtest.RunLibtorrentLeecher(ctx, sw.torrent, filepath.Join(sw.dir, "lt"))
	if err != nil {
		t.Fatalf("libtorrent leecher: %v\n%s", err, seeder.Tail(20))
	}
	if err := swarmtest.ComparePayload(sw.dir, filepath.Join(sw.dir, "lt"), files); err != nil {
		t.Fatal(err)
	}
	minTook := time.Duration(float64(files[0].Size-64<<10) / (limit * 1.05) * float64(time.Second))
	t.Logf("8 MiB uploaded in %v under a 1 MiB/s limit (at least %v allowed)", res.Wall.Round(time.Millisecond), minTook.Round(time.Millisecond))
	if res.Wall < minTook {
		t.Errorf("8 MiB uploaded in %v: faster than the 1 MiB/s limit allows (%v)", res.Wall, minTook)
	}
}
