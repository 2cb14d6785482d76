// Command bench is the driver of `make bench`: it measures bitstorm against
// aria2c downloading one generated file (1 GiB by default, 256 KiB pieces)
// from one libtorrent seeder through opentracker, all on 127.0.0.1.
//
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm [-size 1024] [-clients bitstorm,aria2c,libtorrent]
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm -magnet-only [-magnet-size 64]
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm -serve-only [-serve-size 64] [-serve-rate 4]
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm -scale-only [-scale-torrents 1000] [-scale-downloads 20]
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm -rpc-only [-rpc-torrents 1000] [-rpc-calls 200]
//
// First it prints this machine's ceilings (SHA-1 per core, one loopback TCP
// stream), then leeches with each client in turn into a fresh directory,
// checks the SHA-256 of the result, and prints one row per client: wall-clock
// throughput, CPU seconds (user+sys of the client process), CPU seconds per
// GiB and peak RSS, plus the CPU the seeder spent meanwhile. Wall time covers
// the whole process: start, announce, download, exit.
//
// Last comes the magnet table (magnet.go): each client given only a magnet link,
// timed to its first verified piece and to completion, with peers from a tracker
// and, as root, from libtorrent DHT nodes alone in a network namespace.
//
// All processes it started are stopped, also on Ctrl-C or when -timeout
// passes, and its directories are deleted.
package main

