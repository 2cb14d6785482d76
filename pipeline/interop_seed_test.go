package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// seedFiles is a multi-file torrent of about 32 MiB for real leechers to take
// from a bitstorm seeder: odd sizes in nested directories, files that start
// and end inside pieces, one smaller than a 256 KiB piece.
var seedFiles = []swarmtest.FileSpec{
	{Path: "seeded/intro.txt", Size: 54_321},
	{Path: "seeded/disc1/track01.flac", Size: 9<<20 + 333},
	{Path: "seeded/disc1/track02.flac", Size: 6<<20 - 1},
	{Path: "seeded/disc2/deep/track03.flac", Size: 11<<20 + 262_145},
	{Path: "seeded/cover.jpg", Size: 777_777},
	{Path: "seeded/z/last.bin", Size: 5<<20 + 1},
}

// TestInteropRealLeechersFromBitstormSeeder seeds a multi-file torrent with the
// bitstorm binary, found through opentracker on 127.0.0.1, and has libtorrent
// and then aria2c download it from that seeder alone. aria2c first tries an
// encrypted (MSE) handshake, which bitstorm must drop so that aria2c retries in
// plain BitTorrent.
func TestInteropRealLeechersFromBitstormSeeder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs opentracker, libtorrent, aria2c and the bitstorm binary")
	}
	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent, swarmtest.Aria2c)
	if total := swarmtest.TotalSize(seedFiles); total < 32<<20 {
		t.Fatalf("payload is %d bytes, want at least 32 MiB", total)
	}
	bin := buildBitstorm(t)

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	tp := newTrackedPayload(t, ctx, 20241122, seedFiles)
	port, err := swarmtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	seeder := startBitstormSeeder(t, ctx, bin, tp.torrent, tp.dir, port, filepath.Join(tp.dir, "bitstorm-seed.log"))
	if err := tp.tracker.WaitSeeders(ctx, tp.hash, 1); err != nil {
		t.Fatal(err)
	}

	leechers := []struct {
		name string
		run  func(ctx context.Context, torrent, out string) (swarmtest.Result, error)
	}{
		{"libtorrent", swarmtest.RunLibtorrentLeecher},
		{"aria2c", swarmtest.RunAria2c},
	}
	for _, l := range leechers {
		t.Run(l.name, func(t *testing.T) {
			lctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			out := filepath.Join(t.TempDir(), "out")
			res, err := l.run(lctx, tp.torrent, out)
			if err != nil || t.Failed() {
				t.Logf("bitstorm seeder log (last lines):\n%s", seeder.Tail(40))
			}
			if lctx.Err() != nil {
				t.Fatalf("%s did not finish within the deadline: %v", l.name, err)
			}
			if err != nil {
				t.Fatalf("%s: %v", l.name, err)
			}
			if err := swarmtest.ComparePayload(tp.dir, out, seedFiles); err != nil {
				t.Fatalf("%s's files differ from the payload:\n%v", l.name, err)
			}
			if d := droppedPeers(seeder.LogPath); len(d) > 0 {
				t.Errorf("the bitstorm seeder dropped peers:\n%+v", d)
			}
			t.Logf("%s from the bitstorm seeder: %.1f MiB in %.2fs = %.1f MiB/s (wall includes start-up and announces); leecher cpu %.2fs",
				l.name, float64(swarmtest.TotalSize(seedFiles))/(1<<20), res.Wall.Seconds(),
				mibPerSec(seedFiles, res.Wall), res.CPU().Seconds())
		})
	}
	select {
	case <-seeder.Done():
		_, err := seeder.Wait()
		t.Fatalf("bitstorm seeder exited while seeding: %v", err)
	default:
	}
}

// nsAddr is the address the transmission test's namespace adds to its loopback: it exists
// only there, and transmission dials it (it never dials 127.0.0.0/8).
const nsAddr = "10.77.0.1"

