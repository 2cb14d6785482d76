package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/create"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// The scale table: many torrents in one BitStorm process (issue 12).
//
//   - idle: -scale-torrents small torrents (-scale-kib each, one file of seeded random data),
//     seeded by one `bitstorm download --seed-time` process, which rechecks them and
//     announces each to `bitstorm tracker`; once every one is complete and announced, its
//     CPU over -scale-idle with no peer connected (and the announces the tracker's
//     -scale-interval brings in that window), its RSS (VmRSS) at the end and its peak
//     (VmHWM), and its goroutines (--metrics).
//   - download: -scale-downloads torrents of -scale-size MiB, seeded by one libtorrent
//     session (scale_seed.py) through the same tracker, downloaded by one bitstorm process
//     at once, after one of them alone: aggregate MiB/s (whole process), CPU s per GiB and
//     peak RSS (VmHWM, read until the process exits).
//
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm -scale-only [-scale-torrents 1000] [-scale-idle 1m]

var scaleFlags struct {
	on, only  bool
	torrents  int
	kib       int
	idle      time.Duration
	interval  time.Duration
	downloads int
	mib       int
}

func init() {
	// Off in the full run: its idle minute and 640 MiB of payload would take it past its
	// 15 minutes.
	flag.BoolVar(&scaleFlags.on, "scale", false, "also run the scale table (scale.go) in the full run: many small torrents seeded idle by one process, and many downloads at once")
	flag.BoolVar(&scaleFlags.only, "scale-only", false, "run only the scale table")
	flag.IntVar(&scaleFlags.torrents, "scale-torrents", 1000, "the scale table's idle seeding: how many torrents (0: no idle row)")
	flag.IntVar(&scaleFlags.kib, "scale-kib", 64, "the scale table's idle seeding: KiB of each torrent")
	flag.DurationVar(&scaleFlags.idle, "scale-idle", time.Minute, "the scale table's idle seeding: how long CPU is measured")
	flag.DurationVar(&scaleFlags.interval, "scale-interval", 30*time.Minute, "the scale table's tracker: re-announce interval (announces are part of the idle cost)")
	flag.IntVar(&scaleFlags.downloads, "scale-downloads", 20, "the scale table's downloads at once (0: no download rows)")
	flag.IntVar(&scaleFlags.mib, "scale-size", 32, "the scale table's downloads: MiB of each torrent")
}

//go:embed scale_seed.py
var scaleSeedScript string

