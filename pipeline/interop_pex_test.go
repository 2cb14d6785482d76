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

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// peerNet is a simulated internet for tests of peers meeting peers (PEX, reconnects): a
// network namespace whose loopback carries an address per peer, since libtorrent and PEX
// treat many peers on one IP with suspicion. Every peer listens on peerPort of its own
// address. The libtorrent peers run ltdht.py with --no-dht: nothing there finds a peer
// but what the test arranges. Nothing reaches the host's network.
type peerNet struct {
	ctx     context.Context
	in      []string // the command prefix that runs a program in the namespace
	bin     string   // the bitstorm binary
	dir     string   // payload, torrent, logs
	files   []swarmtest.FileSpec
	torrent string // names no tracker
	meta    *metainfo.MetaInfo
}

const peerPort = "6881"

// newPeerNet builds the namespace with the address bitstorm and each of others, writes
// files (whose first path element names the torrent) from seed and makes their torrent,
// with 64 KiB pieces and no tracker. bitstorm dials from an unbound socket, which on lo
// would leave from the address it dials: connections to the others leave from bitstorm's
// address (libtorrent binds its own, outgoing_interfaces). It skips under -short, needs
// root (a failure under CI=true), and ends everything when the test does; the context
// ends after timeout.
func newPeerNet(t *testing.T, timeout time.Duration, seed int64, files []swarmtest.FileSpec, bitstorm string, others ...string) *peerNet {
	t.Helper()
	if testing.Short() {
		t.Skip("runs libtorrent and the bitstorm binary in a network namespace")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to make a network namespace")
		}
		t.Skip("needs root to make a network namespace")
	}
	swarmtest.Require(t, swarmtest.Libtorrent, swarmtest.IPRoute2)
	n := &peerNet{bin: buildBitstorm(t), in: newNetns(t), dir: t.TempDir(), files: files}
	name := n.in[len(n.in)-1]
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, a := range append([]string{bitstorm}, others...) {
		ip("addr", "add", a+"/32", "dev", "lo")
	}
	for _, a := range others {
		ip("route", "replace", "local", a, "dev", "lo", "table", "local", "src", bitstorm)
	}

	// Not t.Context(), which ends before the cleanups run: the processes get their
	// SIGKILL from Stop, in the cleanups, before the namespace goes.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), timeout)
	t.Cleanup(cancel)
	n.ctx = ctx
	if err := swarmtest.WritePayload(n.dir, seed, files); err != nil {
		t.Fatal(err)
	}
	top, _, _ := strings.Cut(files[0].Path, "/")
	n.torrent = filepath.Join(n.dir, top+".torrent")
	if out, err := exec.CommandContext(ctx, n.bin, "create", "--piece-length", "64K", "--out", n.torrent,
		filepath.Join(n.dir, top)).CombinedOutput(); err != nil {
		t.Fatalf("bitstorm create: %v\n%s", err, out)
	}
	m, err := metainfo.Load(n.torrent)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Trackers()) != 0 {
		t.Fatalf("the torrent names trackers %v; the test's peers must be the only way", m.Trackers())
	}
	n.meta = m
	return n
}

