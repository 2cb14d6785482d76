package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/transmission"
)

// TestDaemonSpeedLimits: transmission-remote 3.00 sets the daemon's speed limits while a
// torrent downloads from an unlimited libtorrent seeder, and the download follows at once:
// -t 1 -d 2000 (the torrent's, in kB/s of 1000 bytes) holds it at 2 MB/s, then -d 1000
// (the session's, below it) at 1 MB/s. After a restart on the same state both come back:
// the session's holds the rate at 1 MB/s, and once the torrent does not honor it
// (--no-honor-session) the torrent's at 2 MB/s. Each rate is the bytes torrent-get's
// downloadedEver counts over 8 s, within 5 % plus two limiter bursts. With the torrent
// honoring the session again and both limits lifted (-t 1 -D, -D), the next 2 s bring at
// least three times what 1 MB/s would; the download then completes intact.
func TestDaemonSpeedLimits(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const size = 64 << 20 // ≈ 54 MB go in the four windows, the rest after the limits
	s := startLimitedSeeder(t, ctx, "limits.bin", size, 0)
	dl, state := t.TempDir(), t.TempDir()
	bin := buildBinary(t)
	p := startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	rpc := &rpcClient{addr: p.rpc}

	p.mustRemote(t, ctx, "--start-paused", "-a", s.torrent)
	p.mustRemote(t, ctx, "-t", "1", "-d", "2000")
	p.mustRemote(t, ctx, "-t", "1", "-s")
	awaitDownload(t, ctx, rpc)
	checkDaemonRate(t, ctx, rpc, "the torrent's -d 2000", 2_000_000)

	p.mustRemote(t, ctx, "-d", "1000")
	checkDaemonRate(t, ctx, rpc, "the session's -d 1000, under the torrent's 2000", 1_000_000)

	p.stop(t, ctx)
	p = startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	rpc = &rpcClient{addr: p.rpc}
	if _, args := rpc.call(t, "session-get", map[string]any{}); args["speed-limit-down"] != 1000.0 || args["speed-limit-down-enabled"] != true {
		t.Errorf("session-get after the restart: speed-limit-down %v, enabled %v; want 1000, true", args["speed-limit-down"], args["speed-limit-down-enabled"])
	}
	awaitDownload(t, ctx, rpc)
	checkDaemonRate(t, ctx, rpc, "the session's 1000, restored", 1_000_000)
	p.mustRemote(t, ctx, "-t", "1", "--no-honor-session")
	checkDaemonRate(t, ctx, rpc, "the torrent's 2000, restored, the session's not honored", 2_000_000)

	p.mustRemote(t, ctx, "-t", "1", "--honor-session")
	p.mustRemote(t, ctx, "-t", "1", "-D")
	p.mustRemote(t, ctx, "-D")
	start, from := time.Now(), downloadedEver(t, rpc)
	if left := size - from; left < 6_000_000 {
		t.Fatalf("only %d bytes left for the unlimited window: the torrent is too small for the windows", left)
	}
	sleepCtx(t, ctx, 2*time.Second)
	got := downloadedEver(t, rpc) - from
	t.Logf("limits lifted: %d bytes in %v", got, time.Since(start).Round(time.Millisecond))
	if got < 3*1_000_000*2 {
		t.Errorf("with -t 1 -D and -D, %d bytes in 2 s: want at least 6 MB, three times what the session's 1000 kB/s allowed", got)
	}
	p.waitRow(t, ctx, "limits.bin", complete100)
	if err := swarmtest.ComparePayload(s.dir, dl, s.files); err != nil {
		t.Error(err)
	}
	p.stop(t, ctx)
}