// scaleOnly is run for -scale-only: the scale table alone.
func scaleOnly(ctx context.Context, cfg config) error {
	bin, err := filepath.Abs(cfg.bitstorm)
	if err != nil {
		return err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return fmt.Errorf("no bitstorm binary at %s (make build)", bin)
	}
	if err := swarmtest.Ensure(swarmtest.Libtorrent); err != nil {
		return err
	}
	dir, done, err := benchDir(cfg)
	if err != nil {
		return err
	}
	defer done()
	failed, err := scaleTable(ctx, cfg, bin, dir)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// scaleRow is one row of the scale table.
type scaleRow struct {
	what     string
	torrents int
	bytes    int64         // downloaded; 0 for the idle row
	wall     time.Duration // the measured span
	cpu      time.Duration
	rss      int64 // at the end of the span; 0 when not measured
	peakRSS  int64
	notes    []string
	err      error
}

const scaleFormat = "%-34s  %8s  %8s  %14s  %9s  %8s  %12s\n"

// scaleTable runs the idle row and the download rows and prints them; it returns the rows
// that failed.
func scaleTable(ctx context.Context, cfg config, bin, dir string) ([]string, error) {
	dir = filepath.Join(dir, "scale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tr, announce, err := startBitstormTracker(ctx, bin, dir, scaleFlags.interval)
	if err != nil {
		return nil, err
	}
	defer tr.Stop()

	fmt.Printf("\nscale: %d torrents of %d KiB seeded by one bitstorm process (tracker interval %s, %s idle); "+
		"%d torrents of %d MiB downloaded at once from one libtorrent session\n",
		scaleFlags.torrents, scaleFlags.kib, scaleFlags.interval, scaleFlags.idle, scaleFlags.downloads, scaleFlags.mib)
	var rows []scaleRow
	if scaleFlags.torrents > 0 {
		fmt.Println("running idle seeding ...")
		rows = append(rows, scaleIdle(ctx, cfg, bin, dir, announce, tr))
	}
	if scaleFlags.downloads > 0 && ctx.Err() == nil {
		fmt.Println("running downloads ...")
		rows = append(rows, scaleDownloads(ctx, cfg, bin, dir, announce)...)
	}

	fmt.Println()
	fmt.Printf(scaleFormat, "scale (one bitstorm process)", "torrents", "MiB/s", "CPU s", "CPU s/GiB", "RSS MiB", "peak RSS MiB")
	var failed []string
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf(scaleFormat, r.what, strconv.Itoa(r.torrents), "FAILED", "", "", "", "")
			fmt.Printf("  %v\n", r.err)
			failed = append(failed, r.what)
			continue
		}
		mibs, perGiB, cpu := "-", "-", fmt.Sprintf("%.2f", r.cpu.Seconds())
		if r.bytes > 0 {
			mibs = fmt.Sprintf("%.1f", float64(r.bytes)/(1<<20)/r.wall.Seconds())
			perGiB = fmt.Sprintf("%.2f", r.cpu.Seconds()/(float64(r.bytes)/(1<<30)))
		} else {
			cpu = fmt.Sprintf("%.2f (%.2f%%)", r.cpu.Seconds(), 100*r.cpu.Seconds()/r.wall.Seconds())
		}
		rss := "-"
		if r.rss > 0 {
			rss = fmt.Sprintf("%.1f", float64(r.rss)/(1<<20))
		}
		fmt.Printf(scaleFormat, r.what, strconv.Itoa(r.torrents), mibs, cpu, perGiB, rss,
			fmt.Sprintf("%.1f", float64(r.peakRSS)/(1<<20)))
	}
	for _, r := range rows {
		for _, n := range r.notes {
			fmt.Printf("  %s: %s\n", r.what, n)
		}
	}
	fmt.Println("  idle CPU s (%) is over the idle span, % of one core; MiB/s and CPU s of a download are over the whole process (start to exit)")
	fmt.Printf("  load average now: %s (figures from a busy machine are not comparable)\n", loadAvg())
	return failed, nil
}

