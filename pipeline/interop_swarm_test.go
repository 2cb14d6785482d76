package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/storage"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// mixedFiles is a multi-file torrent of about 32 MiB whose files start and end inside
// 256 KiB pieces.
var mixedFiles = []swarmtest.FileSpec{
	{Path: "mixed/one.bin", Size: 9<<20 + 333},
	{Path: "mixed/tiny.txt", Size: 4_321},
	{Path: "mixed/sub/two.bin", Size: 7<<20 - 1},
	{Path: "mixed/sub/deeper/three.bin", Size: 12<<20 + 262_145},
	{Path: "mixed/four.bin", Size: 4<<20 - 270_000},
}

// TestInteropMixedSeeders downloads with bitstorm from a libtorrent seeder and a
// bitstorm seeder, both found through opentracker, and checks the bytes, that the
// leecher connected to each seeder (its --verbose log), and that each seeder sent part
// of the payload (libtorrent's upload total).
func TestInteropMixedSeeders(t *testing.T) {
	ctx, bin, sw, _ := opentrackerSwarm(t, 2*time.Minute, 20240602, mixedFiles)

	lt, err := swarmtest.StartLibtorrentSeeder(ctx, sw.torrent, sw.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lt.Stop()
	ltPort := libtorrentPort(t, lt)
	bsPort := freePort(t)
	bs := startBitstormSeeder(t, ctx, bin, sw.torrent, sw.dir, bsPort, filepath.Join(sw.dir, "seeder.log"))
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, 2); err != nil {
		t.Fatalf("%v\nbitstorm seeder:\n%s", err, bs.Tail(20))
	}

	out := filepath.Join(sw.dir, "out")
	leech, _ := startBitstorm(t, ctx, bin, filepath.Join(sw.dir, "leecher.log"),
		"download", "--verbose", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), sw.torrent)
	res, err := leech.Wait()
	if err != nil || ctx.Err() != nil {
		t.Logf("libtorrent seeder:\n%s\nbitstorm seeder:\n%s", lt.Tail(20), bs.Tail(20))
		t.Fatalf("bitstorm download: %v (context: %v)", err, ctx.Err())
	}
	ltStatus := len(ltUploaded(lt.LogPath))
	if err := swarmtest.ComparePayload(sw.dir, out, mixedFiles); err != nil {
		t.Fatalf("downloaded files differ from the payload:\n%v", err)
	}
	// The leecher dials the addresses opentracker gave it: each seeder's listening port.
	connected := connectedPeers(leech.LogPath)
	for name, port := range map[string]int{"libtorrent": ltPort, "bitstorm": bsPort} {
		if addr := fmt.Sprintf("127.0.0.1:%d", port); !connected[addr] {
			t.Errorf("the leecher never connected to the %s seeder at %s; it connected to %v", name, addr, connected)
		}
	}
	size := float64(swarmtest.TotalSize(mixedFiles)) / (1 << 20)
	t.Logf("bitstorm: %.1f MiB from libtorrent + bitstorm in %.2fs = %.1f MiB/s; cpu %.2fs, peak rss %.1f MiB",
		size, res.Wall.Seconds(), size/res.Wall.Seconds(), res.CPU().Seconds(), float64(res.MaxRSS)/(1<<20))

	// libtorrent logs its upload total every 10 s; the first line after the download
	// tells its share, and the bitstorm seeder, the only other peer, sent the rest
	// (give or take endgame duplicates).
	var up []int64
	for up = ltUploaded(lt.LogPath); len(up) <= ltStatus; up = ltUploaded(lt.LogPath) {
		sleepOrFail(t, ctx, 100*time.Millisecond, func() string { return "no status line from libtorrent\n" + lt.Tail(5) })
	}
	total := swarmtest.TotalSize(mixedFiles)
	ltShare := up[len(up)-1]
	t.Logf("libtorrent sent %.1f MiB, the bitstorm seeder the other %.1f MiB",
		float64(ltShare)/(1<<20), float64(total-ltShare)/(1<<20))
	if ltShare <= 0 || ltShare >= total {
		t.Errorf("libtorrent sent %d of %d bytes: one seeder served the whole download", ltShare, total)
	}
}

