package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// The latency table: one libtorrent seeder reached only through a swarmtest.DelayProxy,
// which adds a round trip of 0, 50 or 200 ms at the application level (this kernel has no
// netem), leeched by each client in turn. The seeder announces to a tracker of its own;
// the leechers' torrent names a second tracker, which knows one peer: the proxy, announced
// there by the bench as a seeder. So every byte between leecher and seeder crosses the
// proxy, and the leechers meet no other peer.

// The proxy runs in a process of its own, this program started again with proxyChildArg:
// a child's peak RSS as Linux reports it (getrusage) includes the peak of the process
// that started it, and the bytes in flight through the proxy would count as the clients'.
const proxyChildArg = "-delay-proxy-child"

func init() {
	if len(os.Args) == 4 && os.Args[1] == proxyChildArg {
		os.Exit(proxyChild(os.Args[2], os.Args[3]))
	}
}

// proxyChild runs a delay proxy to target with the round trip rtt, says where it listens
// on stdout, and stops when stdin ends (the bench closed it, or exited).
func proxyChild(target, rtt string) int {
	d, err := time.ParseDuration(rtt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "delay proxy:", err)
		return 2
	}
	p, err := swarmtest.StartDelayProxy(target, d)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening %s\n", p.Addr())
	io.Copy(io.Discard, os.Stdin)
	p.Close()
	return 0
}

