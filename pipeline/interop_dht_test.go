package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/dhtnode"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// The DHT tests' simulated internet: one network namespace whose loopback carries an
// address per peer, so that each DHT node and peer has an IP of its own (libtorrent's DHT
// distrusts many nodes on one IP). Nothing there reaches the host's network.
const (
	dhtPort      = "6881" // every node and peer listens on it, each on its own address
	dhtLTSeeder  = "10.77.1.10"
	dhtBitstorm  = "10.77.1.20" // a bitstorm download or seeder
	dhtBitstorm2 = "10.77.1.21" // the download after a restart
	dhtLTLeecher = "10.77.1.30"
	dhtNowhere   = "10.77.1.99:6881" // no such address: a bootstrap that reaches no one
)

var dhtNodeIPs = []string{"10.77.1.1", "10.77.1.2", "10.77.1.3"}

// dhtFiles is the payload the DHT tests move: small, because finding the peers is the point.
var dhtFiles = []swarmtest.FileSpec{
	{Path: "dhtswarm/a.bin", Size: 3<<20 + 17},
	{Path: "dhtswarm/sub/b.bin", Size: 1<<20 - 5},
	{Path: "dhtswarm/c.txt", Size: 12_345},
}

// dhtSwarm is a namespace with libtorrent DHT nodes meshed together, and a payload with a
// torrent that names no tracker.
type dhtSwarm struct {
	ctx     context.Context
	in      []string // the command prefix that runs a program in the namespace
	bin     string   // the bitstorm binary
	dir     string   // payload, torrent, logs
	torrent string
	meta    *metainfo.MetaInfo
	nodes   *swarmtest.Process
}

// newDHTSwarm builds the namespace, starts three libtorrent DHT nodes that know each
// other, and makes the payload and its trackerless torrent. It skips under -short, needs
// root (a failure under CI=true), and ends everything when the test does.
func newDHTSwarm(t *testing.T, seed int64) *dhtSwarm {
	t.Helper()
	if testing.Short() {
		t.Skip("runs libtorrent DHT nodes and the bitstorm binary in a network namespace")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to make a network namespace")
		}
		t.Skip("needs root to make a network namespace")
	}
	swarmtest.Require(t, swarmtest.Libtorrent, swarmtest.IPRoute2)
	s := &dhtSwarm{bin: buildBitstorm(t), in: newNetns(t), dir: t.TempDir()}
	name := s.in[len(s.in)-1]
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// bitstorm dials from an unbound socket, which on lo would leave from the address it
	// dials and look like a peer talking to itself: connections to the libtorrent peers
	// leave from bitstorm's address, and those to bitstorm from the libtorrent leecher's.
	// (libtorrent binds its own, outgoing_interfaces.)
	libtorrents := append([]string{dhtLTSeeder, dhtLTLeecher}, dhtNodeIPs...)
	bitstorms := []string{dhtBitstorm, dhtBitstorm2}
	for _, a := range append(libtorrents, bitstorms...) {
		ip("addr", "add", a+"/32", "dev", "lo")
	}
	for _, a := range libtorrents {
		ip("route", "replace", "local", a, "dev", "lo", "table", "local", "src", dhtBitstorm)
	}
	for _, a := range bitstorms {
		ip("route", "replace", "local", a, "dev", "lo", "table", "local", "src", dhtLTLeecher)
	}

	// Not t.Context(), which ends before the cleanups run: the processes get their
	// SIGKILL from Stop, in the cleanups, before the namespace goes.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 4*time.Minute)
	t.Cleanup(cancel)
	s.ctx = ctx
	if err := swarmtest.WritePayload(s.dir, seed, dhtFiles); err != nil {
		t.Fatal(err)
	}
	s.torrent = filepath.Join(s.dir, "dhtswarm.torrent")
	if out, err := exec.CommandContext(ctx, s.bin, "create", "--piece-length", "64K", "--out", s.torrent,
		filepath.Join(s.dir, "dhtswarm")).CombinedOutput(); err != nil {
		t.Fatalf("bitstorm create: %v\n%s", err, out)
	}
	m, err := metainfo.Load(s.torrent)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Trackers()) != 0 {
		t.Fatalf("the torrent names trackers %v; the DHT must be the only way", m.Trackers())
	}
	s.meta = m
	var args []string
	for _, a := range dhtNodeIPs {
		args = append(args, "--ip", a)
	}
	s.nodes = s.libtorrent(t, "nodes", "lt-nodes.log", append(args, "--port", dhtPort)...)
	if err := waitLogLine(ctx, s.nodes, "ready nodes=3", time.Minute); err != nil {
		t.Fatalf("libtorrent DHT nodes: %v", err)
	}
	return s
}

