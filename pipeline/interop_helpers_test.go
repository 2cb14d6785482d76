package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// buildBitstorm builds cmd/bitstorm into a temporary directory. go test puts
// its own GOROOT/bin first on PATH, so "go" is the toolchain under test.
func buildBitstorm(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bitstorm")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/bitstorm/bitstorm/cmd/bitstorm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/bitstorm: %v\n%s", err, out)
	}
	return bin
}

// trackedPayload is a generated payload in dir and its torrent, made by
// mktorrent and announcing to an opentracker on 127.0.0.1 that allows it.
type trackedPayload struct {
	dir     string // holds the payload, the torrent and the logs
	files   []swarmtest.FileSpec
	torrent string
	hash    string // hex info hash
	tracker *swarmtest.Tracker
}

// newTrackedPayload writes files (whose first path element names the torrent)
// with seed into a new temporary directory, starts opentracker, makes the
// torrent (256 KiB pieces) and allows it. The tracker stops when the test ends.
func newTrackedPayload(t *testing.T, ctx context.Context, seed int64, files []swarmtest.FileSpec) *trackedPayload {
	t.Helper()
	name, _, _ := strings.Cut(files[0].Path, "/")
	s := &trackedPayload{dir: t.TempDir(), files: files}
	if err := swarmtest.WritePayload(s.dir, seed, files); err != nil {
		t.Fatal(err)
	}
	tr, err := swarmtest.StartTracker(ctx, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	s.tracker = tr
	s.torrent = filepath.Join(s.dir, name+".torrent")
	if err := swarmtest.MakeTorrent(ctx, filepath.Join(s.dir, name), s.torrent, tr.AnnounceURL, 18); err != nil {
		t.Fatal(err)
	}
	if s.hash, err = swarmtest.InfoHash(ctx, s.torrent); err != nil {
		t.Fatal(err)
	}
	if err := tr.Allow(ctx, s.hash); err != nil {
		t.Fatal(err)
	}
	return s
}

// opentrackerSwarm begins an interop test on an opentracker swarm: it skips under -short,
// requires opentracker, mktorrent and libtorrent (a failure under CI=true), builds the
// bitstorm binary, and makes the payload of files from seed, its torrent, and the
// tracker that allows it. The context ends after timeout, or with the test.
func opentrackerSwarm(t *testing.T, timeout time.Duration, seed int64, files []swarmtest.FileSpec) (context.Context, string, *trackedPayload, *metainfo.MetaInfo) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs opentracker, libtorrent and the bitstorm binary")
	}
	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent)
	bin := buildBitstorm(t)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	sw := newTrackedPayload(t, ctx, seed, files)
	m, err := metainfo.Load(sw.torrent)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, bin, sw, m
}

// bitstormSeededSwarm is opentrackerSwarm over seedFiles with a BitStorm seeder of it
// already announced, for the real client tool to leech from; it returns the seeder and
// its port.
func bitstormSeededSwarm(t *testing.T, seed int64, tool swarmtest.Tool) (context.Context, string, *trackedPayload, *swarmtest.Process, int) {
	t.Helper()
	ctx, bin, sw, _ := opentrackerSwarm(t, 4*time.Minute, seed, seedFiles)
	swarmtest.Require(t, tool)
	port, err := swarmtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	seeder := startBitstormSeeder(t, ctx, bin, sw.torrent, sw.dir, port, filepath.Join(sw.dir, "bitstorm-seed.log"))
	return ctx, bin, sw, seeder, port
}