// TestInteropTransmissionLeecher has transmission download a multi-file torrent from a
// bitstorm seeder. Transmission never dials a peer at 127.0.0.0/8, so the tracker (bitstorm
// tracker), the seeder and transmission all run in a network namespace of the test's own
// whose loopback also carries 10.77.0.1, where they find each other. That takes root.
// Transmission decides interest and unchoking every 10 s, so the transfer starts late.
func TestInteropTransmissionLeecher(t *testing.T) {
	if testing.Short() {
		t.Skip("runs transmission and the bitstorm binary in a network namespace")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to make a network namespace")
		}
		t.Skip("needs root to make a network namespace")
	}
	swarmtest.Require(t, swarmtest.Mktorrent, swarmtest.Transmission, swarmtest.TransmissionRemote, swarmtest.IPRoute2)
	bin := buildBitstorm(t)
	in := newNetns(t)

	// Not t.Context(), which ends before the cleanups run, and a cleanup, not a defer:
	// transmission, whose cleanup comes later and so runs first, must get a SIGTERM (it
	// then removes its lock file) before the context's SIGKILL.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 4*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	if err := swarmtest.WritePayload(dir, 20241122, seedFiles); err != nil {
		t.Fatal(err)
	}
	_, announce := startTracker(t, ctx, nsCommand(in, bin, "tracker", "--listen", nsAddr+":6969"), filepath.Join(dir, "tracker.log"))
	if want := "http://" + nsAddr + ":6969/announce"; announce != want {
		t.Fatalf("bitstorm tracker announces %s, want %s", announce, want)
	}
	torrent := filepath.Join(dir, "seeded.torrent")
	if err := swarmtest.MakeTorrent(ctx, filepath.Join(dir, "seeded"), torrent, announce, 18); err != nil {
		t.Fatal(err)
	}
	m, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	seeder := startBitstormSeeder(t, ctx, bin, torrent, dir, 6881, filepath.Join(dir, "bitstorm-seed.log"), in...)

	tr := startTransmission(t, ctx, in, filepath.Join(dir, "transmission"))
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	if _, err := tr.remote(ctx, "--add", torrent, "--download-dir", out); err != nil {
		t.Fatal(err)
	}
	var first time.Time // the first poll that saw data
	for {
		info, err := tr.remote(ctx, "--torrent", m.HexHash(), "--info")
		if err != nil {
			t.Logf("bitstorm seeder log (last lines):\n%s", seeder.Tail(30))
			t.Logf("transmission log (last lines):\n%s", tr.proc.Tail(30))
			t.Fatal(err)
		}
		if first.IsZero() && !strings.Contains(info, "Have: None") {
			first = time.Now()
		}
		if strings.Contains(info, "Percent Done: 100%") {
			break
		}
		// A seeder that drops transmission (for its thousands of queued requests, say)
		// still gets there, reconnected every 20 s, but in minutes.
		if d := droppedPeers(seeder.LogPath); len(d) > 0 {
			t.Logf("transmission log (last lines):\n%s", tr.proc.Tail(30))
			t.Fatalf("the bitstorm seeder dropped transmission:\n%+v", d)
		}
		select {
		case <-ctx.Done():
			t.Logf("bitstorm seeder log (last lines):\n%s", seeder.Tail(30))
			t.Logf("transmission log (last lines):\n%s", tr.proc.Tail(30))
			t.Fatalf("transmission did not finish within the deadline; last status:\n%s", info)
		case <-time.After(250 * time.Millisecond):
		}
	}
	done := time.Now()
	if first.IsZero() {
		first = added
	}
	tr.stop() // writes out what it caches
	if err := swarmtest.ComparePayload(dir, out, seedFiles); err != nil {
		t.Fatalf("transmission's files differ from the payload:\n%v", err)
	}
	t.Logf("transmission from the bitstorm seeder: %.1f MiB in %.2fs from the add = %.1f MiB/s; %.2fs from the first data = %.1f MiB/s",
		float64(swarmtest.TotalSize(seedFiles))/(1<<20), done.Sub(added).Seconds(), mibPerSec(seedFiles, done.Sub(added)),
		done.Sub(first).Seconds(), mibPerSec(seedFiles, done.Sub(first)))
}

