package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// Protocol encryption (MSE/PE) against real clients that insist on it: each transfer below
// can only happen over an encrypted handshake, so its completing shows the encrypted path
// is the one used (the clients refuse plain handshakes, or BitStorm is told to).

// TestInteropEncryptionLibtorrent trades seedFiles with libtorrent forcing encryption
// (pe_forced both ways, RC4 only): BitStorm, with its default policy (prefer), downloads
// from a forced libtorrent seeder alone, and with --encryption require too; then a forced
// libtorrent leecher downloads from a BitStorm seeder (prefer) it finds on opentracker.
func TestInteropEncryptionLibtorrent(t *testing.T) {
	ctx, bin, sw, _ := opentrackerSwarm(t, 4*time.Minute, 20260101, seedFiles)
	lt, err := swarmtest.StartLibtorrentEncrypted(ctx, sw.torrent, sw.dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lt.Stop)
	addr := "127.0.0.1:" + strconv.Itoa(libtorrentPort(t, lt))
	for _, policy := range []string{"prefer", "require"} {
		t.Run("bitstorm "+policy+" from libtorrent forced", func(t *testing.T) {
			leechEncrypted(t, ctx, bin, sw, "libtorrent (forced)", addr, policy, func() string { return lt.Tail(20) })
		})
	}
	lt.Stop()

	t.Run("libtorrent forced from bitstorm prefer", func(t *testing.T) {
		seeder := startEncryptedSeeder(t, ctx, bin, sw, "prefer")
		out := filepath.Join(t.TempDir(), "out")
		leech, err := swarmtest.StartLibtorrentEncrypted(ctx, sw.torrent, out, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(leech.Stop)
		res, err := leech.Wait()
		if err != nil || ctx.Err() != nil {
			t.Fatalf("libtorrent (forced) leecher: %v (context: %v)\n%s\nbitstorm seeder:\n%s", err, ctx.Err(), leech.Tail(20), seeder.Tail(20))
		}
		if err := swarmtest.ComparePayload(sw.dir, out, seedFiles); err != nil {
			t.Fatalf("libtorrent's files differ from the payload:\n%v", err)
		}
		if d := droppedPeers(seeder.LogPath); len(d) > 0 {
			t.Errorf("the bitstorm seeder dropped peers:\n%+v", d)
		}
		t.Logf("libtorrent (forced) from the bitstorm seeder: %.1f MiB in %.2fs (wall includes start-up and announces); leecher cpu %.2fs",
			float64(swarmtest.TotalSize(seedFiles))/(1<<20), res.Wall.Seconds(), res.CPU().Seconds())
	})
}

// TestInteropEncryptionAria2 has aria2c, refusing plain handshakes (--bt-require-crypto),
// download from a BitStorm seeder: one with the default policy (prefer), which takes
// aria2's encrypted handshake, and one with --encryption require, where aria2 must also
// use RC4 (--bt-min-crypto-level=arc4).
func TestInteropEncryptionAria2(t *testing.T) {
	ctx, bin, sw, _ := opentrackerSwarm(t, 4*time.Minute, 20260102, seedFiles)
	swarmtest.Require(t, swarmtest.Aria2c)
	for _, tc := range []struct {
		policy string
		aria2  []string
	}{
		{"prefer", []string{"--bt-require-crypto=true"}},
		{"require", []string{"--bt-require-crypto=true", "--bt-min-crypto-level=arc4"}},
	} {
		t.Run("aria2c require-crypto from bitstorm "+tc.policy, func(t *testing.T) {
			seeder := startEncryptedSeeder(t, ctx, bin, sw, tc.policy)
			lctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			out := filepath.Join(t.TempDir(), "out")
			res, err := runAria2c(lctx, sw.torrent, out, tc.aria2...)
			if err != nil || lctx.Err() != nil {
				t.Fatalf("aria2c: %v (context: %v)\nbitstorm seeder:\n%s", err, lctx.Err(), seeder.Tail(30))
			}
			if err := swarmtest.ComparePayload(sw.dir, out, seedFiles); err != nil {
				t.Fatalf("aria2c's files differ from the payload:\n%v", err)
			}
			if d := droppedPeers(seeder.LogPath); len(d) > 0 {
				t.Errorf("the bitstorm seeder dropped peers:\n%+v", d)
			}
			t.Logf("aria2c (%v) from the bitstorm seeder (%s): %.1f MiB in %.2fs; leecher cpu %.2fs", tc.aria2, tc.policy,
				float64(swarmtest.TotalSize(seedFiles))/(1<<20), res.Wall.Seconds(), res.CPU().Seconds())
		})
	}
}

// TestInteropEncryptionRTorrent trades seedFiles with rtorrent requiring encryption
// (protocol.encryption allow_incoming,try_outgoing,require): rtorrent downloads from a
// BitStorm seeder with --encryption require; then, that seeder gone, a BitStorm leecher
// with --encryption require downloads from rtorrent alone.
func TestInteropEncryptionRTorrent(t *testing.T) {
	ctx, bin, sw, _ := opentrackerSwarm(t, 4*time.Minute, 20260103, seedFiles)
	swarmtest.Require(t, swarmtest.RTorrent)
	seeder := startEncryptedSeeder(t, ctx, bin, sw, "require")
	rtOut := t.TempDir()
	started := time.Now()
	rt, rtPort := startRTorrentEncrypted(t, ctx, sw.torrent, rtOut)
	for swarmtest.ComparePayload(sw.dir, rtOut, seedFiles) != nil {
		if exited(rt) {
			t.Fatalf("rtorrent exited\n%s", rt.Tail(20))
		}
		sleepOrFail(t, ctx, 200*time.Millisecond, func() string {
			return "rtorrent did not finish\nrtorrent:\n" + rt.Tail(20) + "\nbitstorm seeder:\n" + seeder.Tail(20)
		})
	}
	t.Logf("rtorrent (encryption required) from the bitstorm seeder (require): %.1f MiB in %.2fs from its start",
		float64(swarmtest.TotalSize(seedFiles))/(1<<20), time.Since(started).Seconds())
	seeder.Stop()

	leechEncrypted(t, ctx, bin, sw, "rtorrent (require)", swarmtest.RTorrentAddr+":"+strconv.Itoa(rtPort), "require",
		func() string { return rt.Tail(20) })
}

// startEncryptedSeeder runs `bitstorm seed --encryption policy` on sw's payload at
// 127.0.0.1 and returns once a tracker has answered its announce; it stops with the test.
func startEncryptedSeeder(t *testing.T, ctx context.Context, bin string, sw *trackedPayload, policy string) *swarmtest.Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "bitstorm-seed-"+policy+".log")
	p, _ := startBitstorm(t, ctx, bin, logPath, "seed", "--verbose", "--encryption", policy, "--data", sw.dir,
		"--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), sw.torrent)
	if err := waitEvent(ctx, p, "tracker_reply", time.Minute); err != nil {
		t.Fatalf("bitstorm seeder: %v", err)
	}
	return p
}

