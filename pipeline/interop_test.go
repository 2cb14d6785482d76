package pipeline_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// interopFiles is a multi-file torrent of odd sizes in nested directories,
// about 66 MiB in all: files start and end inside pieces, and readme.txt is smaller
// than one 256 KiB piece.
var interopFiles = []swarmtest.FileSpec{
	{Path: "interop/a.bin", Size: 13<<20 + 17},
	{Path: "interop/docs/readme.txt", Size: 100_003},
	{Path: "interop/docs/b/c.bin", Size: 9<<20 + 262_143},
	{Path: "interop/media/movie.mkv", Size: 21<<20 + 1},
	{Path: "interop/media/extra/clip.bin", Size: 7_777_777},
	{Path: "interop/z/last.bin", Size: 11<<20 + 123_457},
	{Path: "interop/z/y/x/deep.bin", Size: 4<<20 + 1},
}

// TestInteropLibtorrentSeeder downloads a multi-file torrent with the
// bitstorm binary from a libtorrent seeder found through opentracker, all on
// 127.0.0.1, and checks every file's bytes.
func TestInteropLibtorrentSeeder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs opentracker, libtorrent and the bitstorm binary")
	}
	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent)
	if total := swarmtest.TotalSize(interopFiles); total < 64<<20 {
		t.Fatalf("payload is %d bytes, want at least 64 MiB", total)
	}
	bin := buildBitstorm(t)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := swarmtest.WritePayload(dir, 20240601, interopFiles); err != nil {
		t.Fatal(err)
	}
	tr, err := swarmtest.StartTracker(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	torrent := filepath.Join(dir, "interop.torrent")
	if err := swarmtest.MakeTorrent(ctx, filepath.Join(dir, "interop"), torrent, tr.AnnounceURL, 18); err != nil {
		t.Fatal(err)
	}
	hash, err := swarmtest.InfoHash(ctx, torrent)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Allow(ctx, hash); err != nil {
		t.Fatal(err)
	}
	seeder, err := swarmtest.StartLibtorrentSeeder(ctx, torrent, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Stop()
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := swarmtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "download", "--no-dht", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(port), torrent)
	p, err := swarmtest.Start(ctx, cmd, filepath.Join(dir, "bitstorm.log"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait()
	if err != nil || t.Failed() {
		t.Logf("bitstorm log (last lines):\n%s", p.Tail(60))
		t.Logf("seeder log (last lines):\n%s", seeder.Tail(20))
	}
	if ctx.Err() != nil {
		t.Fatalf("bitstorm download did not finish within the deadline: %v", err)
	}
	if err != nil {
		t.Fatalf("bitstorm download: %v", err)
	}
	if err := swarmtest.ComparePayload(dir, out, interopFiles); err != nil {
		t.Fatalf("downloaded files differ from the payload:\n%v", err)
	}
	size := float64(swarmtest.TotalSize(interopFiles)) / (1 << 20)
	t.Logf("bitstorm: %.1f MiB in %.2fs = %.1f MiB/s; cpu %.2fs, peak rss %.1f MiB (libtorrent seeder, loopback)",
		size, res.Wall.Seconds(), size/res.Wall.Seconds(), res.CPU().Seconds(), float64(res.MaxRSS)/(1<<20))
}
