// Command demo is the driver of `make demo`: a whole swarm made of the bitstorm
// binary alone, on 127.0.0.1. It generates a multi-file payload, starts
// `bitstorm tracker`, makes the torrent with `bitstorm create` (announcing to
// that tracker), seeds it with `bitstorm seed`, and downloads it with
// `bitstorm download`, whose progress display shows on this terminal. Then it
// checks every file's SHA-256 against the payload, runs `bitstorm verify` on
// the download and prints a summary.
//
//	go run ./internal/swarmtest/cmd/demo -bitstorm bin/bitstorm
//
// It needs nothing outside the project: no opentracker, libtorrent or
// mktorrent. It works in a temporary directory that it deletes, and stops
// every process it started, also on Ctrl-C (or SIGTERM, or the terminal closing).
// It exits non-zero on any failure.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/bencode"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

type config struct {
	bitstorm string
	sizeMiB  int
	timeout  time.Duration
	keep     bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.bitstorm, "bitstorm", "bin/bitstorm", "path of the bitstorm binary")
	flag.IntVar(&cfg.sizeMiB, "size", 48, "payload size in MiB, spread over several files")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (payload, torrent, logs)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// payload spreads sizeMiB over seven files of uneven sizes in nested
// directories; one of them is smaller than a 256 KiB piece.
func payload(sizeMiB int) []swarmtest.FileSpec {
	total := int64(sizeMiB) << 20
	small := int64(123_457)
	shares := []struct {
		path string
		frac float64
	}{
		{"bitstorm-demo/README.txt", 0},
		{"bitstorm-demo/video/episode-01.mkv", 0.31},
		{"bitstorm-demo/video/episode-02.mkv", 0.27},
		{"bitstorm-demo/video/extras/trailer.mp4", 0.09},
		{"bitstorm-demo/audio/soundtrack.flac", 0.17},
		{"bitstorm-demo/images/cover.png", 0.03},
		{"bitstorm-demo/data/archive.tar", 0},
	}
	var files []swarmtest.FileSpec
	used := small
	for _, s := range shares {
		var n int64
		switch {
		case s.path == "bitstorm-demo/README.txt":
			n = small
		case s.frac == 0: // the remainder
			n = max(total-used, 1)
		default:
			n = int64(float64(total)*s.frac) + 4099 // off piece boundaries
			used += n
		}
		files = append(files, swarmtest.FileSpec{Path: s.path, Size: n})
	}
	return files
}

func run(ctx context.Context, cfg config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	bin, err := filepath.Abs(cfg.bitstorm)
	if err != nil {
		return err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return fmt.Errorf("no bitstorm binary at %s (make build)", bin)
	}

	dir, err := os.MkdirTemp("", "bitstorm-demo-")
	if err != nil {
		return err
	}
	if cfg.keep {
		defer say("kept %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// Every process is stopped before the directory goes: defers run last in, first out.

	files := payload(cfg.sizeMiB)
	total := swarmtest.TotalSize(files)
	seedDir := filepath.Join(dir, "seed")
	say("generating %d files, %.1f MiB of seeded random data in %s", len(files), mib(total), seedDir)
	if err := swarmtest.WritePayload(seedDir, 4242, files); err != nil {
		return err
	}

	// The tracker comes first: the torrent names its URL.
	tracker, announce, err := startTracker(ctx, bin, dir)
	if err != nil {
		return err
	}
	defer tracker.Stop()
	say("bitstorm tracker (pid %d) at %s", tracker.PID(), announce)

	torrent := filepath.Join(dir, "bitstorm-demo.torrent")
	if err := runQuiet(ctx, bin, "create", "--tracker", announce, "--piece-length", "256K",
		"--out", torrent, filepath.Join(seedDir, "bitstorm-demo")); err != nil {
		return err
	}
	m, err := metainfo.Load(torrent)
	if err != nil {
		return err
	}
	say("bitstorm create: %s, info hash %s, %d pieces of 256 KiB", filepath.Base(torrent), m.HexHash(), m.Info.NumPieces())

	seedPort, err := swarmtest.FreePort()
	if err != nil {
		return err
	}
	seedArgs := []string{"seed", "--no-dht", "--data", seedDir, "--listen", "127.0.0.1", "--port", strconv.Itoa(seedPort), torrent}
	say("starting: bitstorm %s", strings.Join(seedArgs, " "))
	seeder, err := swarmtest.Start(ctx, exec.Command(bin, seedArgs...), filepath.Join(dir, "seeder.log"))
	if err != nil {
		return err
	}
	defer seeder.Stop()
	if err := waitSeeders(ctx, announce, m.InfoHash, seeder); err != nil {
		return err
	}
	say("bitstorm seeder (pid %d, port %d) has checked its data and announced itself", seeder.PID(), seedPort)

	out := filepath.Join(dir, "download")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	port, err := swarmtest.FreePort()
	if err != nil {
		return err
	}
	args := []string{"download", "--no-dht", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(port), torrent}
	say("running: bitstorm %s", strings.Join(args, " "))
	fmt.Println()
	cmd := exec.Command(bin, args...)
	// No stdin: the child runs in a process group of its own, in the background
	// as far as the terminal is concerned, and reading it would stop the child.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	p, err := swarmtest.Start(ctx, cmd, "")
	if err != nil {
		return err
	}
	res, err := p.Wait()
	fmt.Println()
	if ctx.Err() != nil {
		return fmt.Errorf("bitstorm download stopped: %w", context.Cause(ctx))
	}
	if err != nil {
		return err
	}

	say("checking every file against the payload (SHA-256)")
	if err := comparePrint(seedDir, out, files); err != nil {
		return errors.Join(errors.New("downloaded files differ from the payload"), err)
	}
	say("running: bitstorm verify --data %s %s", out, torrent)
	verify := exec.Command(bin, "verify", "--data", out, torrent)
	// Its report on stdout; its stderr (a progress line on a terminal, errors)
	// to a log that an error quotes.
	verify.Stdout = os.Stdout
	vp, err := swarmtest.Start(ctx, verify, filepath.Join(dir, "verify.log"))
	if err != nil {
		return err
	}
	if _, err := vp.Wait(); err != nil {
		return fmt.Errorf("bitstorm verify: %w", err)
	}

	fmt.Printf("\nOK: %d files, %.1f MiB from a bitstorm seeder through a bitstorm tracker, in %.2f s = %.1f MiB/s\n"+
		"    (download cpu %.2f s, peak RSS %.0f MiB); every SHA-256 matches and bitstorm verify agrees.\n",
		len(files), mib(total), res.Wall.Seconds(), mib(total)/res.Wall.Seconds(),
		res.CPU().Seconds(), mib(res.MaxRSS))
	return nil
}

// startTracker runs `bitstorm tracker` on a free port of 127.0.0.1 and returns
// the announce URL it prints once it accepts connections.
func startTracker(ctx context.Context, bin, dir string) (*swarmtest.Process, string, error) {
	logPath := filepath.Join(dir, "tracker.log")
	p, err := swarmtest.Start(ctx, exec.Command(bin, "tracker", "--listen", "127.0.0.1:0"), logPath)
	if err != nil {
		return nil, "", err
	}
	const prefix = "tracker listening on "
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line := firstLine(logPath, prefix); line != "" {
			return p, strings.TrimPrefix(line, prefix), nil
		}
		select {
		case <-p.Done():
			_, err := p.Wait()
			return nil, "", fmt.Errorf("bitstorm tracker exited: %v\n%s", err, p.Tail(10))
		case <-ctx.Done():
			p.Stop()
			return nil, "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, "", fmt.Errorf("bitstorm tracker: no %q line after 10s\n%s", prefix, p.Tail(10))
		}
	}
}

// firstLine returns the first line of the file that starts with prefix, or "".
func firstLine(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return sc.Text()
		}
	}
	return ""
}