// scaleIdle seeds scaleFlags.torrents small torrents from one bitstorm process and
// measures it idle.
func scaleIdle(ctx context.Context, cfg config, bin, dir, announce string, tr *swarmtest.Process) scaleRow {
	n := scaleFlags.torrents
	r := scaleRow{what: fmt.Sprintf("idle: seeding %d x %d KiB", n, scaleFlags.kib), torrents: n}
	data := filepath.Join(dir, "idle-data")
	torrents, err := makeTorrents(ctx, dir, data, "s", n, int64(scaleFlags.kib)<<10, 16<<10, announce)
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if !cfg.keep {
			os.RemoveAll(data)
		}
	}()
	port, err := swarmtest.FreePort()
	if err != nil {
		r.err = err
		return r
	}
	mport, err := swarmtest.FreePort()
	if err != nil {
		r.err = err
		return r
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", mport)
	args := []string{"download", "--no-dht", "--quiet", "--json", "--seed-time", "1000h", "--out", data,
		"--listen", "127.0.0.1", "--port", strconv.Itoa(port), "--metrics", metricsAddr}
	if cfg.profile != "" {
		args = append([]string{"--cpuprofile", filepath.Join(cfg.profile, "bitstorm-scale-idle.prof")}, args...)
	}
	ev := &eventCounter{}
	cmd := exec.Command(bin, append(args, torrents...)...)
	cmd.Stdout = ev
	start := time.Now()
	p, err := swarmtest.Start(ctx, cmd, filepath.Join(dir, "idle-seeder.log"))
	if err != nil {
		r.err = err
		return r
	}
	defer stopGracefully(p)

	// Every torrent rechecked (completed) and its tracker answered.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for ev.count("completed") < n || ev.count("tracker_reply") < n {
		select {
		case <-wctx.Done():
			r.err = fmt.Errorf("after %s only %d of %d torrents completed and %d announced%s", time.Since(start).Round(time.Second),
				ev.count("completed"), n, ev.count("tracker_reply"), tailOf(p))
			return r
		case <-p.Done():
			_, err := p.Wait()
			r.err = fmt.Errorf("bitstorm exited while starting: %v", err)
			return r
		case <-time.After(200 * time.Millisecond):
		}
	}
	ready := time.Since(start)
	startCPU := procCPU(p.PID())
	r.notes = append(r.notes, fmt.Sprintf("all %d rechecked and announced %.1f s after start, %.2f CPU s; RSS then %.1f MiB",
		n, ready.Seconds(), startCPU.Seconds(), float64(procStatusKiB(p.PID(), "VmRSS"))/1024))
	// The announces that completion sends follow the first ones: let them and the
	// start's garbage settle before measuring.
	if !sleepCtx(ctx, 5*time.Second) {
		r.err = context.Cause(ctx)
		return r
	}
	ann0, cpu0, tcpu0, t0 := ev.count("tracker_reply"), procCPU(p.PID()), procCPU(tr.PID()), time.Now()
	if !sleepCtx(ctx, scaleFlags.idle) {
		r.err = context.Cause(ctx)
		return r
	}
	r.wall, r.cpu = time.Since(t0), procCPU(p.PID())-cpu0
	r.rss, r.peakRSS = procStatusKiB(p.PID(), "VmRSS")<<10, procStatusKiB(p.PID(), "VmHWM")<<10
	r.notes = append(r.notes, fmt.Sprintf("in the idle %s: %d announces answered (tracker interval %s), tracker CPU %.2f s; %s",
		r.wall.Round(time.Second), ev.count("tracker_reply")-ann0, scaleFlags.interval, (procCPU(tr.PID())-tcpu0).Seconds(),
		goMetrics(ctx, metricsAddr, n)))
	if pd := ev.count("peer_connected"); pd > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d peers connected meanwhile: not idle", pd))
	}
	return r
}

// scaleDownloads downloads one torrent alone, then scaleFlags.downloads at once, from one
// libtorrent session.
func scaleDownloads(ctx context.Context, cfg config, bin, dir, announce string) []scaleRow {
	n, size := scaleFlags.downloads, int64(scaleFlags.mib)<<20
	alone := scaleRow{what: fmt.Sprintf("download: 1 x %d MiB alone", scaleFlags.mib), torrents: 1}
	all := scaleRow{what: fmt.Sprintf("download: %d x %d MiB at once", n, scaleFlags.mib), torrents: n}
	fail := func(err error) []scaleRow {
		alone.err, all.err = err, err
		return []scaleRow{alone, all}
	}
	src := filepath.Join(dir, "dl-src")
	torrents, err := makeTorrents(ctx, dir, src, "d", n, size, 256<<10, announce)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if !cfg.keep {
			os.RemoveAll(src)
		}
	}()
	seeder, err := startScaleSeeder(ctx, dir, src, torrents)
	if err != nil {
		return fail(err)
	}
	defer seeder.Stop()

	alone = scaleDownload(ctx, cfg, bin, dir, alone, src, torrents[:1], seeder, size)
	all = scaleDownload(ctx, cfg, bin, dir, all, src, torrents, seeder, size)
	if alone.err == nil && all.err == nil {
		all.notes = append(all.notes, fmt.Sprintf("aggregate %.2fx the single torrent's MiB/s",
			(float64(all.bytes)/all.wall.Seconds())/(float64(alone.bytes)/alone.wall.Seconds())))
	}
	return []scaleRow{alone, all}
}