// libtorrent starts ltdht.py in mode in the namespace, logging to name in the test's
// directory; it is stopped when the test ends.
func (s *dhtSwarm) libtorrent(t *testing.T, mode, name string, args ...string) *swarmtest.Process {
	t.Helper()
	cmdline, err := swarmtest.LibtorrentDHTArgs(s.dir, mode, args...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := swarmtest.Start(s.ctx, nsCommand(s.in, cmdline[0], cmdline[1:]...), filepath.Join(s.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// bitstorm starts the bitstorm binary in the namespace with args, logging to name; it is
// stopped when the test ends.
func (s *dhtSwarm) bitstorm(t *testing.T, name string, args ...string) *swarmtest.Process {
	t.Helper()
	p, err := swarmtest.Start(s.ctx, nsCommand(s.in, s.bin, args...), filepath.Join(s.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// nodeArgs are the --node flags of a libtorrent peer: every DHT node.
func nodeArgs() []string {
	var args []string
	for _, a := range dhtNodeIPs {
		args = append(args, "--node", a+":"+dhtPort)
	}
	return args
}

// waitAnnounced waits until a DHT node has received an announce_peer for the torrent
// from the peer at ip, port dhtPort: from then on a get_peers traversal can find it.
func (s *dhtSwarm) waitAnnounced(t *testing.T, ip string, who *swarmtest.Process) {
	t.Helper()
	line := fmt.Sprintf("announce-in ip=%s port=%s info_hash=%s", ip, dhtPort, s.meta.HexHash())
	if err := waitLogLine(s.ctx, s.nodes, line, 2*time.Minute); err != nil {
		t.Fatalf("no DHT node heard %s announce itself: %v\n%s:\n%s", ip, err, who.Name, who.Tail(30))
	}
}

func (s *dhtSwarm) magnet() string { return "magnet:?xt=urn:btih:" + s.meta.HexHash() }

// download runs `bitstorm download MAGNET` in the namespace on ip, with the DHT as its
// only source of peers, and checks the bytes.
func (s *dhtSwarm) download(t *testing.T, name, ip, bootstrap, stateDir string, seeder *swarmtest.Process) {
	t.Helper()
	out := filepath.Join(s.dir, name)
	p := s.bitstorm(t, name+".log", "download", "--verbose", "--out", out, "--listen", ip, "--port", dhtPort,
		"--dht-bootstrap", bootstrap, "--state-dir", stateDir, s.magnet())
	res, err := p.Wait()
	if err != nil || s.ctx.Err() != nil {
		t.Fatalf("bitstorm download %s: %v (context: %v)\n%s\nseeder:\n%s", name, err, s.ctx.Err(), p.Tail(40), seeder.Tail(20))
	}
	if err := swarmtest.ComparePayload(s.dir, out, dhtFiles); err != nil {
		t.Fatalf("%s: the files differ from the payload:\n%v", name, err)
	}
	t.Logf("%s: %.1f MiB through the DHT in %.2fs", name, float64(swarmtest.TotalSize(dhtFiles))/(1<<20), res.Wall.Seconds())
}

// TestInteropDHTMagnet: `bitstorm download MAGNET` for a link with no tracker and no
// peer, bootstrapped from one libtorrent DHT node, finds a libtorrent seeder through the
// DHT alone (a). The routing table it saved on exit then makes a restart warm (c): a
// second download, on another address and with a bootstrap router that does not exist,
// finds the seeder through the saved nodes. (The seeder cannot be what dials it: it
// learns of a bitstorm only from that bitstorm's own announce.)
func TestInteropDHTMagnet(t *testing.T) {
	s := newDHTSwarm(t, 20250701)
	seeder := s.libtorrent(t, "seed", "lt-seed.log", append([]string{"--ip", dhtLTSeeder, "--port", dhtPort,
		"--torrent", s.torrent, "--save", s.dir}, nodeArgs()...)...)
	if err := waitLogLine(s.ctx, seeder, "seeding "+dhtLTSeeder, time.Minute); err != nil {
		t.Fatalf("libtorrent seeder: %v", err)
	}
	s.waitAnnounced(t, dhtLTSeeder, seeder)

	state := filepath.Join(s.dir, "state")
	s.download(t, "first", dhtBitstorm, dhtNodeIPs[0]+":"+dhtPort, state, seeder)
	st, err := dhtnode.LoadState(filepath.Join(state, "dht.dat"))
	if err != nil {
		t.Fatalf("the routing table was not saved: %v", err)
	}
	var inNet int
	for _, n := range st.Nodes {
		if strings.HasPrefix(n.Addr.Addr().String(), "10.77.1.") {
			inNet++
		}
	}
	if inNet == 0 {
		t.Fatalf("the saved table has %d nodes, none of the namespace's: %v", len(st.Nodes), st.Nodes)
	}
	t.Logf("saved table: %d nodes", len(st.Nodes))

	s.download(t, "restarted", dhtBitstorm2, dhtNowhere, state, seeder)
}

// TestInteropDHTSeeder: a libtorrent leecher given only a magnet link (no tracker, no
// peer) finds a bitstorm seeder through the DHT, where the seeder announced itself (b).
func TestInteropDHTSeeder(t *testing.T) {
	s := newDHTSwarm(t, 20250702)
	seeder := s.bitstorm(t, "bitstorm-seed.log", "seed", "--verbose", "--data", s.dir, "--listen", dhtBitstorm,
		"--port", dhtPort, "--dht-bootstrap", dhtNodeIPs[0]+":"+dhtPort, "--state-dir", filepath.Join(s.dir, "state"), s.torrent)
	s.waitAnnounced(t, dhtBitstorm, seeder)

	out := filepath.Join(s.dir, "lt-out")
	leecher := s.libtorrent(t, "leech", "lt-leech.log", append([]string{"--ip", dhtLTLeecher, "--port", dhtPort,
		"--magnet", s.magnet(), "--save", out}, nodeArgs()...)...)
	res, err := leecher.Wait()
	if err != nil || s.ctx.Err() != nil || !logHas(leecher.LogPath, "finished ") {
		t.Fatalf("libtorrent leecher: %v (context: %v)\n%s\nbitstorm seeder:\n%s", err, s.ctx.Err(), leecher.Tail(30), seeder.Tail(30))
	}
	if err := swarmtest.ComparePayload(s.dir, out, dhtFiles); err != nil {
		t.Fatalf("libtorrent's files differ from the payload:\n%v", err)
	}
	t.Logf("libtorrent from the bitstorm seeder, found through the DHT: %.1f MiB in %.2fs",
		float64(swarmtest.TotalSize(dhtFiles))/(1<<20), res.Wall.Seconds())
}