// startProxy starts a delay proxy process to target with the round trip rtt and returns
// where it listens, and how to stop it.
func startProxy(ctx context.Context, target string, rtt time.Duration) (netip.AddrPort, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	cmd := exec.CommandContext(ctx, exe, proxyChildArg, target, rtt.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return netip.AddrPort{}, nil, err
	}
	stop := func() {
		stdin.Close()
		cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, perr := netip.ParseAddrPort(strings.TrimSpace(strings.TrimPrefix(line, "listening ")))
	if err != nil || perr != nil {
		stop()
		return netip.AddrPort{}, nil, fmt.Errorf("delay proxy: %q: %v %v", line, err, perr)
	}
	return addr, stop, nil
}

// parseLatencies reads a comma-separated list of round trips ("0,50ms,200ms"); a bare
// number is milliseconds.
func parseLatencies(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if ms, err := strconv.Atoi(f); err == nil {
			f = strconv.Itoa(ms) + "ms"
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("-latencies: %q is not a round trip", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// latencyTable makes a payload of cfg.latencyMiB, runs every client through the delay
// proxy at each round trip of cfg.latencies, and prints the table; it returns the rows that
// failed.
func latencyTable(ctx context.Context, cfg config, bin, dir string) ([]string, error) {
	ldir := filepath.Join(dir, "latency")
	if err := os.MkdirAll(ldir, 0o755); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("latency-%dMiB.bin", cfg.latencyMiB)
	size := int64(cfg.latencyMiB) << 20
	if err := swarmtest.WritePayload(ldir, 3, []swarmtest.FileSpec{{Path: name, Size: size}}); err != nil {
		return nil, err
	}
	src := filepath.Join(ldir, name)
	want, err := swarmtest.SHA256File(src)
	if err != nil {
		return nil, err
	}
	// The seeder's tracker, and the leechers'.
	seedTr, err := swarmtest.StartTracker(ctx, ldir)
	if err != nil {
		return nil, err
	}
	defer seedTr.Stop()
	leechTr, err := swarmtest.StartTracker(ctx, ldir)
	if err != nil {
		return nil, err
	}
	defer leechTr.Stop()
	seedTorrent := filepath.Join(ldir, "seed.torrent")
	leechTorrent := filepath.Join(ldir, "leech.torrent")
	if err := swarmtest.MakeTorrent(ctx, src, seedTorrent, seedTr.AnnounceURL, cfg.pieceLog2); err != nil {
		return nil, err
	}
	if err := swarmtest.MakeTorrent(ctx, src, leechTorrent, leechTr.AnnounceURL, cfg.pieceLog2); err != nil {
		return nil, err
	}
	hash, err := swarmtest.InfoHash(ctx, seedTorrent)
	if err != nil {
		return nil, err
	}
	if h, err := swarmtest.InfoHash(ctx, leechTorrent); err != nil || h != hash {
		return nil, fmt.Errorf("the leechers' torrent has info hash %s (%v), the seeder's %s", h, err, hash)
	}
	if err := seedTr.Allow(ctx, hash); err != nil {
		return nil, err
	}
	if err := leechTr.Allow(ctx, hash); err != nil {
		return nil, err
	}
	seeder, ports, err := swarmtest.StartLibtorrentSeeders(ctx, seedTorrent, ldir, 1)
	if err != nil {
		return nil, err
	}
	defer seeder.Stop()
	target := fmt.Sprintf("127.0.0.1:%d", ports[0])

	fmt.Printf("\nlong paths: %d MiB in one file, %d KiB pieces, one libtorrent seeder (seed_mode) behind a delay proxy\n\n",
		cfg.latencyMiB, 1<<cfg.pieceLog2>>10)
	var rows []row
	for _, rtt := range cfg.latencies {
		if ctx.Err() != nil {
			break
		}
		r, err := latencyRows(ctx, cfg, bin, ldir, leechTorrent, name, want, hash, leechTr, target, rtt, seeder.PID())
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	fmt.Println()
	fmt.Printf(rowFormat, "leecher (round trip)", "MiB/s", "CPU s", "CPU s/GiB", "peak RSS MiB", "seeder CPU s")
	failed := printRows(rows, size)
	fmt.Println("The round trip is added by a userspace proxy (each chunk held half of it each way) on loopback.")
	return failed, nil
}

// latencyRows runs every client through a proxy that adds rtt, announced to tr as the one
// seeder.
func latencyRows(ctx context.Context, cfg config, bin, dir, torrent, name, want, hash string, tr *swarmtest.Tracker,
	target string, rtt time.Duration, seederPID int) ([]row, error) {
	proxy, stop, err := startProxy(ctx, target, rtt)
	if err != nil {
		return nil, err
	}
	defer stop()
	var id [20]byte
	copy(id[:], "-BP0001-")
	rand.Read(id[8:])
	if err := announce(ctx, tr, hash, id, proxy.Port(), "started"); err != nil {
		return nil, err
	}
	defer announce(context.WithoutCancel(ctx), tr, hash, id, proxy.Port(), "stopped")
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		return nil, err
	}
	// A directory per round trip: with -keep, a client would find its last download.
	dir = filepath.Join(dir, "rtt-"+rtt.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var rows []row
	for _, c := range cfg.clients {
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("running %s, round trip %v ...\n", c, rtt)
		r := leech(ctx, cfg, c, bin, dir, torrent, name, want, []int{seederPID})
		if r.err != nil {
			fmt.Printf("  %s failed: %v\n", c, r.err)
		}
		r.client = fmt.Sprintf("%s (%v)", r.client, rtt)
		rows = append(rows, r)
	}
	return rows, nil
}

// announce tells tr that the peer id at 127.0.0.1:port seeds the torrent (BEP 3).
func announce(ctx context.Context, tr *swarmtest.Tracker, infoHash string, id [20]byte, port uint16, event string) error {
	raw, err := hex.DecodeString(infoHash)
	if err != nil {
		return err
	}
	q := url.Values{
		"info_hash": {string(raw)}, "peer_id": {string(id[:])}, "port": {strconv.Itoa(int(port))},
		"uploaded": {"0"}, "downloaded": {"0"}, "left": {"0"}, "compact": {"1"}, "event": {event},
	}
	// opentracker does not decode '+' as a space in info_hash: escape it as %20.
	u := tr.AnnounceURL + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("announce to %s: %w", tr.AnnounceURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if strings.Contains(string(body), "failure reason") {
		return fmt.Errorf("announce to %s: %q", tr.AnnounceURL, body)
	}
	return nil
}