// newNetns makes a network namespace, brings its loopback up with nsAddr on it too, and
// returns the command prefix that runs a program inside it. The namespace is deleted
// when the test ends, after the processes started later are stopped.
func newNetns(t *testing.T) []string {
	t.Helper()
	name := fmt.Sprintf("bitstorm-test-%08x", rand.Uint32())
	ip := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := ip("netns", "add", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ip("netns", "delete", name); err != nil {
			t.Error(err)
		}
	})
	if err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	if err := ip("-n", name, "addr", "add", nsAddr+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	return []string{"ip", "netns", "exec", name}
}

// nsCommand returns the command that runs name with args behind the prefix.
func nsCommand(prefix []string, name string, args ...string) *exec.Cmd {
	all := slices.Concat(prefix, []string{name}, args)
	return exec.Command(all[0], all[1:]...)
}

// transmissionDaemon is a transmission-daemon, driven by transmission-remote in its namespace.
type transmissionDaemon struct {
	proc *swarmtest.Process
	cmd  *exec.Cmd
	in   []string
}

// startTransmission runs transmission-daemon behind the prefix in, with its configuration
// in confDir: peers on nsAddr:51413, RPC on 127.0.0.1:9091 without authentication, no
// DHT, LPD, PEX, uTP or port mapping, and no encryption. It returns once RPC answers;
// the daemon is stopped when the test ends.
func startTransmission(t *testing.T, ctx context.Context, in []string, confDir string) *transmissionDaemon {
	t.Helper()
	settings := map[string]any{
		"bind-address-ipv4": nsAddr, "bind-address-ipv6": "::1",
		"peer-port": 51413, "peer-port-random-on-start": false,
		"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
		"port-forwarding-enabled": false, "blocklist-enabled": false,
		"encryption":  0, // prefer plain BitTorrent
		"rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": 9091,
		"rpc-authentication-required": false, "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false,
		"speed-limit-down-enabled": false, "speed-limit-up-enabled": false, "alt-speed-enabled": false,
		"ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
		"incomplete-dir-enabled": false, "watch-dir-enabled": false, "rename-partial-files": false,
		"start-added-torrents": true, "download-queue-enabled": false,
	}
	data, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "settings.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := nsCommand(in, "transmission-daemon", "--foreground", "--config-dir", confDir, "--log-info")
	p, err := swarmtest.Start(ctx, cmd, confDir+".log")
	if err != nil {
		t.Fatal(err)
	}
	tr := &transmissionDaemon{proc: p, cmd: cmd, in: in}
	t.Cleanup(tr.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := tr.remote(ctx, "--list")
		if err == nil {
			return tr
		}
		select {
		case <-p.Done():
			_, werr := p.Wait()
			t.Fatalf("transmission-daemon exited: %v\n%s", werr, p.Tail(20))
		case <-ctx.Done():
			t.Fatalf("transmission-daemon: no RPC: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("transmission-daemon: no RPC after 30s: %v\n%s", err, p.Tail(20))
		}
	}
}

// remote runs transmission-remote against the daemon with args and returns its output.
func (tr *transmissionDaemon) remote(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	all := slices.Concat(tr.in, []string{"transmission-remote", "127.0.0.1:9091"}, args)
	cmd := exec.CommandContext(ctx, all[0], all[1:]...)
	cmd.Env = withoutProxy(os.Environ()) // libcurl would send 127.0.0.1 to a proxy
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("transmission-remote %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// stop asks transmission-daemon to quit (SIGTERM: it writes out its cache and removes its
// lock file /tmp/tr_session_id_*), then kills what is left after 10 s. Safe to call twice.
func (tr *transmissionDaemon) stop() {
	select {
	case <-tr.proc.Done():
		return
	default:
	}
	_ = tr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tr.proc.Done():
	case <-time.After(10 * time.Second):
	}
	tr.proc.Stop()
}

func withoutProxy(env []string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return strings.HasSuffix(strings.ToLower(k), "_proxy")
	})
}