// TestDaemonUploadLimits: the daemon seeds a torrent whose data is in its download
// directory to a libtorrent leecher, and transmission-remote's upload limits hold what it
// sends: -u 2000 (the session's) at 2 MB/s, then -t 1 -u 1000 (the torrent's, below it)
// at 1 MB/s, each the bytes torrent-get's uploadedEver counts over 10 s, within 5 % plus
// two upload batches (the count moves a batch of up to 256 KiB at a time). With -t 1 -U
// and -U the next 2 s bring at least three times what 2 MB/s would (or the rest); the
// leecher then has the payload intact.
func TestDaemonUploadLimits(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const size = 48 << 20 // ≈ 35 MB go in the two windows, the rest after the limits
	sd := startSeedingDaemon(t, ctx, "up.bin", size, 134, []string{"-u", "2000"})
	p, rpc, torrent, dir, files := sd.p, sd.rpc, sd.torrent, sd.dir, sd.files

	out := filepath.Join(t.TempDir(), "lt")
	leeched := make(chan error, 1)
	go func() {
		_, err := swarmtest.RunLibtorrentLeecher(ctx, torrent, out)
		leeched <- err
	}()
	for uploadedEver(t, rpc) < 1_000_000 {
		sleepCtx(t, ctx, 100*time.Millisecond)
	}
	checkDaemonUpload(t, ctx, rpc, "the session's -u 2000", 2_000_000)
	p.mustRemote(t, ctx, "-t", "1", "-u", "1000")
	checkDaemonUpload(t, ctx, rpc, "the torrent's -u 1000, under the session's 2000", 1_000_000)

	p.mustRemote(t, ctx, "-t", "1", "-U")
	p.mustRemote(t, ctx, "-U")
	start, from := time.Now(), uploadedEver(t, rpc)
	select {
	case err := <-leeched: // all of it in under 2 s
		leeched <- err
	case <-time.After(2 * time.Second):
	}
	got, took := uploadedEver(t, rpc)-from, time.Since(start)
	t.Logf("limits lifted: %d bytes in %v", got, took.Round(time.Millisecond))
	if left := size - from; got < min(left, 3*2_000_000*2) {
		t.Errorf("with -t 1 -U and -U, %d bytes in %v: want at least 12 MB, three times what the 2000 kB/s allowed (or the %d left)", got, took, left)
	}
	if err := <-leeched; err != nil {
		t.Fatalf("libtorrent leecher: %v", err)
	}
	if err := swarmtest.ComparePayload(dir, out, files); err != nil {
		t.Error(err)
	}
	p.stop(t, ctx)
}

// seedingDaemon is a daemon that seeds one torrent, its data in the daemon's download
// directory, to leechers that find it at an opentracker.
type seedingDaemon struct {
	p          *daemonProc
	rpc        *rpcClient
	bin, state string // to start it again on the same state
	dir        string // the download directory, with the payload
	torrent    string
	files      []swarmtest.FileSpec
}

// startSeedingDaemon writes a payload of size bytes (from seed) as the file name, makes
// its torrent announced at a new opentracker, and starts a daemon that adds it after the
// transmission-remote commands of setup; it returns once the daemon seeds it (its data
// rechecked) and the tracker lists it.
func startSeedingDaemon(t *testing.T, ctx context.Context, name string, size, seed int64, setup ...[]string) *seedingDaemon {
	t.Helper()
	sd := &seedingDaemon{state: t.TempDir(), bin: buildBinary(t)}
	var tr *swarmtest.Tracker
	var hash string
	sd.dir, sd.torrent, sd.files, tr, hash = trackedPayload(t, ctx, name, size, seed)
	sd.start(t, ctx)
	for _, args := range setup {
		sd.p.mustRemote(t, ctx, args...)
	}
	sd.p.mustRemote(t, ctx, "-a", sd.torrent)
	sd.p.waitRow(t, ctx, name, complete100) // the data was there: a seed after its recheck
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		t.Fatal(err)
	}
	return sd
}

