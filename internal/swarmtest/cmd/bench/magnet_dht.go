package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// netns is a network namespace of the bench's own: a simulated internet on its loopback,
// with an address per peer. Nothing there reaches the host's network.
type netns struct {
	name string
}

func (n *netns) ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// newNetns makes the namespace with lo up and addrs on it.
func newNetns(addrs []string) (*netns, error) {
	n := &netns{name: fmt.Sprintf("bitstorm-bench-%08x", rand.Uint32())}
	if err := n.ip("netns", "add", n.name); err != nil {
		return nil, err
	}
	if err := n.ip("-n", n.name, "link", "set", "lo", "up"); err != nil {
		n.close()
		return nil, err
	}
	for _, a := range addrs {
		if err := n.ip("-n", n.name, "addr", "add", a+"/32", "dev", "lo"); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

func (n *netns) close() { _ = n.ip("netns", "delete", n.name) }

// command runs name with args inside the namespace.
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// from makes connections to every address of to leave from src: a socket that is not
// bound would leave from the address it dials and look like a peer talking to itself.
func (n *netns) from(src string, to []string) error {
	for _, a := range to {
		if a == src {
			continue
		}
		if err := n.ip("-n", n.name, "route", "replace", "local", a, "dev", "lo", "table", "local", "src", src); err != nil {
			return err
		}
	}
	return nil
}

// magnetDHT runs the DHT rows: three libtorrent DHT nodes and a libtorrent seeder that
// announced itself to them, and a link with no tracker; each client knows one node. It
// returns why it did not run, when it did not.
func magnetDHT(ctx context.Context, cfg config, bin, mdir, name, want string) ([]magnetRow, string) {
	if os.Geteuid() != 0 {
		return nil, "they need root to make a network namespace"
	}
	if err := swarmtest.Ensure(swarmtest.IPRoute2); err != nil {
		return nil, err.Error()
	}
	rows, err := runMagnetDHT(ctx, cfg, bin, mdir, name, want)
	if err != nil {
		return rows, "setting up the DHT: " + err.Error()
	}
	return rows, ""
}

func runMagnetDHT(ctx context.Context, cfg config, bin, mdir, name, want string) ([]magnetRow, error) {
	addrs := append([]string{dhtSeeder}, dhtNodes...)
	for _, c := range cfg.clients {
		addrs = append(addrs, dhtClientIP[c])
	}
	ns, err := newNetns(addrs)
	if err != nil {
		return nil, err
	}
	defer ns.close() // after the processes, stopped by the defers below
	lt := func(logName, mode string, args ...string) (*swarmtest.Process, error) {
		cmdline, err := swarmtest.LibtorrentDHTArgs(mdir, mode, args...)
		if err != nil {
			return nil, err
		}
		return swarmtest.Start(ctx, ns.command(cmdline[0], cmdline[1:]...), filepath.Join(mdir, logName))
	}
	var nodeArgs []string
	for _, a := range dhtNodes {
		nodeArgs = append(nodeArgs, "--ip", a)
	}
	nodes, err := lt("dht-nodes.log", "nodes", append(nodeArgs, "--port", dhtPort)...)
	if err != nil {
		return nil, err
	}
	defer nodes.Stop()
	if err := waitLog(ctx, nodes, "ready nodes=", time.Minute); err != nil {
		return nil, err
	}
	// A torrent that names no tracker, for the seeder.
	torrent := filepath.Join(mdir, "dht.torrent")
	if out, err := exec.CommandContext(ctx, bin, "create", "--piece-length", fmt.Sprintf("%dK", 1<<cfg.pieceLog2>>10),
		"--out", torrent, filepath.Join(mdir, name)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bitstorm create: %v: %s", err, bytes.TrimSpace(out))
	}
	m, err := metainfo.Load(torrent)
	if err != nil {
		return nil, err
	}
	if len(m.Trackers()) != 0 {
		return nil, fmt.Errorf("the DHT torrent names trackers %v", m.Trackers())
	}
	entry := dhtNodes[0] + ":" + dhtPort
	seeder, err := lt("dht-seed.log", "seed", "--ip", dhtSeeder, "--port", dhtPort, "--torrent", torrent,
		"--save", mdir, "--node", entry)
	if err != nil {
		return nil, err
	}
	defer seeder.Stop()
	if err := waitLog(ctx, seeder, "seeding ", time.Minute); err != nil {
		return nil, err
	}
	// From then on a get_peers traversal can find the seeder.
	announced := fmt.Sprintf("announce-in ip=%s port=%s info_hash=%s", dhtSeeder, dhtPort, m.HexHash())
	if err := waitLog(ctx, nodes, announced, 2*time.Minute); err != nil {
		return nil, err
	}
	link := "magnet:?xt=urn:btih:" + m.HexHash() + "&dn=" + url.QueryEscape(name)

	var rows []magnetRow
	for _, c := range cfg.clients {
		if ctx.Err() != nil {
			break
		}
		ip := dhtClientIP[c]
		if err := ns.from(ip, addrs); err != nil {
			return rows, err
		}
		out := filepath.Join(mdir, "dht-"+c)
		state := filepath.Join(mdir, "dht-state-"+c) // empty: a cold start
		for _, d := range []string{out, state} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return rows, err
			}
		}
		run := magnetRun{log: out + ".log", file: filepath.Join(out, name)}
		switch c {
		case "bitstorm":
			run.cmd = ns.command(bin, "download", "--out", out, "--listen", ip, "--port", dhtPort,
				"--dht-bootstrap", entry, "--state-dir", state, "--quiet", link)
		case "libtorrent":
			cmdline, err := swarmtest.LibtorrentDHTArgs(mdir, "leech", "--ip", ip, "--port", dhtPort,
				"--magnet", link, "--save", out, "--node", entry, "--first-piece")
			if err != nil {
				return rows, err
			}
			run.cmd = ns.command(cmdline[0], cmdline[1:]...)
			run.firstFromLog = true
		case "aria2c":
			a := aria2cMagnet(out, link, "--listen-port="+dhtPort, "--interface="+ip, "--enable-dht=true",
				"--dht-listen-port="+dhtPort, "--dht-entry-point="+entry, "--dht-file-path="+filepath.Join(state, "dht.dat"))
			run.cmd = ns.command(a.Path, a.Args[1:]...)
		}
		rows = append(rows, timeMagnet(ctx, cfg, c, "DHT only", run, &m.Info, want))
	}
	return rows, nil
}

// waitLog polls p's log until a line holds substr, p exits, ctx ends or timeout passes.
func waitLog(ctx context.Context, p *swarmtest.Process, substr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, _ := os.ReadFile(p.LogPath); bytes.Contains(b, []byte(substr)) {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited before %q\n%s", p.Name, substr, p.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("%s: no %q: %w\n%s", p.Name, substr, ctx.Err(), p.Tail(20))
		case <-tick.C:
		}
	}
}