// TestInteropTwoLeechersTradeHalves: two bitstorm leechers through opentracker, and no
// seeder: a starts with the first half of the pieces on disk and b with the second half
// (the others zeroed), so each can finish only with the other's pieces. Which pieces
// each holds is fixed before they start, so the test does not depend on timing: a
// seeder that left "once the two together held everything" raced the leechers, which
// copy each other faster than a test can stop them. Both recheck their data, find each
// other through the tracker, trade, and seed on until the test sees both complete on
// disk; then both stop cleanly with the payload's bytes.
func TestInteropTwoLeechersTradeHalves(t *testing.T) {
	ctx, bin, sw, meta := opentrackerSwarm(t, 2*time.Minute, 20240613, interopFiles)
	info := &meta.Info
	n := info.NumPieces()
	type leecher struct {
		name, out string
		port      int
		p         *swarmtest.Process
		cmd       *exec.Cmd
		have      []bool
	}
	var ls []*leecher
	for i, name := range []string{"a", "b"} {
		l := &leecher{name: name, out: filepath.Join(sw.dir, "out-"+name), port: freePort(t), have: make([]bool, n)}
		// a keeps pieces [0, n/2), b keeps [n/2, n).
		keep := func(piece int) bool { return (piece < n/2) == (i == 0) }
		plantPieces(t, info, sw.dir, l.out, keep)
		hashPieces(t, info, l.out, l.have, func(int) bool { return true })
		for piece := range n {
			if l.have[piece] != keep(piece) {
				t.Fatalf("leecher %s: piece %d planted %v, hashes %v", name, piece, keep(piece), l.have[piece])
			}
		}
		l.p, l.cmd = startBitstorm(t, ctx, bin, filepath.Join(sw.dir, "leecher-"+name+".log"),
			"download", "--verbose", "--seed-time", "2m", "--out", l.out, "--listen", "127.0.0.1", "--port", strconv.Itoa(l.port), sw.torrent)
		ls = append(ls, l)
	}
	a, b := ls[0], ls[1]
	tail := func() string {
		return fmt.Sprintf("leecher a:\n%s\nleecher b:\n%s", a.p.Tail(15), b.p.Tail(15))
	}
	for count(a.have) < n || count(b.have) < n {
		for _, l := range ls {
			if exited(l.p) {
				t.Fatalf("leecher %s exited before both were complete\n%s", l.name, tail())
			}
			hashPieces(t, info, l.out, l.have, func(i int) bool { return !l.have[i] })
		}
		sleepOrFail(t, ctx, 100*time.Millisecond, func() string {
			return fmt.Sprintf("a holds %d and b %d of %d pieces\n%s", count(a.have), count(b.have), n, tail())
		})
	}
	for _, l := range ls {
		if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("stopping leecher %s: %v", l.name, err)
		}
		if _, err := l.p.Wait(); err != nil {
			t.Errorf("leecher %s: %v", l.name, err)
		}
		if err := swarmtest.ComparePayload(sw.dir, l.out, interopFiles); err != nil {
			t.Errorf("leecher %s's files differ from the payload:\n%v", l.name, err)
		}
	}
}

