package pipeline_test

import (
	"bufio"
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
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
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
	connected := peersConnected(leech.LogPath)
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

// TestInteropTwoLeechersSeederLeaves: two bitstorm leechers and one bitstorm seeder,
// all through opentracker. The leechers start first and find each other; the seeder
// joins, learns both from opentracker and dials them at once, so that neither gets a
// head start. The seeder leaves as soon as the leechers together hold every piece
// (which the test sees by hashing their files), while neither holds all of them: from
// then on each can finish only with pieces from the other. Each leecher seeds on for
// up to 60 s after completing, so that the first to finish still serves the second;
// the test stops both once both are complete.
func TestInteropTwoLeechersSeederLeaves(t *testing.T) {
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
	// attempt runs the leechers and the seeder until the seeder has left; it reports
	// whether both leechers were then still incomplete, as the test needs.
	attempt := func(try int) ([]*leecher, func() string, bool) {
		var ls []*leecher
		for i, name := range []string{"a", "b"} {
			l := &leecher{name: name, out: filepath.Join(sw.dir, fmt.Sprintf("out-%s-%d", name, try)), port: freePort(t), have: make([]bool, n)}
			l.p, l.cmd = startBitstorm(t, ctx, bin, filepath.Join(sw.dir, fmt.Sprintf("leecher-%s-%d.log", name, try)),
				"download", "--verbose", "--seed-time", "60s", "--out", l.out, "--listen", "127.0.0.1", "--port", strconv.Itoa(l.port), sw.torrent)
			ls = append(ls, l)
			// Each starts once the ones before it have announced, so that opentracker
			// hands them to it.
			for {
				s, err := sw.tracker.Scrape(ctx, sw.hash)
				if err == nil && s.Incomplete > i {
					break
				}
				sleepOrFail(t, ctx, 20*time.Millisecond, func() string { return "leecher " + name + " never announced\n" + l.p.Tail(15) })
			}
		}
		a, b := ls[0], ls[1]
		seeder, seederCmd := startBitstorm(t, ctx, bin, filepath.Join(sw.dir, fmt.Sprintf("seeder-%d.log", try)),
			"seed", "--data", sw.dir, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), sw.torrent)
		tail := func() string {
			return fmt.Sprintf("seeder:\n%s\nleecher a:\n%s\nleecher b:\n%s", seeder.Tail(15), a.p.Tail(15), b.p.Tail(15))
		}

		// The test paces the leechers in slices of 5 ms: between slices both are frozen
		// (SIGSTOP) and their files hashed, so that what it sees is what they hold, and only
		// one of them runs in the next slice, the one that holds fewer pieces. Left alone,
		// or run together, the leechers copy each other's pieces as fast as the seeder sends
		// them, and the first to hold every piece is complete before the seeder could leave.
		// Run in turns, the one running fetches from the seeder the pieces the other lacks
		// (rarest first; the frozen one answers no requests), so the two together hold every
		// piece while each holds about half. A leecher within a reserve of 1.5 times the
		// most it ever gained in one slice (and at least 8 pieces) of complete is not run
		// again.
		// The seeder is then told to leave (SIGTERM) while both are frozen. Pieces once
		// verified stay on disk: only the missing ones are hashed again.
		signal := func(l *leecher, sig syscall.Signal) {
			if err := l.cmd.Process.Signal(sig); err != nil {
				t.Fatalf("leecher %s: %v: %v\n%s", l.name, sig, err, tail())
			}
		}
		union := func() int {
			u := 0
			for _, l := range ls {
				hashPieces(t, info, l.out, l.have, func(i int) bool { return !l.have[i] })
			}
			for i := range n {
				if a.have[i] || b.have[i] {
					u++
				}
			}
			return u
		}
		signal(a, syscall.SIGSTOP)
		signal(b, syscall.SIGSTOP)
		polls, maxGain := 0, 0
		stuck := "" // why the pacing gave up
		var ran *leecher
		before := 0
		for {
			if ran != nil {
				signal(ran, syscall.SIGSTOP)
			}
			polls++
			u := union()
			if ran != nil {
				maxGain = max(maxGain, count(ran.have)-before)
			}
			if u == n {
				break
			}
			reserve := max(8, maxGain*3/2)
			next, other := a, b
			if count(b.have) < count(a.have) || count(b.have) == count(a.have) && ran == a {
				next, other = b, a
			}
			if count(next.have)+reserve >= n {
				next = other
			}
			if count(next.have)+reserve >= n {
				stuck = fmt.Sprintf("both leechers are within %d pieces of complete (a %d, b %d of %d) and together lack %d: they copied each other",
					reserve, count(a.have), count(b.have), n, n-u)
				break
			}
			if exited(seeder) {
				t.Fatalf("the seeder exited by itself\n%s", tail())
			}
			ran, before = next, count(next.have)
			signal(ran, syscall.SIGCONT)
			sleepOrFail(t, ctx, 5*time.Millisecond, func() string { return "the leechers never got every piece between them\n" + tail() })
		}
		if err := seederCmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("stopping the seeder: %v", err)
		}
		res, err := seeder.Wait()
		if ctx.Err() != nil {
			t.Fatalf("the seeder did not stop\n%s", tail())
		}
		if err != nil {
			t.Errorf("seeder, stopped while seeding: %v", err)
		}
		union()
		ca, cb := count(a.have), count(b.have)
		signal(a, syscall.SIGCONT)
		signal(b, syscall.SIGCONT)
		t.Logf("the seeder left after %.2fs (%d polls) with a holding %d and b %d of %d pieces on disk",
			res.Wall.Seconds(), polls, ca, cb, n)
		// Data the seeder sent that was still in a socket buffer or being assembled
		// may complete a few more pieces, but no leecher may be complete already. The
		// pacing is a matter of timing: when it fails, the attempt proves nothing, and
		// the test makes another with fresh leechers.
		if ca == n || cb == n {
			stuck = fmt.Sprintf("a leecher was complete before the seeder left (a %d, b %d of %d pieces)", ca, cb, n)
		}
		if stuck != "" {
			// The pacing failed this time: stop both (they announce stopped) and start over.
			t.Logf("attempt %d: %s", try, stuck)
			for _, l := range ls {
				if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatalf("stopping leecher %s: %v", l.name, err)
				}
				l.p.Wait()
			}
			return nil, tail, false
		}
		return ls, tail, true
	}
	var ls []*leecher
	var tail func() string
	for try := 1; ; try++ {
		var ok bool
		if ls, tail, ok = attempt(try); ok {
			break
		}
		if try == 3 {
			t.Fatalf("in %d attempts a leecher was always complete before the seeder left: the test proves nothing", try)
		}
	}
	a, b := ls[0], ls[1]

	for _, l := range ls {
		if err := waitLogLine(ctx, l.p, `msg="download complete"`, time.Minute); err != nil {
			t.Fatalf("leecher %s did not complete without the seeder: %v\n%s", l.name, err, tail())
		}
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
	// b learns a's address from opentracker and dials it; a could learn b's at a
	// later announce and dial it too.
	if !peersConnected(b.p.LogPath)[fmt.Sprintf("127.0.0.1:%d", a.port)] &&
		!peersConnected(a.p.LogPath)[fmt.Sprintf("127.0.0.1:%d", b.port)] {
		t.Errorf("neither leecher logged a connection to the other's port")
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
// On loopback the whole download takes about half a second, less than the kills'
// delays (0.2-1.5 s); the seeder is slowed down by letting it run 7 ms in every 100
// (SIGSTOP, SIGCONT), so that every kill lands somewhere in the download.
func TestInteropResumeAfterSIGKILL(t *testing.T) {
	ctx, bin, sw, meta := opentrackerSwarm(t, 2*time.Minute, 20240614, interopFiles)
	info := &meta.Info
	n := info.NumPieces()
	seeder, err := swarmtest.StartLibtorrentSeeder(ctx, sw.torrent, sw.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Stop()
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, 1); err != nil {
		t.Fatal(err)
	}
	defer throttle(seeder, 7*time.Millisecond, 100*time.Millisecond)()

	rng := rand.New(rand.NewPCG(20240614, 5))
	out := filepath.Join(sw.dir, "out")
	args := []string{"download", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), sw.torrent}
	// How each run is to end; the last one finishes.
	plan := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL, 0}
	onDisk := -1 // pieces on disk when the previous run ended
	kills := 0   // SIGKILLs that left pieces to download
	for run, sig := range plan {
		logPath := filepath.Join(sw.dir, fmt.Sprintf("run-%d.log", run))
		p, cmd := startBitstorm(t, ctx, bin, logPath, args...)
		how := "finished"
		if sig != 0 {
			delay := time.Duration(200+rng.IntN(1300)) * time.Millisecond
			select {
			case <-p.Done():
			case <-time.After(delay):
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
		good := make([]bool, n)
		hashPieces(t, info, out, good, func(int) bool { return true })
		claimed := checkRecord(t, out, meta, good)
		kept, source := keptPieces(logPath)
		switch {
		case source == "" && onDisk < 0:
			source = "no data yet"
		case source == "":
			source = "none logged: killed before it had checked its data"
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
	if kills < 4 {
		t.Errorf("only %d SIGKILLs landed before the download completed, want at least 4: slow the seeder down further", kills)
	}
	if err := swarmtest.ComparePayload(sw.dir, out, interopFiles); err != nil {
		t.Fatalf("downloaded files differ from the payload:\n%v", err)
	}
}

// throttle lets p run only on of every period, stopping it with SIGSTOP and
// continuing it with SIGCONT (by its pid, not its group), until the returned function
// is called, which leaves it running.
func throttle(p *swarmtest.Process, on, period time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	signal := func(sig syscall.Signal) {
		if !exited(p) {
			_ = syscall.Kill(p.PID(), sig)
		}
	}
	go func() {
		defer close(done)
		defer signal(syscall.SIGCONT)
		for {
			signal(syscall.SIGCONT)
			select {
			case <-quit:
				return
			case <-time.After(on):
			}
			signal(syscall.SIGSTOP)
			select {
			case <-quit:
				return
			case <-time.After(period - on):
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// startBitstorm runs the bitstorm binary with args, its output going to logPath. The
// command is returned for signals other than Stop's SIGKILL.
func startBitstorm(t *testing.T, ctx context.Context, bin, logPath string, args ...string) (*swarmtest.Process, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, args...)
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

// peersConnected returns the peer addresses of the "peer connected" lines of a
// --verbose log.
func peersConnected(path string) map[string]bool {
	peers := make(map[string]bool)
	re := regexp.MustCompile(`msg="peer connected".* peer=(\S+)`)
	sc := bufio.NewScanner(bytes.NewReader(readLog(path)))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			peers[m[1]] = true
		}
	}
	return peers
}

// keptPieces returns how many pieces a run started with and how it knew, from its
// "resuming from record" or "rechecked data" line: 0 and "" when it found no data.
func keptPieces(path string) (int, string) {
	m := regexp.MustCompile(`msg="(resuming from record|rechecked data)" pieces=(\d+)`).FindSubmatch(readLog(path))
	if m == nil {
		return 0, ""
	}
	kept, _ := strconv.Atoi(string(m[2]))
	return kept, string(m[1])
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