// leechFromOnly downloads sw's torrent (of seedFiles) with the bitstorm binary from the
// one peer at addr, a real client called name, and checks the bytes and that bitstorm
// dropped no peer. tail tells what the other client logged, for failures.
func leechFromOnly(t *testing.T, ctx context.Context, bin string, sw *trackedPayload, name, addr string, tail func() string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	leech, _ := startBitstorm(t, ctx, bin, filepath.Join(sw.dir, "leecher.log"), "download", "--verbose",
		"--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), "--peer", addr, sw.torrent)
	res, err := leech.Wait()
	if err != nil || ctx.Err() != nil {
		t.Fatalf("bitstorm download from %s: %v (context: %v)\n%s\n%s:\n%s", name, err, ctx.Err(), leech.Tail(20), name, tail())
	}
	size := float64(swarmtest.TotalSize(sw.files)) / (1 << 20)
	t.Logf("bitstorm from %s: %.1f MiB in %.2fs = %.1f MiB/s; cpu %.2fs", name, size, res.Wall.Seconds(),
		size/res.Wall.Seconds(), res.CPU().Seconds())
	if err := swarmtest.ComparePayload(sw.dir, out, sw.files); err != nil {
		t.Fatalf("bitstorm's files from %s differ from the payload:\n%v", name, err)
	}
	if dropped := droppedPeers(leech.LogPath); len(dropped) > 0 {
		t.Errorf("bitstorm dropped %s: %+v", name, dropped)
	}
}

// startBitstormSeeder runs `bitstorm seed --json --data dataDir --listen 127.0.0.1 --port port
// torrent`, behind the command prefix wrap when given (say, ip netns exec NAME), with its
// log at logPath and its events at eventsPath(logPath). It returns once the seeder has
// rechecked its data and its first announce was answered; the seeder is stopped when the
// test ends.
func startBitstormSeeder(t *testing.T, ctx context.Context, bin, torrent, dataDir string, port int, logPath string, wrap ...string) *swarmtest.Process {
	t.Helper()
	ip := "127.0.0.1"
	if len(wrap) > 0 {
		ip = nsAddr // in the transmission test's namespace
	}
	args := slices.Concat(wrap, []string{bin, "seed", "--no-dht", "--json", "--data", dataDir, "--listen", ip, "--port", strconv.Itoa(port), torrent})
	cmd := exec.Command(args[0], args[1:]...)
	eventsTo(t, cmd, logPath)
	p, err := swarmtest.Start(ctx, cmd, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := waitEvent(ctx, p, "tracker_reply", time.Minute); err != nil {
		t.Fatalf("bitstorm seeder: %v", err)
	}
	return p
}

// binEvent is one of the bitstorm binary's --json objects; README.md's table lists the
// events and their fields.
type binEvent struct {
	Event    string `json:"event"`
	Peer     string `json:"peer"`
	Incoming bool   `json:"incoming"`
	Reason   string `json:"reason"`
	Fault    bool   `json:"fault"`
	Peers    int    `json:"peers"`
	Piece    int    `json:"piece"`
	Error    string `json:"error"`
	// resumed
	Pieces     int  `json:"pieces"`
	FromRecord bool `json:"from_record"`
}

// eventsPath is where a bitstorm run of these tests that logs to logPath writes its --json
// events (its stdout).
func eventsPath(logPath string) string {
	return strings.TrimSuffix(logPath, ".log") + ".events.jsonl"
}

// eventsTo sends cmd's stdout, a bitstorm run with --json logging to logPath, to
// eventsPath(logPath).
func eventsTo(t *testing.T, cmd *exec.Cmd, logPath string) {
	t.Helper()
	f, err := os.Create(eventsPath(logPath))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stdout = f
}

// binEvents returns the --json events so far of the bitstorm run logging to logPath
// (started with eventsTo); a line cut short by a kill is left out.
func binEvents(logPath string) []binEvent {
	var out []binEvent
	sc := bufio.NewScanner(bytes.NewReader(readLog(eventsPath(logPath))))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e binEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent polls the --json events of p, a bitstorm run started with eventsTo, until one
// named event comes, p exits, ctx ends or timeout passes.
func waitEvent(ctx context.Context, p *swarmtest.Process, event string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if slices.ContainsFunc(binEvents(p.LogPath), func(e binEvent) bool { return e.Event == event }) {
			return nil
		}
		select {
		case <-p.Done():
			_, err := p.Wait()
			return fmt.Errorf("exited before a %s event: %v\n%s", event, err, p.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("waiting for a %s event: %w\n%s", event, ctx.Err(), p.Tail(20))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s event after %v\n%s", event, timeout, p.Tail(20))
		}
	}
}

// startTracker starts cmd, a `bitstorm tracker`, logging to logPath, and returns it and the
// http announce URL of its first line on stdout ("tracker listening on URL", the command's
// defined output), once it accepts requests.
func startTracker(t *testing.T, ctx context.Context, cmd *exec.Cmd, logPath string) (*swarmtest.Process, string) {
	t.Helper()
	outPath := strings.TrimSuffix(logPath, ".log") + ".stdout"
	f, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stdout = f
	p, err := swarmtest.Start(ctx, cmd, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	const prefix = "tracker listening on "
	deadline := time.Now().Add(30 * time.Second)
	for {
		if first, _, ok := strings.Cut(string(readLog(outPath)), "\n"); ok {
			u, found := strings.CutPrefix(first, prefix)
			if !found || !strings.HasPrefix(u, "http://") {
				t.Fatalf("bitstorm tracker's first line %q, want %q and its http URL", first, prefix)
			}
			return p, u
		}
		select {
		case <-p.Done():
			_, err := p.Wait()
			t.Fatalf("bitstorm tracker exited before printing its URL: %v\n%s", err, p.Tail(20))
		case <-ctx.Done():
			t.Fatalf("bitstorm tracker: no URL: %v\n%s", ctx.Err(), p.Tail(20))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bitstorm tracker printed no URL within 30s\n%s", p.Tail(20))
		}
	}
}

// waitLogLine polls p's log until a line contains substr, p exits, ctx ends or timeout
// passes. For other programs' logs (libtorrent, the DHT nodes): BitStorm's own say
// nothing a test relies on (its events do).
func waitLogLine(ctx context.Context, p *swarmtest.Process, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if logHas(p.LogPath, substr) {
			return nil
		}
		select {
		case <-p.Done():
			_, err := p.Wait()
			return fmt.Errorf("exited before logging %q: %v\n%s", substr, err, p.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q: %w\n%s", substr, ctx.Err(), p.Tail(20))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q after %v\n%s", substr, timeout, p.Tail(20))
		}
	}
}

func logHas(path, substr string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			return true
		}
	}
	return false
}

// droppedPeers returns the peer_dropped events of a bitstorm run logging to logPath that
// drop a peer for a fault of its own (a peer that hangs up, or a seed let go once both
// sides are seeds, is not dropped for one).
func droppedPeers(logPath string) []binEvent {
	return slices.DeleteFunc(binEvents(logPath), func(e binEvent) bool { return e.Event != "peer_dropped" || !e.Fault })
}

// connectedPeers returns the peer addresses of the peer_connected events of a bitstorm
// run logging to logPath.
func connectedPeers(logPath string) map[string]bool {
	peers := make(map[string]bool)
	for _, e := range binEvents(logPath) {
		if e.Event == "peer_connected" {
			peers[e.Peer] = true
		}
	}
	return peers
}

// mibPerSec is the rate of moving files' bytes in d.
func mibPerSec(files []swarmtest.FileSpec, d time.Duration) float64 {
	return float64(swarmtest.TotalSize(files)) / (1 << 20) / d.Seconds()
}