// leechEncrypted downloads sw's torrent with `bitstorm download --encryption policy` from
// the one peer at addr, a real client called name, and checks the bytes and that bitstorm
// dropped no peer. tail tells what the other client logged, for failures.
func leechEncrypted(t *testing.T, ctx context.Context, bin string, sw *trackedPayload, name, addr, policy string, tail func() string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	leech, _ := startBitstorm(t, ctx, bin, filepath.Join(t.TempDir(), "leecher.log"), "download", "--verbose",
		"--encryption", policy, "--no-peers-timeout", "60s", "--out", out, "--listen", "127.0.0.1",
		"--port", strconv.Itoa(freePort(t)), "--peer", addr, sw.torrent)
	res, err := leech.Wait()
	if err != nil || ctx.Err() != nil {
		t.Fatalf("bitstorm (%s) download from %s: %v (context: %v)\n%s\n%s:\n%s", policy, name, err, ctx.Err(), leech.Tail(20), name, tail())
	}
	size := float64(swarmtest.TotalSize(sw.files)) / (1 << 20)
	t.Logf("bitstorm (%s) from %s: %.1f MiB in %.2fs = %.1f MiB/s; cpu %.2fs", policy, name, size, res.Wall.Seconds(),
		size/res.Wall.Seconds(), res.CPU().Seconds())
	if err := swarmtest.ComparePayload(sw.dir, out, sw.files); err != nil {
		t.Fatalf("bitstorm's files from %s differ from the payload:\n%v", name, err)
	}
	if dropped := droppedPeers(leech.LogPath); len(dropped) > 0 {
		t.Errorf("bitstorm dropped %s: %+v", name, dropped)
	}
}

// runAria2c is swarmtest.RunAria2c with extra aria2c options.
func runAria2c(ctx context.Context, torrentPath, outDir string, extra ...string) (swarmtest.Result, error) {
	port, err := swarmtest.FreePort()
	if err != nil {
		return swarmtest.Result{}, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return swarmtest.Result{}, err
	}
	args := append([]string{"--no-conf=true", "--dir=" + outDir, "--seed-time=0",
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--summary-interval=0", "--listen-port=" + strconv.Itoa(port), "--interface=127.0.0.1", "--disable-ipv6=true"},
		extra...)
	p, err := swarmtest.Start(ctx, exec.Command("aria2c", append(args, torrentPath)...), filepath.Clean(outDir)+".log")
	if err != nil {
		return swarmtest.Result{}, err
	}
	return p.Wait()
}

// rtorrentEncryptedRC is swarmtest's rtorrent configuration (see StartRTorrent) with
// protocol encryption required both ways.
const rtorrentEncryptedRC = `directory.default.set = %s
session.path.set = %s
network.bind_address.set = %s
network.local_address.set = %s
network.port_range.set = %d-%d
network.port_random.set = no
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = no
protocol.encryption.set = allow_incoming,try_outgoing,require
system.daemon.set = true
load.start = %s
`

// startRTorrentEncrypted is swarmtest.StartRTorrent with encryption required: rtorrent
// downloads torrentPath into downloadDir, or seeds it from there; it returns the port it
// accepts peers on at swarmtest.RTorrentAddr, and stops with the test.
func startRTorrentEncrypted(t *testing.T, ctx context.Context, torrentPath, downloadDir string) (*swarmtest.Process, int) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	session := filepath.Join(dir, "session")
	if err := os.MkdirAll(session, 0o755); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "rtorrent.rc")
	conf := fmt.Sprintf(rtorrentEncryptedRC, downloadDir, session, swarmtest.RTorrentAddr, swarmtest.RTorrentAddr, port, port, torrentPath)
	if err := os.WriteFile(rc, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := swarmtest.Start(ctx, exec.Command("rtorrent", "-n", "-o", "import="+rc), filepath.Join(dir, "rtorrent.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, port
}
