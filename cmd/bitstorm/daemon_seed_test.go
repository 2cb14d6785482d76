package main

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/transmission"
)

// TestDaemonSeedLimits: the daemon seeds to a libtorrent leecher under -t 1 -u 1000
// (1 MB/s), and transmission-remote's -t 1 -sr 0.5, given while it seeds, stops the
// torrent once it has uploaded half its size: uploadedEver is between that and one upload
// batch (256 KiB) more, -l shows it Finished, torrent-get says isFinished with status 0
// (stopped), and the log has its seeding_done record. After a restart it is still
// Finished, not started again. -t 1 -s then starts it as transmission 3.00 does a torrent
// past its ratio: its ratio limit is dropped (seedRatioMode 2) and it seeds on. With -t 1
// -srd (the session's) and -gsr 0.25, reached by the uploads before the restart, it stops
// again at once, the upload held to 1 kB/s meanwhile so that the new run cannot reach it
// alone.
func TestDaemonSeedLimits(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const size = 8 << 20
	sd := startSeedingDaemon(t, ctx, "ratio.bin", size, 135, []string{"-gsr", "4"}) // the torrent's own ratio wins over the session's
	sd.p.mustRemote(t, ctx, "-t", "1", "-u", "1000")
	sd.p.mustRemote(t, ctx, "-t", "1", "-sr", "0.5")
	if ts := sd.rpc.torrentGet(t, "seedRatioMode", "seedRatioLimit"); ts[0]["seedRatioMode"] != 1.0 || ts[0]["seedRatioLimit"] != 0.5 {
		t.Fatalf("torrent-get after -sr 0.5: %v, want seedRatioMode 1 and seedRatioLimit 0.5", ts[0])
	}

	lctx, stopLeecher := context.WithCancel(ctx)
	leeched := make(chan error, 1)
	go func() {
		_, err := swarmtest.RunLibtorrentLeecher(lctx, sd.torrent, filepath.Join(t.TempDir(), "lt"))
		leeched <- err
	}()
	defer func() { stopLeecher(); <-leeched }()
	sd.p.waitRow(t, ctx, "ratio.bin", func(r listRow) bool { return r.status == "Finished" })
	goal := int64(math.Ceil(0.5 * size))
	up := finishedUpload(t, sd.rpc, "at its ratio")
	t.Logf("-sr 0.5: goal %d bytes, uploaded %d (%d past it)", goal, up, up-goal)
	if up < goal || up > goal+256<<10 {
		t.Errorf("uploadedEver %d at the ratio, want %d to %d: half the size, and at most one batch more", up, goal, goal+256<<10)
	}
	if rec := sd.p.waitRecord(t, ctx, evSeedingDone, 1); rec.Limit != "ratio" {
		t.Errorf("seeding_done record %+v, want limit ratio", rec)
	}

	sd.p.stop(t, ctx)
	sd.start(t, ctx)
	if r := sd.p.row(t, ctx, "ratio.bin"); r.status != "Finished" {
		t.Errorf("after a restart -l shows %+v, want it Finished, not started again", r)
	}
	if got := finishedUpload(t, sd.rpc, "after a restart"); got != up {
		t.Errorf("uploadedEver %d after the restart, want %d", got, up)
	}

	// From here on the upload is held to 1 kB/s: what the next run sends cannot reach a
	// ratio by itself, and at most the batch under way goes after a limit is reached.
	sd.p.mustRemote(t, ctx, "-t", "1", "-u", "1")
	sd.p.mustRemote(t, ctx, "-t", "1", "-s")
	ts := sd.rpc.torrentGet(t, "seedRatioMode", "status", "isFinished")
	if ts[0]["seedRatioMode"] != 2.0 || ts[0]["isFinished"] != false {
		t.Errorf("torrent-get after -s past the ratio: %v, want seedRatioMode 2 (unlimited) and not finished", ts[0])
	}
	sd.p.waitRow(t, ctx, "ratio.bin", func(r listRow) bool { return r.status == "Seeding" || r.status == "Idle" })

	// The session's ratio, 0.25, is reached by what was uploaded before the restart,
	// which the torrent's new run counts: -srd stops it again at once.
	sd.p.mustRemote(t, ctx, "-gsr", "0.25")
	before := uploadedEver(t, sd.rpc)
	sd.p.mustRemote(t, ctx, "-t", "1", "-srd")
	sd.p.waitRow(t, ctx, "ratio.bin", func(r listRow) bool { return r.status == "Finished" })
	if after := finishedUpload(t, sd.rpc, "at the session's ratio"); after-before > 256<<10 {
		t.Errorf("uploadedEver grew from %d to %d under the session's ratio, reached already: want at most one batch more", before, after)
	}
	sd.p.stop(t, ctx)
}

// finishedUpload checks torrent 1 is finished and stopped, and returns its uploadedEver.
func finishedUpload(t *testing.T, rpc *rpcClient, when string) int64 {
	t.Helper()
	ts := rpc.torrentGet(t, "isFinished", "status", "uploadedEver")
	if len(ts) != 1 {
		t.Fatalf("torrent-get lists %d torrents, want 1", len(ts))
	}
	if ts[0]["isFinished"] != true || ts[0]["status"] != 0.0 {
		t.Errorf("torrent-get %s: %v, want isFinished true, status 0 (stopped)", when, ts[0])
	}
	return int64(ts[0]["uploadedEver"].(float64))
}

// TestSeedLimitSettings: a torrent's seedRatioMode and seedIdleMode pick the session's
// limit when it is enabled (0), its own (1) or none (2); idle limits are minutes.
func TestSeedLimitSettings(t *testing.T) {
	session := transmission.SessionSettings{SeedRatioLimit: 2, SeedRatioLimited: true, IdleSeedingLimit: 30, IdleSeedingLimitEnabled: true}
	off := transmission.SessionSettings{SeedRatioLimit: 2, IdleSeedingLimit: 30}
	for _, tc := range []struct {
		name  string
		s     transmission.SessionSettings
		ts    transmission.TorrentSettings
		ratio float64
		idle  time.Duration
	}{
		{"the session's", session, transmission.TorrentSettings{SeedRatioLimit: 0.5, SeedIdleLimit: 5}, 2, 30 * time.Minute},
		{"the session's, disabled", off, transmission.TorrentSettings{SeedRatioLimit: 0.5, SeedIdleLimit: 5}, 0, 0},
		{"its own", session, transmission.TorrentSettings{SeedRatioLimit: 0.5, SeedRatioMode: 1, SeedIdleLimit: 5, SeedIdleMode: 1}, 0.5, 5 * time.Minute},
		{"its own, the session's disabled", off, transmission.TorrentSettings{SeedRatioLimit: 0.5, SeedRatioMode: 1, SeedIdleLimit: 5, SeedIdleMode: 1}, 0.5, 5 * time.Minute},
		{"unlimited", session, transmission.TorrentSettings{SeedRatioLimit: 0.5, SeedRatioMode: 2, SeedIdleLimit: 5, SeedIdleMode: 2}, 0, 0},
	} {
		if ratio, idle := seedLimits(tc.s, tc.ts); ratio != tc.ratio || idle != tc.idle {
			t.Errorf("%s: seedLimits = %v, %v; want %v, %v", tc.name, ratio, idle, tc.ratio, tc.idle)
		}
	}
}