// plantPieces copies the payload under src into out and zeroes every piece keep rejects,
// so that a download into out starts with exactly the pieces keep accepts.
func plantPieces(t *testing.T, info *metainfo.Info, src, out string, keep func(piece int) bool) {
	t.Helper()
	for _, f := range info.Files {
		rel := filepath.Join(f.Path...) // the torrent's name first
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(out, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := storage.Open(out, info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for piece := range info.NumPieces() {
		if !keep(piece) {
			if _, err := st.WriteAt(make([]byte, info.PieceSize(piece)), info.PieceOffset(piece)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestInteropResumeAfterSIGKILL interrupts bitstorm download at random moments, from
// a libtorrent seeder, and starts the same command again into the same directory.
// After every interruption each piece the resume record claims must hash right on
// disk, and the next run must keep every piece that is on disk; the last run must
// finish with the right bytes.
//
// The record is saved every 10 s and on a clean exit, so runs killed within a second
// never leave one. The first interruption is therefore a SIGTERM, which saves a
// record; the runs after it start from that record, are killed with SIGKILL, and leave
// it behind, stale: it must still claim only pieces that are on disk.
//
// Every interruption lands at a piece count, not at a time: each run is stopped once
// it has added a random 8 to 32 pieces to those on disk (polled by hashing the files),
// and the libtorrent seeder uploads at most 4 MiB/s, so the 264 pieces take at least
// 16 s on any machine and six interruptions (at most 192 pieces) always land before
// the end. A slow machine only takes longer.
func TestInteropResumeAfterSIGKILL(t *testing.T) {
	ctx, bin, sw, meta := opentrackerSwarm(t, 4*time.Minute, 20240614, interopFiles)
	info := &meta.Info
	n := info.NumPieces()
	seeder, err := swarmtest.StartLibtorrentSeederLimited(ctx, sw.torrent, sw.dir, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Stop()
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, 1); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(20240614, 5))
	out := filepath.Join(sw.dir, "out")
	args := []string{"download", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), sw.torrent}
	// How each run is to end; the last one finishes.
	plan := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL, 0}
	if maxGain := (len(plan) - 1) * 32; maxGain >= n {
		t.Fatalf("%d interruptions of up to 32 pieces may cover all %d pieces", len(plan)-1, n)
	}
	onDisk := -1 // pieces on disk when the previous run ended
	kills := 0   // SIGKILLs that left pieces to download
	good := make([]bool, n)
	for run, sig := range plan {
		logPath := filepath.Join(sw.dir, fmt.Sprintf("run-%d.log", run))
		p, cmd := startBitstorm(t, ctx, bin, logPath, args...)
		how := "finished"
		if sig != 0 {
			target := max(onDisk, 0) + 8 + rng.IntN(25)
			if reached := waitPieces(t, ctx, p, info, out, good, target); reached {
				how = sig.String()
				if sig == syscall.SIGKILL {
					p.Stop()
				} else if err := cmd.Process.Signal(sig); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
			}
		}
		res, err := p.Wait()
		if ctx.Err() != nil {
			t.Fatalf("run %d: %v\n%s", run, ctx.Err(), p.Tail(20))
		}
		hashPieces(t, info, out, good, func(int) bool { return true })
		claimed := checkRecord(t, out, meta, good)
		kept, source := keptPieces(logPath)
		switch {
		case source == "" && onDisk < 0:
			source = "no data yet"
		case source == "":
			source = "no resumed event: killed before it had checked its data"
		case kept != onDisk:
			t.Errorf("run %d kept %d pieces (%s), but %d were on disk when run %d ended", run, kept, source, onDisk, run-1)
		}
		t.Logf("run %d: kept %d pieces (%s), %s after %v (exit %d): %d of %d pieces on disk, the record claims %s",
			run, kept, source, how, res.Wall.Round(time.Millisecond), res.ExitCode, count(good), n, claimed)
		onDisk = count(good)
		if how == "finished" {
			if err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			break
		}
		if sig == syscall.SIGKILL && onDisk < n {
			kills++
		}
	}
	if onDisk < n {
		t.Fatalf("the last run ended with %d of %d pieces on disk", onDisk, n)
	}
	if kills < len(plan)-2 {
		t.Errorf("only %d SIGKILLs landed before the download completed, want %d", kills, len(plan)-2)
	}
	if err := swarmtest.ComparePayload(sw.dir, out, interopFiles); err != nil {
		t.Fatalf("downloaded files differ from the payload:\n%v", err)
	}
}

// waitPieces polls the files under out until at least target pieces hash right, and
// reports whether they did before p exited. good is updated as pieces are found; a
// piece once good is not read again.
func waitPieces(t *testing.T, ctx context.Context, p *swarmtest.Process, info *metainfo.Info, out string, good []bool, target int) bool {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.Done():
			return false
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		hashPieces(t, info, out, good, func(i int) bool { return !good[i] })
		if count(good) >= target {
			return true
		}
	}
}

// startBitstorm runs the bitstorm binary with args, its output going to logPath. The
// command is returned for signals other than Stop's SIGKILL. A download or seed runs
// with --no-dht, the DHT's default bootstrap routers being public hosts, and with --json,
// its events going to eventsPath(logPath) (binEvents reads them).
func startBitstorm(t *testing.T, ctx context.Context, bin, logPath string, args ...string) (*swarmtest.Process, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin)
	if len(args) > 0 && (args[0] == "download" || args[0] == "seed") {
		args = slices.Concat(args[:1], []string{"--no-dht", "--json"}, args[1:])
		eventsTo(t, cmd, logPath)
	}
	cmd.Args = append(cmd.Args, args...)
	p, err := swarmtest.Start(ctx, cmd, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := swarmtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// sleepOrFail sleeps for d, or fails the test with what() when ctx ends first.
func sleepOrFail(t *testing.T, ctx context.Context, d time.Duration, what func() string) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatalf("%v: %s", ctx.Err(), what())
	case <-time.After(d):
	}
}

// libtorrentPort reads the port a libtorrent seeder listens on from the first line
// of its log, "libtorrent VERSION seed port PORT" (the "seeding port=PORT" line that
// StartLibtorrentSeeder waits for may not have reached the file yet).
func libtorrentPort(t *testing.T, p *swarmtest.Process) int {
	t.Helper()
	m := regexp.MustCompile(`seed port (\d+)`).FindSubmatch(readLog(p.LogPath))
	if m == nil {
		t.Fatalf("no port in the libtorrent seeder's log:\n%s", p.Tail(10))
	}
	port, _ := strconv.Atoi(string(m[1]))
	return port
}

// ltUploaded returns the uploaded= totals of a libtorrent seeder's status lines.
func ltUploaded(path string) []int64 {
	var up []int64
	for _, m := range regexp.MustCompile(`(?m)^status .* uploaded=(\d+)`).FindAllSubmatch(readLog(path), -1) {
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		up = append(up, n)
	}
	return up
}

func readLog(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// keptPieces returns how many pieces a run started with and how it knew, from its
// resumed event: 0 and "" when it found no data (or was killed before it had checked).
func keptPieces(logPath string) (int, string) {
	for _, e := range binEvents(logPath) {
		if e.Event == "resumed" && e.FromRecord {
			return e.Pieces, "from the resume record"
		} else if e.Event == "resumed" {
			return e.Pieces, "rechecked"
		}
	}
	return 0, ""
}

// hashPieces sets good[i] for each piece i with check(i) whose bytes under dir match
// its SHA-1 from the torrent. A piece that cannot be read (missing or short file) is
// not good. The payloads are random, so a piece whose first 16 KiB read as zeros lies
// in a hole of a preallocated file and is not good either: only that much is read.
func hashPieces(t *testing.T, info *metainfo.Info, dir string, good []bool, check func(int) bool) {
	t.Helper()
	r, err := resume.OpenReader(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, info.PieceLength)
	zeros := make([]byte, 16<<10)
	for i := range info.NumPieces() {
		if !check(i) {
			continue
		}
		b := buf[:info.PieceSize(i)]
		head := b[:min(len(b), len(zeros))]
		if _, err := r.ReadAt(head, info.PieceOffset(i)); err != nil || bytes.Equal(head, zeros[:len(head)]) {
			good[i] = false
			continue
		}
		if _, err := r.ReadAt(b, info.PieceOffset(i)); err != nil {
			good[i] = false
			continue
		}
		good[i] = sha1.Sum(b) == info.PieceHash(i)
	}
}

// checkRecord loads the resume record under dir, if any, and fails the test for every
// piece it claims that is not good on disk. It returns how many pieces the record claims.
func checkRecord(t *testing.T, dir string, m *metainfo.MetaInfo, good []bool) string {
	t.Helper()
	rec, err := resume.Load(resume.Path(dir, m.InfoHash), &m.Info, m.InfoHash)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "nothing (no record)"
	case err != nil:
		t.Errorf("resume record: %v", err)
		return "nothing (unreadable)"
	}
	var bad []int
	for i := range m.Info.NumPieces() {
		if rec.Pieces.Has(i) && !good[i] {
			bad = append(bad, i)
		}
	}
	if len(bad) > 0 {
		t.Errorf("the resume record claims %d pieces that are not on disk: %v", len(bad), bad)
	}
	return strconv.Itoa(rec.Pieces.Count())
}

// exited reports whether p has exited.
func exited(p *swarmtest.Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