import (
	"context"
	"crypto/sha1"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

type config struct {
	bitstorm      string
	seeders       []int
	upload        bool
	sizeMiB       int
	pieceLog2     int
	clients       []string
	timeout       time.Duration
	clientTimeout time.Duration
	dir           string
	keep          bool
	profile       string          // directory for BitStorm CPU profiles; empty: none
	magnet        bool            // run the magnet table
	magnetOnly    bool            // run only the magnet table
	magnetMiB     int             // the magnet table's payload
	encryption    string          // the BitStorm leecher's --encryption; empty: its default
	latency       bool            // run the latency table (latency.go)
	latencyOnly   bool            // run only the latency table
	latencyMiB    int             // the latency table's payload
	latencies     []time.Duration // the latency table's round trips
}

func main() {
	var cfg config
	var clients string
	flag.StringVar(&cfg.bitstorm, "bitstorm", "bin/bitstorm", "path of the bitstorm binary")
	flag.IntVar(&cfg.sizeMiB, "size", 1024, "payload size in MiB (one file)")
	flag.IntVar(&cfg.pieceLog2, "piece-log2", 18, "log2 of the piece length (18 = 256 KiB)")
	flag.StringVar(&clients, "clients", "bitstorm,aria2c,libtorrent", "comma-separated leechers to run in turn: bitstorm, aria2c, libtorrent")
	var seeders string
	flag.StringVar(&seeders, "seeders", "1,8", "comma-separated numbers of libtorrent seeders: one table each")
	flag.BoolVar(&cfg.upload, "upload", true, "also measure BitStorm seeding to aria2c and libtorrent, and bitstorm verify's recheck")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	flag.DurationVar(&cfg.clientTimeout, "client-timeout", 5*time.Minute, "bound on one client's download")
	flag.StringVar(&cfg.dir, "dir", "", "directory for the payload and downloads (default: the system's temporary directory)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the payload and logs")
	flag.StringVar(&cfg.profile, "cpuprofile", "", "write each BitStorm download's CPU profile to `DIR`/bitstorm-N-seeders.prof")
	flag.BoolVar(&cfg.magnet, "magnet", true, "also time each client from a magnet link to its first verified piece and to completion, "+
		"with a tracker and (as root, in a network namespace) through the DHT only")
	flag.BoolVar(&cfg.magnetOnly, "magnet-only", false, "run only the magnet table (no ceilings, no other table): a quick run")
	flag.IntVar(&cfg.magnetMiB, "magnet-size", 64, "the magnet table's payload in MiB (one file)")
	flag.StringVar(&cfg.encryption, "encryption", "", "the BitStorm leecher's --encryption (prefer, require: RC4, off); run once with require and once with off to compare")
	flag.BoolVar(&cfg.latency, "latency", true, "also leech from one libtorrent seeder through a delay proxy at each of -latencies (latency.go)")
	flag.BoolVar(&cfg.latencyOnly, "latency-only", false, "run only the latency table")
	flag.IntVar(&cfg.latencyMiB, "latency-size", 256, "the latency table's payload in MiB (one file)")
	latencies := flag.String("latencies", "0,50ms,200ms", "the latency table's round trips, comma-separated")
	flag.Parse()
	var err error
	if cfg.latencies, err = parseLatencies(*latencies); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	for _, f := range strings.Split(seeders, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -seeders: %q is not a positive number\n", f)
			os.Exit(2)
		}
		cfg.seeders = append(cfg.seeders, n)
	}
	for _, c := range strings.Split(clients, ",") {
		switch c = strings.TrimSpace(c); c {
		case "bitstorm", "aria2c", "libtorrent":
			cfg.clients = append(cfg.clients, c)
		case "":
		default:
			fmt.Fprintf(os.Stderr, "bench: unknown client %q\n", c)
			os.Exit(2)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// row is one client's measurement.
type row struct {
	client    string
	res       swarmtest.Result
	seederCPU time.Duration
	err       error
}

func run(ctx context.Context, cfg config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if serveFlags.only {
		return serveOnly(ctx, cfg) // serve.go
	}
	if scaleFlags.only {
		return scaleOnly(ctx, cfg) // scale.go
	}
	if rpcFlags.only {
		return rpcOnly(ctx, cfg) // rpc.go
	}

	var bin string
	magnet := (cfg.magnet || cfg.magnetOnly) && !cfg.latencyOnly
	if cfg.magnetOnly || cfg.latencyOnly {
		cfg.upload = false
	}
	scale := scaleFlags.on && !cfg.magnetOnly && !cfg.latencyOnly
	if slices.Contains(cfg.clients, "bitstorm") || cfg.upload || magnet || scale {
		var err error
		if bin, err = filepath.Abs(cfg.bitstorm); err != nil {
			return err
		}
		if st, err := os.Stat(bin); err != nil || st.IsDir() {
			return fmt.Errorf("no bitstorm binary at %s (make build)", bin)
		}
	}
	tools := []swarmtest.Tool{swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent}
	if slices.Contains(cfg.clients, "aria2c") || cfg.upload {
		tools = append(tools, swarmtest.Aria2c)
	}
	if err := swarmtest.Ensure(tools...); err != nil {
		return err
	}

	dir, done, err := benchDir(cfg)
	if err != nil {
		return err
	}
	defer done()

	var failed []string
	if !cfg.magnetOnly && !cfg.latencyOnly {
		f, err := leechTables(ctx, cfg, bin, dir)
		if err != nil {
			return err
		}
		failed = append(failed, f...)
	}
	if magnet && ctx.Err() == nil {
		f, err := magnetTable(ctx, cfg, bin, dir)
		if err != nil {
			return err
		}
		failed = append(failed, f...)
	}
	if (cfg.latency && !cfg.magnetOnly || cfg.latencyOnly) && ctx.Err() == nil {
		f, err := latencyTable(ctx, cfg, bin, dir)
		if err != nil {
			return err
		}
		failed = append(failed, f...)
	}
	if scale && ctx.Err() == nil {
		f, err := scaleTable(ctx, cfg, bin, dir) // scale.go
		if err != nil {
			return err
		}
		failed = append(failed, f...)
	}
	if rpcFlags.on && !cfg.magnetOnly && !cfg.latencyOnly && ctx.Err() == nil {
		if err := rpcTable(ctx, cfg, dir); err != nil { // rpc.go
			fmt.Printf("  rpc table: %v\n", err)
			failed = append(failed, "rpc")
		}
	}
	fmt.Printf("\nload average now: %s (figures from a busy machine are not comparable)\n", loadAvg())
	if !cfg.magnetOnly {
		fmt.Println("MiB/s is over the client's whole run (start to exit); aria2c adds ~3 s of fixed ticks.")
		fmt.Println("libtorrent's peak RSS counts its mmap-ed file pages.")
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped: %w", context.Cause(ctx))
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// leechTables prints the ceilings, then runs the leech tables on a payload of cfg.sizeMiB
// and the upload table; it returns the clients that failed.
func leechTables(ctx context.Context, cfg config, bin, dir string) ([]string, error) {
	fmt.Println("ceilings:")
	fmt.Printf("  SHA-1 (Go crypto/sha1, one core, 256 MiB): %s\n", rate(sha1Ceiling()))
	if r, err := loopbackCeiling(ctx, 1<<30); err == nil {
		fmt.Printf("  loopback TCP (Go, one stream, 1 GiB):      %s\n", rate(r))
	} else {
		fmt.Printf("  loopback TCP: %v\n", err)
	}

	size := int64(cfg.sizeMiB) << 20
	name := fmt.Sprintf("bench-%dMiB.bin", cfg.sizeMiB)
	files := []swarmtest.FileSpec{{Path: name, Size: size}}
	t0 := time.Now()
	if err := swarmtest.WritePayload(dir, 1, files); err != nil {
		return nil, err
	}
	fmt.Printf("  payload write (ChaCha8 + page cache):      %s\n", rate(float64(size)/time.Since(t0).Seconds()))
	if r, err := syncWriteCeiling(dir, 256<<20); err == nil {
		fmt.Printf("  disk write (256 MiB, then fdatasync):      %s\n", rate(r))
	}
	src := filepath.Join(dir, name)
	want, err := swarmtest.SHA256File(src)
	if err != nil {
		return nil, err
	}

	tr, err := swarmtest.StartTracker(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer tr.Stop()
	torrent := filepath.Join(dir, "bench.torrent")
	if err := swarmtest.MakeTorrent(ctx, src, torrent, tr.AnnounceURL, cfg.pieceLog2); err != nil {
		return nil, err
	}
	hash, err := swarmtest.InfoHash(ctx, torrent)
	if err != nil {
		return nil, err
	}
	if err := tr.Allow(ctx, hash); err != nil {
		return nil, err
	}
	var failed []string
	for _, n := range cfg.seeders {
		f, err := leechTable(ctx, cfg, n, bin, dir, torrent, name, want, hash, tr, size)
		if err != nil {
			return nil, err
		}
		failed = append(failed, f...)
	}
	if cfg.upload && ctx.Err() == nil {
		f, err := uploadTable(ctx, cfg, bin, dir, torrent, name, want, size)
		if err != nil {
			return nil, err
		}
		failed = append(failed, f...)
	}
	return failed, nil
}

const rowFormat = "%-22s  %8s  %16s  %9s  %12s  %12s\n"

// leechTable runs every client against n libtorrent seeders and prints their table; it
// returns the clients that failed.
func leechTable(ctx context.Context, cfg config, n int, bin, dir, torrent, name, want, hash string, tr *swarmtest.Tracker, size int64) ([]string, error) {
	var seeders []*swarmtest.Process
	defer func() {
		for _, s := range seeders {
			s.Stop()
		}
	}()
	for i := range n {
		// Each seeder gets its own copy of the torrent file: the script logs beside it.
		t := filepath.Join(dir, fmt.Sprintf("seed%d-%d.torrent", n, i))
		b, err := os.ReadFile(torrent)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(t, b, 0o644); err != nil {
			return nil, err
		}
		s, err := swarmtest.StartLibtorrentSeeder(ctx, t, dir)
		if err != nil {
			return nil, err
		}
		seeders = append(seeders, s)
	}
	if err := tr.WaitSeeders(ctx, hash, n); err != nil {
		return nil, err
	}
	fmt.Printf("\npayload: %d MiB in one file, %d KiB pieces, %d libtorrent seeder(s) (seed_mode)\n\n",
		cfg.sizeMiB, 1<<cfg.pieceLog2>>10, n)
	var rows []row
	for _, c := range cfg.clients {
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("running %s ...\n", c)
		var pids []int
		for _, s := range seeders {
			pids = append(pids, s.PID())
		}
		r := leech(ctx, cfg, c, bin, dir, torrent, name, want, pids)
		if r.err != nil {
			fmt.Printf("  %s failed: %v\n", c, r.err)
		}
		rows = append(rows, r)
	}
	fmt.Println()
	fmt.Printf(rowFormat, fmt.Sprintf("leecher (%d seeders)", n), "MiB/s", "CPU s", "CPU s/GiB", "peak RSS MiB", "seeders CPU s")
	return printRows(rows, size), nil
}

func printRows(rows []row, size int64) []string {
	gib := float64(size) / (1 << 30)
	var failed []string
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf(rowFormat, r.client, "FAILED", "", "", "", "")
			failed = append(failed, r.client)
			continue
		}
		cpu := r.res.CPU().Seconds()
		fmt.Printf(rowFormat, r.client,
			fmt.Sprintf("%.1f", float64(size)/(1<<20)/r.res.Wall.Seconds()),
			fmt.Sprintf("%.2f (%.0f%% sys)", cpu, 100*r.res.Sys.Seconds()/cpu), fmt.Sprintf("%.2f", cpu/gib),
			fmt.Sprintf("%.1f", float64(r.res.MaxRSS)/(1<<20)),
			fmt.Sprintf("%.2f", r.seederCPU.Seconds()))
	}
	return failed
}

// uploadTable measures bitstorm verify on the payload, then a BitStorm seeder serving aria2c
// and a libtorrent leecher in turn; the last column is the BitStorm seeder's CPU.
func uploadTable(ctx context.Context, cfg config, bin, dir, torrent, name, want string, size int64) ([]string, error) {
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, bin, "verify", "--data", dir, torrent).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("bitstorm verify: %v\n%s", err, out)
	}
	fmt.Printf("\nbitstorm verify of %d MiB: %.0f MiB/s (whole command)\n", cfg.sizeMiB,
		float64(size)/(1<<20)/time.Since(t0).Seconds())

	port, err := swarmtest.FreePort()
	if err != nil {
		return nil, err
	}
	seed := exec.Command(bin, "seed", "--no-dht", "--data", dir, "--listen", "127.0.0.1", "--port", strconv.Itoa(port), "--quiet", torrent)
	seeder, err := swarmtest.Start(ctx, seed, filepath.Join(dir, "bitstorm-seed.log"))
	if err != nil {
		return nil, err
	}
	defer seeder.Stop()
	// The seeder rechecks, then announces; give it the time of a recheck.
	time.Sleep(3 * time.Second)
	fmt.Printf("\npayload: %d MiB, one BitStorm seeder (bitstorm seed)\n\n", cfg.sizeMiB)
	var rows []row
	for _, c := range []string{"aria2c", "libtorrent"} {
		fmt.Printf("running %s ...\n", c)
		r := leech(ctx, cfg, c, bin, dir, torrent, name, want, []int{seeder.PID()})
		if r.err != nil {
			fmt.Printf("  %s failed: %v\n%s\n", c, r.err, seeder.Tail(20))
		}
		r.client = "bitstorm -> " + c
		rows = append(rows, r)
	}
	fmt.Println()
	fmt.Printf(rowFormat, "upload", "MiB/s", "CPU s", "CPU s/GiB", "peak RSS MiB", "BitStorm CPU s")
	return printRows(rows, size), nil
}

// syncWriteCeiling writes n bytes to a file in dir and fdatasyncs it; bytes per second.
func syncWriteCeiling(dir string, n int) (float64, error) {
	f, err := os.CreateTemp(dir, "ceiling-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{2}).Read(buf)
	t0 := time.Now()
	for range n >> 20 {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// leech downloads with one client into a fresh directory, verifies the file
// and deletes it.
func leech(ctx context.Context, cfg config, client, bin, dir, torrent, name, want string, seederPIDs []int) row {
	r := row{client: client}
	ctx, cancel := context.WithTimeout(ctx, cfg.clientTimeout)
	defer cancel()
	out := filepath.Join(dir, "out-"+client)
	if err := os.MkdirAll(out, 0o755); err != nil {
		r.err = err
		return r
	}
	defer func() {
		if !cfg.keep {
			os.RemoveAll(out)
		}
	}()

	cpu0 := procCPU(seederPIDs...)
	switch client {
	case "bitstorm":
		port, err := swarmtest.FreePort()
		if err != nil {
			r.err = err
			return r
		}
		args := []string{"download", "--no-dht", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(port), "--quiet", torrent}
		if cfg.encryption != "" {
			args = slices.Insert(args, 1, "--encryption", cfg.encryption) // a flag of download
			r.client += " (enc " + cfg.encryption + ")"
		}
		if cfg.profile != "" {
			args = append([]string{"--cpuprofile", filepath.Join(cfg.profile, fmt.Sprintf("bitstorm-%d-seeders.prof", len(seederPIDs)))}, args...)
		}
		cmd := exec.Command(bin, args...)
		p, err := swarmtest.Start(ctx, cmd, out+".log")
		if err != nil {
			r.err = err
			return r
		}
		r.res, r.err = p.Wait()
	case "aria2c":
		r.res, r.err = swarmtest.RunAria2c(ctx, torrent, out)
	case "libtorrent":
		r.res, r.err = swarmtest.RunLibtorrentLeecher(ctx, torrent, out)
	}
	r.seederCPU = procCPU(seederPIDs...) - cpu0
	if r.err == nil && ctx.Err() != nil {
		r.err = context.Cause(ctx)
	}
	if r.err != nil {
		return r
	}
	got, err := swarmtest.SHA256File(filepath.Join(out, name))
	if err != nil {
		r.err = err
	} else if got != want {
		r.err = fmt.Errorf("sha256 of the download is %s, want %s", got, want)
	}
	return r
}

// sha1Ceiling hashes 256 MiB on one goroutine and returns bytes per second.
func sha1Ceiling() float64 {
	buf := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(buf)
	h := sha1.New()
	t0 := time.Now()
	for range 256 {
		h.Write(buf)
	}
	h.Sum(nil)
	return float64(256<<20) / time.Since(t0).Seconds()
}

// loopbackCeiling sends n bytes over one TCP connection on 127.0.0.1 and
// returns bytes per second.
func loopbackCeiling(ctx context.Context, n int64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		done <- err
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", l.Addr().String())
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, 1<<20)
	t0 := time.Now()
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			<-done
			return 0, err
		}
	}
	c.Close()
	if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// procCPU returns the user+sys time a running process has used so far, from
// /proc/PID/stat (clock ticks of 10 ms, the Linux default), or 0.
func procCPU(pids ...int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		// After "(comm)": state is f[0], utime is f[11], stime f[12].
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}

func rate(bytesPerSec float64) string {
	return fmt.Sprintf("%.0f MiB/s (%.2f GiB/s)", bytesPerSec/(1<<20), bytesPerSec/(1<<30))
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchDir prints the machine line every table starts with and makes the run's directory;
// done removes it, or says where it is kept (-keep).
func benchDir(cfg config) (dir string, done func(), err error) {
	fmt.Printf("machine: %d cores (GOMAXPROCS %d), %s/%s, load average %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, loadAvg())
	dir, err = os.MkdirTemp(cfg.dir, "bitstorm-bench-")
	if err != nil {
		return "", nil, err
	}
	if cfg.keep {
		return dir, func() { fmt.Printf("kept %s\n", dir) }, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
