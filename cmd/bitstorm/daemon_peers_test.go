package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// limitedSeeder is a torrent of a payload in its own directory, seeded by one libtorrent
// session at rate bytes/s through opentracker: a download from it lasts size/rate on any
// machine, so a test can look at it under way.
type limitedSeeder struct {
	dir, torrent, name string
	files              []swarmtest.FileSpec
}

func startLimitedSeeder(t *testing.T, ctx context.Context, name string, size int64, rate int) *limitedSeeder {
	t.Helper()
	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent)
	s := &limitedSeeder{name: name}
	var tr *swarmtest.Tracker
	var hash string
	s.dir, s.torrent, s.files, tr, hash = trackedPayload(t, ctx, name, size, 133) // daemon_limits_test.go
	seeder, err := swarmtest.StartLibtorrentSeederLimited(ctx, s.torrent, s.dir, rate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seeder.Stop)
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDaemonPeers: while a torrent downloads from a rate-limited libtorrent seeder over
// RC4 (--encryption require), transmission-remote -pi lists the seeder (its address, the
// client its handshake names, its progress, the D and E flags and a download rate), and
// -i counts it; the download then completes.
func TestDaemonPeers(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const size, rate = 4 << 20, 256 << 10 // 16 s at the least
	s := startLimitedSeeder(t, ctx, "peers.bin", size, rate)
	dl := t.TempDir()
	// RC4 only (MSE): libtorrent accepts it by default, and the peer shows encrypted.
	p := startDaemonProc(t, ctx, buildBinary(t), "--download-dir", dl, "--state-dir", t.TempDir(), "--encryption", "require")
	p.mustRemote(t, ctx, "-a", s.torrent)

	// transmission-remote 3.00 prints each peer as address, flags, done %, down and up
	// kB/s, client (remote.c, printPeersImpl).
	row := regexp.MustCompile(`(?m)^127\.0\.0\.1\s+(\S+)\s+100\.0\s+(\d+\.\d)\s+0\.0\s+(libtorrent/\S+)$`)
	var m []string
	for m == nil || !strings.Contains(m[1], "D") || !strings.Contains(m[1], "E") || m[2] == "0.0" {
		select {
		case <-ctx.Done():
			t.Fatalf("-pi never listed the seeder downloading; last:\n%s", p.mustRemote(t, ctx, "-t", "1", "-pi"))
		case <-time.After(200 * time.Millisecond):
		}
		m = row.FindStringSubmatch(p.mustRemote(t, ctx, "-t", "1", "-pi"))
	}
	t.Logf("-pi: flags %s, %s kB/s from %s", m[1], m[2], m[3])
	info := p.mustRemote(t, ctx, "-t", "1", "-i")
	if !strings.Contains(info, "Peers: connected to 1, uploading to 0, downloading from 1") {
		t.Errorf("-i does not count the seeder:\n%s", info)
	}
	p.waitRow(t, ctx, "peers.bin", complete100)
	if err := swarmtest.ComparePayload(s.dir, dl, s.files); err != nil {
		t.Error(err)
	}
	p.stop(t, ctx)
}