// libtorrent starts ltdht.py in mode (seed or leech) with --no-dht in the namespace on ip,
// logging to name in the test's directory; it is stopped when the test ends.
func (n *peerNet) libtorrent(t *testing.T, mode, name, ip string, args ...string) *swarmtest.Process {
	t.Helper()
	cmdline, err := swarmtest.LibtorrentDHTArgs(n.dir, mode,
		append([]string{"--no-dht", "--ip", ip, "--port", peerPort, "--torrent", n.torrent}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := swarmtest.Start(n.ctx, nsCommand(n.in, cmdline[0], cmdline[1:]...), filepath.Join(n.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// seeder starts a libtorrent seeder of the payload on ip and waits until it seeds.
func (n *peerNet) seeder(t *testing.T, name, ip string, args ...string) *swarmtest.Process {
	t.Helper()
	p := n.libtorrent(t, "seed", name, ip, append([]string{"--save", n.dir}, args...)...)
	if err := waitLogLine(n.ctx, p, "seeding "+ip+":"+peerPort, time.Minute); err != nil {
		t.Fatalf("libtorrent seeder on %s: %v", ip, err)
	}
	return p
}

// download starts `bitstorm download --verbose --no-dht --json` of the torrent in the
// namespace, listening on ip, into out, with args (its peers), logging to name and its
// events beside (eventsPath); it is stopped when the test ends.
func (n *peerNet) download(t *testing.T, name, ip, out string, args ...string) *swarmtest.Process {
	t.Helper()
	all := append([]string{"download", "--verbose", "--no-dht", "--json", "--out", out, "--listen", ip, "--port", peerPort}, args...)
	cmd := nsCommand(n.in, n.bin, append(all, n.torrent)...)
	eventsTo(t, cmd, filepath.Join(n.dir, name))
	p, err := swarmtest.Start(n.ctx, cmd, filepath.Join(n.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// connections counts the peer_connected events for addr of the bitstorm run logging to
// logPath: the sessions it had with the peer there. A peer that dialed us shows its
// ephemeral port, so a count for a listening address counts the connections we made.
func connections(logPath, addr string) int {
	n := 0
	for _, e := range binEvents(logPath) {
		if e.Event == "peer_connected" && e.Peer == addr {
			n++
		}
	}
	return n
}

// The PEX test's addresses.
const (
	pexSeeder   = "10.77.2.10" // S: the libtorrent seeder only X knows
	pexBitstorm = "10.77.2.20"
	pexLeecher  = "10.77.2.30" // X: the slow libtorrent leecher bitstorm is given
)

var pexFiles = []swarmtest.FileSpec{
	{Path: "pexswarm/a.bin", Size: 5<<20 + 123},
	{Path: "pexswarm/sub/b.bin", Size: 1<<20 - 7},
}

// pexLeecherLimit bounds X's download (bytes per second): the payload takes X over three
// minutes, longer than the test may run, so X stays a leecher that keeps its connections
// (libtorrent lets go of a peer that has nothing for it) on any machine.
const pexLeecherLimit = 32 << 10

// TestInteropPexSeederOnlyThroughPex: bitstorm is given one peer, X, a libtorrent leecher
// that downloads slowly from a libtorrent seeder S. bitstorm has no other source of peers:
// the torrent names no tracker, the DHT is off everywhere, and S never dials (libtorrent's
// seeding_outgoing_connections off), so bitstorm can meet S only by dialling the address
// X's ut_pex message gives (libtorrent's ut_pex plugin is on by default). bitstorm must
// connect to S and complete with the payload's bytes; X alone, at 32 KiB/s, could not
// serve it before the deadline.
func TestInteropPexSeederOnlyThroughPex(t *testing.T) {
	n := newPeerNet(t, 3*time.Minute, 20250710, pexFiles, pexBitstorm, pexSeeder, pexLeecher)
	seeder := n.seeder(t, "lt-seed.log", pexSeeder, "--no-seed-dials")
	x := n.libtorrent(t, "leech", "lt-x.log", pexLeecher, "--save", filepath.Join(n.dir, "x"),
		"--peer", pexSeeder+":"+peerPort, "--download-limit", fmt.Sprint(pexLeecherLimit), "--first-piece")
	// X's first piece came from S: X is connected to S, and has a piece bitstorm wants.
	if err := waitLogLine(n.ctx, x, "first-piece ", 2*time.Minute); err != nil {
		t.Fatalf("libtorrent leecher X: %v\nseeder S:\n%s", err, seeder.Tail(10))
	}

	out := filepath.Join(n.dir, "out")
	leech := n.download(t, "bitstorm.log", pexBitstorm, out, "--peer", pexLeecher+":"+peerPort)
	res, err := leech.Wait()
	if err != nil || n.ctx.Err() != nil {
		t.Fatalf("bitstorm download: %v (context: %v)\n%s\nX:\n%s\nS:\n%s", err, n.ctx.Err(),
			leech.Tail(30), x.Tail(10), seeder.Tail(10))
	}
	if err := swarmtest.ComparePayload(n.dir, out, pexFiles); err != nil {
		t.Fatalf("the files differ from the payload:\n%v", err)
	}
	s := pexSeeder + ":" + peerPort
	if c := connections(leech.LogPath, s); c == 0 {
		t.Fatalf("bitstorm completed without connecting to the seeder at %s; it connected to %v",
			s, connectedPeers(leech.LogPath))
	}
	if exited(x) {
		t.Errorf("X exited during the test: it was to stay a leecher\n%s", x.Tail(10))
	}
	t.Logf("bitstorm met S through X's PEX and completed %.1f MiB in %.2fs", float64(swarmtest.TotalSize(pexFiles))/(1<<20), res.Wall.Seconds())
}

// The addresses of the test where bitstorm sends PEX.
const (
	pexBitstormSeeder = "10.77.4.20" // B
	pexOther          = "10.77.4.30" // P: the peer B tells of
	pexLTLeecher      = "10.77.4.40" // L: the libtorrent leecher B tells
)

// TestInteropLibtorrentLeechesFromBitStormWithPex: a bitstorm seeder B tells a libtorrent
// leecher L of another peer P in a ut_pex message, and L dials P. L is given only B, B only
// P (a seed of a torrent without tracker needs a peer), with no DHT anywhere, and P runs
// without PEX, so it never learns of L and never dials it: an outgoing connection from L
// to P's listening address can only come from B's message, which also checks that
// libtorrent accepts our added/added.f encoding. B tells its peers every minute
// (Config.PexInterval; no flag shortens it), so the test takes a minute; L and P download
// at 32 KiB/s, so both are still leechers, connected to B, when B's message goes out, on
// any machine.
func TestInteropLibtorrentLeechesFromBitStormWithPex(t *testing.T) {
	n := newPeerNet(t, 4*time.Minute, 20250712, pexFiles, pexBitstormSeeder, pexOther, pexLTLeecher)
	limit := fmt.Sprint(pexLeecherLimit)
	p := n.libtorrent(t, "leech", "lt-p.log", pexOther, "--save", filepath.Join(n.dir, "p"),
		"--download-limit", limit, "--no-pex", "--first-piece")
	// Its first status line comes after add_torrent, which returns once the session,
	// listening socket included, is set up.
	if err := waitLogLine(n.ctx, p, "status ", time.Minute); err != nil {
		t.Fatalf("libtorrent peer P: %v", err)
	}
	b, err := swarmtest.Start(n.ctx, nsCommand(n.in, n.bin, "seed", "--verbose", "--no-dht", "--data", n.dir,
		"--listen", pexBitstormSeeder, "--port", peerPort, "--peer", pexOther+":"+peerPort, n.torrent),
		filepath.Join(n.dir, "bitstorm-seed.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	if err := waitLogLine(n.ctx, p, "first-piece ", time.Minute); err != nil {
		t.Fatalf("libtorrent peer P: %v\nbitstorm seeder:\n%s", err, b.Tail(20))
	}
	l := n.libtorrent(t, "leech", "lt-l.log", pexLTLeecher, "--save", filepath.Join(n.dir, "l"),
		"--peer", pexBitstormSeeder+":"+peerPort, "--download-limit", limit, "--log-peers")
	dialed := fmt.Sprintf("peer-connect ip=%s port=%s", pexOther, peerPort)
	if err := waitLogLine(n.ctx, l, dialed, 3*time.Minute); err != nil {
		t.Fatalf("libtorrent leecher L never dialled P: %v\nbitstorm seeder:\n%s", err, b.Tail(20))
	}
	if !logHas(l.LogPath, "peer-connect ip="+pexBitstormSeeder+" ") {
		t.Errorf("L's log has no connection to B, its one given peer:\n%s", l.Tail(20))
	}
	if exited(p) || exited(b) {
		t.Errorf("P or B exited during the test\nP:\n%s\nB:\n%s", p.Tail(10), b.Tail(10))
	}
}