// trackedPayload writes a payload of size bytes (from seed) as the file name in a new
// directory, and makes its torrent (64 KiB pieces), announced at a new opentracker that
// allows it.
func trackedPayload(t *testing.T, ctx context.Context, name string, size, seed int64) (dir, torrent string, files []swarmtest.FileSpec, tr *swarmtest.Tracker, hash string) {
	t.Helper()
	dir, files = t.TempDir(), []swarmtest.FileSpec{{Path: name, Size: size}}
	tr, err := swarmtest.StartTracker(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	if err := swarmtest.WritePayload(dir, seed, files); err != nil {
		t.Fatal(err)
	}
	torrent = filepath.Join(dir, name+".torrent")
	if err := swarmtest.MakeTorrent(ctx, filepath.Join(dir, name), torrent, tr.AnnounceURL, 16); err != nil {
		t.Fatal(err)
	}
	m, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	hash = m.HexHash()
	if err := tr.Allow(ctx, hash); err != nil {
		t.Fatal(err)
	}
	return dir, torrent, files, tr, hash
}

// start starts the daemon on sd's directories.
func (sd *seedingDaemon) start(t *testing.T, ctx context.Context) {
	t.Helper()
	sd.p = startDaemonProc(t, ctx, sd.bin, "--download-dir", sd.dir, "--state-dir", sd.state)
	sd.rpc = &rpcClient{addr: sd.p.rpc}
}

// checkDaemonUpload measures torrent 1's upload over 10 s once it flows under the change,
// and checks it is limit within 5 %, plus two upload batches (256 KiB each).
func checkDaemonUpload(t *testing.T, ctx context.Context, rpc *rpcClient, what string, limit float64) {
	t.Helper()
	checkWindow(t, ctx, func() int64 { return uploadedEver(t, rpc) }, what, limit, 10*time.Second, 2*256<<10)
}

// checkWindow waits until count flows under the change (awaitFlow), then measures its
// rate over window and checks it is limit within 5 %, plus slack bytes (what the count
// may be off at the two ends of the window).
func checkWindow(t *testing.T, ctx context.Context, count func() int64, what string, limit float64, window time.Duration, slack float64) {
	t.Helper()
	awaitFlow(t, ctx, count, int64(limit/4))
	start, from := time.Now(), count()
	sleepCtx(t, ctx, window)
	got := count() - from
	took := time.Since(start)
	rate := float64(got) / took.Seconds()
	t.Logf("%s: %d bytes in %v, %.0f bytes/s", what, got, took.Round(time.Millisecond), rate)
	if lo, hi := limit*0.95-slack/took.Seconds(), limit*1.05+slack/took.Seconds(); rate < lo || rate > hi {
		t.Errorf("%s: %.0f bytes/s, want %.0f to %.0f", what, rate, lo, hi)
	}
}

// uploadedEver is torrent 1's uploadedEver.
func uploadedEver(t *testing.T, rpc *rpcClient) int64 {
	t.Helper()
	ts := rpc.torrentGet(t, "id", "uploadedEver")
	if len(ts) != 1 {
		t.Fatalf("torrent-get lists %d torrents, want 1", len(ts))
	}
	return int64(ts[0]["uploadedEver"].(float64))
}

// awaitDownload waits until torrent 1 has downloaded a first MB in this daemon run.
func awaitDownload(t *testing.T, ctx context.Context, rpc *rpcClient) {
	t.Helper()
	from := downloadedEver(t, rpc)
	for downloadedEver(t, rpc) < from+1_000_000 {
		sleepCtx(t, ctx, 100*time.Millisecond)
	}
}

// checkDaemonRate measures torrent 1's download over 8 s once it flows under the change,
// and checks it is limit within 5 %, plus the two 64 KiB the count may be off at each end
// of the window (what the limiter's burst lets through at once).
func checkDaemonRate(t *testing.T, ctx context.Context, rpc *rpcClient, what string, limit float64) {
	t.Helper()
	checkWindow(t, ctx, func() int64 { return downloadedEver(t, rpc) }, what, limit, 8*time.Second, 2*64<<10)
}

// downloadedEver is torrent 1's downloadedEver.
func downloadedEver(t *testing.T, rpc *rpcClient) int64 {
	t.Helper()
	ts := rpc.torrentGet(t, "id", "downloadedEver")
	if len(ts) != 1 {
		t.Fatalf("torrent-get lists %d torrents, want 1", len(ts))
	}
	return int64(ts[0]["downloadedEver"].(float64))
}

// sleepCtx waits d, failing the test if ctx ends first.
func sleepCtx(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatalf("test deadline: %v", ctx.Err())
	case <-time.After(d):
	}
}

// TestSpeedLimitSettings: the RPC's kB/s are 1000 bytes; a limit not enabled is none;
// turtle mode (alt-speed-enabled) replaces the session's limits while on.
func TestSpeedLimitSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        transmission.SessionSettings
		down, up int64
	}{
		{"none", transmission.SessionSettings{SpeedLimitDown: 100, SpeedLimitUp: 50}, 0, 0},
		{"down", transmission.SessionSettings{SpeedLimitDown: 100, SpeedLimitDownEnabled: true, SpeedLimitUp: 50}, 100_000, 0},
		{"both", transmission.SessionSettings{SpeedLimitDown: 100, SpeedLimitDownEnabled: true, SpeedLimitUp: 50, SpeedLimitUpEnabled: true}, 100_000, 50_000},
		{"turtle", transmission.SessionSettings{SpeedLimitDown: 100, SpeedLimitDownEnabled: true, AltSpeedDown: 20, AltSpeedUp: 10, AltSpeedEnabled: true}, 20_000, 10_000},
	} {
		if down, up := sessionLimits(tc.s); down != tc.down || up != tc.up {
			t.Errorf("%s: sessionLimits = %d, %d; want %d, %d", tc.name, down, up, tc.down, tc.up)
		}
	}
	ts := transmission.TorrentSettings{DownloadLimit: 300, DownloadLimited: true, UploadLimit: 70}
	if down, up := torrentLimits(ts); down != 300_000 || up != 0 {
		t.Errorf("torrentLimits(%+v) = %d, %d; want 300000, 0", ts, down, up)
	}
}

// awaitFlow waits until count has grown by n bytes, and then until it grows by n more:
// the bytes flow under the new limit (a connection after a restart is up, a batch sent
// under the old limit is counted) before a window is measured, whatever the machine's
// speed.
func awaitFlow(t *testing.T, ctx context.Context, count func() int64, n int64) {
	t.Helper()
	for range 2 {
		from := count()
		for count()-from < n {
			sleepCtx(t, ctx, 50*time.Millisecond)
		}
	}
}