// waitSeeders polls the tracker's scrape until a seeder of hash has announced:
// the seeder announces once it has rechecked its data and listens.
func waitSeeders(ctx context.Context, announce string, hash [20]byte, seeder *swarmtest.Process) error {
	base, ok := strings.CutSuffix(announce, "/announce")
	if !ok {
		return fmt.Errorf("announce URL %q does not end in /announce", announce)
	}
	u := base + "/scrape?info_hash=" + url.QueryEscape(string(hash[:]))
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(time.Minute)
	var last error
	for {
		n, err := scrapeComplete(ctx, client, u, hash)
		if err == nil && n >= 1 {
			return nil
		}
		last = err
		select {
		case <-seeder.Done():
			_, err := seeder.Wait()
			return fmt.Errorf("bitstorm seeder exited: %v\n%s", err, seeder.Tail(15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no seeder on the tracker after 1m (last scrape error: %v)\n%s", last, seeder.Tail(15))
		}
	}
}

// scrapeComplete returns the "complete" count of hash in the scrape reply at u.
func scrapeComplete(ctx context.Context, client *http.Client, u string, hash [20]byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape: %s", resp.Status)
	}
	v, err := bencode.Decode(body)
	if err != nil {
		return 0, fmt.Errorf("scrape: %w", err)
	}
	top, _ := v.(map[string]any)
	files, _ := top["files"].(map[string]any)
	st, _ := files[string(hash[:])].(map[string]any)
	n, _ := st["complete"].(int64)
	return n, nil
}

// runQuiet runs bitstorm with args, showing its output only when it fails.
func runQuiet(ctx context.Context, bin string, args ...string) error {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bitstorm %s: %w\n%s", args[0], err, out)
	}
	return nil
}

// comparePrint checks each file's size and SHA-256 under got against want and
// prints one line per file.
func comparePrint(want, got string, files []swarmtest.FileSpec) error {
	var errs []error
	for _, f := range files {
		name := filepath.FromSlash(f.Path)
		w, err := swarmtest.SHA256File(filepath.Join(want, name))
		if err != nil {
			return err
		}
		g, err := swarmtest.SHA256File(filepath.Join(got, name))
		state := "ok  "
		switch {
		case err != nil:
			state, g = "FAIL", "-"
			errs = append(errs, err)
		case g != w:
			state = "FAIL"
			errs = append(errs, fmt.Errorf("%s: sha256 %s, want %s", f.Path, g, w))
		}
		fmt.Printf("  %s %-40s %9.2f MiB  sha256 %.16s\n", state, f.Path, mib(f.Size), g)
	}
	return errors.Join(errs...)
}

func say(format string, args ...any) {
	fmt.Printf("demo: "+format+"\n", args...)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