// scaleDownload runs one bitstorm process downloading torrents into a fresh directory,
// checks every file against src and deletes them.
func scaleDownload(ctx context.Context, cfg config, bin, dir string, r scaleRow, src string, torrents []string, seeder *swarmtest.Process, size int64) scaleRow {
	ctx, cancel := context.WithTimeout(ctx, cfg.clientTimeout)
	defer cancel()
	out := filepath.Join(dir, fmt.Sprintf("dl-out-%d", len(torrents)))
	defer func() {
		if !cfg.keep {
			os.RemoveAll(out)
		}
	}()
	port, err := swarmtest.FreePort()
	if err != nil {
		r.err = err
		return r
	}
	args := []string{"download", "--no-dht", "--quiet", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(port)}
	if cfg.profile != "" {
		args = append([]string{"--cpuprofile", filepath.Join(cfg.profile, fmt.Sprintf("bitstorm-scale-%d.prof", len(torrents)))}, args...)
	}
	scpu := procCPU(seeder.PID())
	p, err := swarmtest.Start(ctx, exec.Command(bin, append(args, torrents...)...), out+".log")
	if err != nil {
		r.err = err
		return r
	}
	// getrusage's peak of a child starts from this process's RSS at the fork (Linux hands
	// the parent's high-water mark on through exec): VmHWM of the child's own memory is
	// read instead, until it exits.
	hwm := make(chan int64, 1)
	go func() {
		var peak int64
		for {
			if v := procStatusKiB(p.PID(), "VmHWM") << 10; v > peak {
				peak = v
			}
			select {
			case <-p.Done():
				hwm <- peak
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	res, err := p.Wait()
	peak := <-hwm
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		r.err = err
		return r
	}
	r.wall, r.cpu, r.peakRSS, r.bytes = res.Wall, res.CPU(), peak, size*int64(len(torrents))
	r.notes = append(r.notes, fmt.Sprintf("%.2f s wall, %.0f%% sys; libtorrent seeder CPU %.2f s",
		res.Wall.Seconds(), 100*res.Sys.Seconds()/res.CPU().Seconds(), (procCPU(seeder.PID())-scpu).Seconds()))
	for _, t := range torrents {
		name := strings.TrimSuffix(filepath.Base(t), ".torrent") + ".bin"
		want, err := swarmtest.SHA256File(filepath.Join(src, name))
		if err == nil {
			var got string
			if got, err = swarmtest.SHA256File(filepath.Join(out, name)); err == nil && got != want {
				err = fmt.Errorf("sha256 of %s is %s, want %s", name, got, want)
			}
		}
		if err != nil {
			r.err = err
			return r
		}
	}
	return r
}

// makeTorrents writes n one-file payloads of size bytes (seeded random data) named
// PREFIXNNNN.bin into data, and a .torrent of each (announcing to announce) into
// dir/torrents; it returns the .torrent paths.
func makeTorrents(ctx context.Context, dir, data, prefix string, n int, size, pieceLen int64, announce string) ([]string, error) {
	specs := make([]swarmtest.FileSpec, n)
	for i := range specs {
		specs[i] = swarmtest.FileSpec{Path: fmt.Sprintf("%s%04d.bin", prefix, i), Size: size}
	}
	if err := swarmtest.WritePayload(data, 12, specs); err != nil {
		return nil, err
	}
	tdir := filepath.Join(dir, "torrents")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return nil, err
	}
	paths := make([]string, n)
	for i, s := range specs {
		b, err := create.Build(ctx, filepath.Join(data, s.Path), create.Options{
			PieceLength: pieceLen, Trackers: [][]string{{announce}}, NoDate: true})
		if err != nil {
			return nil, err
		}
		paths[i] = filepath.Join(tdir, strings.TrimSuffix(s.Path, ".bin")+".torrent")
		if err := os.WriteFile(paths[i], b, 0o644); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// startBitstormTracker starts `bitstorm tracker` on a free port of 127.0.0.1 with interval
// and returns it and its announce URL.
func startBitstormTracker(ctx context.Context, bin, dir string, interval time.Duration) (*swarmtest.Process, string, error) {
	lines := &lineTap{}
	cmd := exec.Command(bin, "tracker", "--listen", "127.0.0.1:0", "--interval", interval.String())
	cmd.Stdout = lines
	p, err := swarmtest.Start(ctx, cmd, filepath.Join(dir, "tracker.log"))
	if err != nil {
		return nil, "", err
	}
	line, err := lines.wait(ctx, p, "tracker listening on http://", 30*time.Second)
	if err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, strings.TrimPrefix(line, "tracker listening on "), nil
}

// startScaleSeeder seeds torrents from data with one libtorrent session (scale_seed.py) and
// returns once each seeds and has announced.
func startScaleSeeder(ctx context.Context, dir, data string, torrents []string) (*swarmtest.Process, error) {
	script := filepath.Join(dir, "scale_seed.py")
	if err := os.WriteFile(script, []byte(scaleSeedScript), 0o644); err != nil {
		return nil, err
	}
	lines := &lineTap{}
	cmd := exec.Command(swarmtest.Python, append([]string{"-I", "-u", script, data}, torrents...)...)
	cmd.Stdout = lines
	p, err := swarmtest.Start(ctx, cmd, filepath.Join(dir, "libtorrent-seeder.log"))
	if err != nil {
		return nil, err
	}
	if _, err := lines.wait(ctx, p, "seeding port=", time.Minute+time.Duration(len(torrents))*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// stopGracefully interrupts p (as Ctrl-C: a CPU profile is written, resume records saved)
// and kills it when it has not exited within 30 s.
func stopGracefully(p *swarmtest.Process) {
	_ = syscall.Kill(p.PID(), syscall.SIGINT)
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
	}
	p.Stop()
}

// lineTap is a child's stdout: it keeps the lines, for wait.
type lineTap struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
}

func (t *lineTap) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	for {
		i := strings.IndexByte(string(t.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		t.lines = append(t.lines, string(t.buf[:i]))
		t.buf = t.buf[i+1:]
	}
}

// wait returns the first line starting with prefix, waiting for it at most timeout.
func (t *lineTap) wait(ctx context.Context, p *swarmtest.Process, prefix string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		for _, l := range t.lines {
			if strings.HasPrefix(l, prefix) {
				t.mu.Unlock()
				return l, nil
			}
		}
		t.mu.Unlock()
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no line %q within %s%s", p.Name, prefix, timeout, tailOf(p))
		}
		select {
		case <-ctx.Done():
			return "", context.Cause(ctx)
		case <-p.Done():
			_, err := p.Wait()
			return "", fmt.Errorf("%s exited before %q: %v", p.Name, prefix, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// eventCounter counts the events of bitstorm --json on its stdout, by name.
type eventCounter struct {
	mu     sync.Mutex
	buf    []byte
	counts map[string]int
}

func (e *eventCounter) Write(b []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts = make(map[string]int)
	}
	e.buf = append(e.buf, b...)
	for {
		i := strings.IndexByte(string(e.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		var obj struct{ Event string }
		if json.Unmarshal(e.buf[:i], &obj) == nil {
			e.counts[obj.Event]++
		}
		e.buf = e.buf[i+1:]
	}
}

func (e *eventCounter) count(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[name]
}

// procStatusKiB reads a "Key: N kB" field of /proc/PID/status; 0 when absent.
func procStatusKiB(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// goMetrics reads the Go runtime's figures from bitstorm's --metrics: goroutines (and per
// torrent) and the heap in use.
func goMetrics(ctx context.Context, addr string, torrents int) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("metrics: %v", err)
	}
	defer resp.Body.Close()
	vals := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		switch name {
		case "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes":
			vals[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	if len(vals) == 0 {
		return "metrics: no go_* figures"
	}
	return fmt.Sprintf("%.0f goroutines (%.1f per torrent), heap in use %.1f MiB, stacks %.1f MiB, Go sys %.1f MiB",
		vals["go_goroutines"], vals["go_goroutines"]/float64(torrents), vals["go_memstats_heap_inuse_bytes"]/(1<<20),
		vals["go_memstats_stack_inuse_bytes"]/(1<<20), vals["go_memstats_sys_bytes"]/(1<<20))
}

// sleepCtx sleeps d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// tailOf is the end of p's log, on lines of its own, or "".
func tailOf(p *swarmtest.Process) string {
	if t := p.Tail(10); t != "" {
		return "\n" + t
	}
	return ""
}
