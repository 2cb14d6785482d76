package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// The magnet table: each client is given only a magnet link and times two events from its
// start: the first piece that verifies, and completion. The peers come from opentracker
// (the link's tr) on 127.0.0.1, then, as root, from libtorrent DHT nodes alone, in a
// network namespace with an address per peer (libtorrent's DHT distrusts many nodes on
// one IP; see shared/notes/real-peers.md).
//
// Both events are read from the client's output files, polled every pollEvery: a piece
// counts once it hashes right on disk, and completion once every piece does. The one
// exception, libtorrent's first piece, is its first piece_finished_alert (the script's
// "first-piece" line), as it writes blocks through mmap before it verifies the piece.

const (
	pollEvery = 10 * time.Millisecond
	dhtPort   = "6881" // every peer of the namespace listens on it, on its own address
)

// The namespace's addresses: three DHT nodes, the seeder, and one per client.
var (
	dhtNodes    = []string{"10.77.1.1", "10.77.1.2", "10.77.1.3"}
	dhtSeeder   = "10.77.1.10"
	dhtClientIP = map[string]string{"bitstorm": "10.77.1.20", "libtorrent": "10.77.1.21", "aria2c": "10.77.1.22"}
)

// magnetRow is one client's measurement from one source of peers.
type magnetRow struct {
	client, source string
	first, done    time.Duration // from the start; 0: never seen
	exit           time.Duration
	err            error
}

// magnetRun is one client's download of a magnet link, ready to start.
type magnetRun struct {
	cmd          *exec.Cmd
	log          string // its output
	file         string // the downloaded file
	firstFromLog bool   // the first piece from its "first-piece " line, not from the file
}

// magnetTable makes a payload of cfg.magnetMiB, runs every client from a magnet link with
// a tracker, then (as root) with the DHT only, and prints the table; it returns the rows
// that failed.
func magnetTable(ctx context.Context, cfg config, bin, dir string) ([]string, error) {
	mdir := filepath.Join(dir, "magnet")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("magnet-%dMiB.bin", cfg.magnetMiB)
	size := int64(cfg.magnetMiB) << 20
	if err := swarmtest.WritePayload(mdir, 2, []swarmtest.FileSpec{{Path: name, Size: size}}); err != nil {
		return nil, err
	}
	want, err := swarmtest.SHA256File(filepath.Join(mdir, name))
	if err != nil {
		return nil, err
	}
	fmt.Printf("\nmagnet links: %d MiB in one file, %d KiB pieces, one libtorrent seeder (seed_mode)\n\n",
		cfg.magnetMiB, 1<<cfg.pieceLog2>>10)

	rows, err := magnetTracker(ctx, cfg, bin, mdir, name, want)
	if err != nil {
		return nil, err
	}
	dhtRows, skip := magnetDHT(ctx, cfg, bin, mdir, name, want)
	rows = append(rows, dhtRows...)

	fmt.Println()
	const format = "%-12s  %-16s  %13s  %10s  %8s  %7s\n"
	fmt.Printf(format, "magnet", "peers from", "first piece s", "complete s", "MiB/s", "exit s")
	var failed []string
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf(format, r.client, r.source, "FAILED", "", "", "")
			failed = append(failed, r.client+" ("+r.source+")")
			continue
		}
		fmt.Printf(format, r.client, r.source, fmt.Sprintf("%.2f", r.first.Seconds()), fmt.Sprintf("%.2f", r.done.Seconds()),
			fmt.Sprintf("%.1f", float64(size)/(1<<20)/r.done.Seconds()), fmt.Sprintf("%.2f", r.exit.Seconds()))
	}
	if skip != "" {
		fmt.Printf("(no DHT rows: %s)\n", skip)
	}
	fmt.Println("Seconds from the client's start (`download MAGNET`) until the first piece hashes right on disk")
	fmt.Printf("(libtorrent: its first piece_finished_alert) and until every piece does, polled every %v; MiB/s\n", pollEvery)
	fmt.Println("is over that complete time; exit includes the final announces (aria2c: ~3 s of fixed ticks).")
	fmt.Println("Aim: first piece within 1 s with a tracker and 3 s through the DHT, no slower than libtorrent.")
	return failed, nil
}

// magnetTracker runs the tracker rows: opentracker and a libtorrent seeder on 127.0.0.1,
// and a link that names the tracker.
func magnetTracker(ctx context.Context, cfg config, bin, mdir, name, want string) ([]magnetRow, error) {
	tr, err := swarmtest.StartTracker(ctx, mdir)
	if err != nil {
		return nil, err
	}
	defer tr.Stop()
	torrent := filepath.Join(mdir, "magnet.torrent")
	if err := swarmtest.MakeTorrent(ctx, filepath.Join(mdir, name), torrent, tr.AnnounceURL, cfg.pieceLog2); err != nil {
		return nil, err
	}
	m, err := metainfo.Load(torrent)
	if err != nil {
		return nil, err
	}
	hash := m.HexHash()
	if err := tr.Allow(ctx, hash); err != nil {
		return nil, err
	}
	seeder, err := swarmtest.StartLibtorrentSeeder(ctx, torrent, mdir)
	if err != nil {
		return nil, err
	}
	defer seeder.Stop()
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		return nil, err
	}
	link := "magnet:?xt=urn:btih:" + hash + "&dn=" + url.QueryEscape(name) + "&tr=" + url.QueryEscape(tr.AnnounceURL)

	var rows []magnetRow
	for _, c := range cfg.clients {
		if ctx.Err() != nil {
			break
		}
		out := filepath.Join(mdir, "tracker-"+c)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
		port, err := swarmtest.FreePort()
		if err != nil {
			return nil, err
		}
		run := magnetRun{log: out + ".log", file: filepath.Join(out, name)}
		switch c {
		case "bitstorm":
			run.cmd = exec.Command(bin, "download", "--no-dht", "--out", out, "--listen", "127.0.0.1",
				"--port", strconv.Itoa(port), "--quiet", link)
		case "libtorrent":
			run.cmd, err = swarmtest.LibtorrentMagnetCmd(link, out, port, "--first-piece")
			run.firstFromLog = true
		case "aria2c":
			run.cmd = aria2cMagnet(out, link, "--listen-port="+strconv.Itoa(port), "--interface=127.0.0.1",
				"--enable-dht=false")
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, timeMagnet(ctx, cfg, c, "tracker (HTTP)", run, &m.Info, want))
	}
	return rows, nil
}

// aria2cMagnet is aria2c downloading link into out and exiting (no seeding), with neither
// LPD nor PEX, reading no configuration file and keeping no .torrent, plus args.
func aria2cMagnet(out, link string, args ...string) *exec.Cmd {
	all := append([]string{"--no-conf=true", "--dir=" + out, "--seed-time=0", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--summary-interval=0",
		"--disable-ipv6=true", "--bt-save-metadata=false"}, args...)
	return exec.Command("aria2c", append(all, link)...)
}

// timeMagnet runs one client and times its first verified piece and its completion, then
// checks the file's SHA-256 and deletes it.
func timeMagnet(ctx context.Context, cfg config, client, source string, run magnetRun, info *metainfo.Info, want string) magnetRow {
	r := magnetRow{client: client, source: source}
	fmt.Printf("running %s, peers from %s ...\n", client, source)
	defer func() {
		if r.err != nil {
			fmt.Printf("  %s failed: %v\n", client, r.err)
		}
		if !cfg.keep {
			os.RemoveAll(filepath.Dir(run.file))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, cfg.clientTimeout)
	defer cancel()
	w := newPieceWatch(run.file, info)
	t0 := time.Now()
	p, err := swarmtest.Start(ctx, run.cmd, run.log)
	if err != nil {
		r.err = err
		return r
	}
	defer p.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	see := func(now time.Time) {
		good := w.poll()
		if r.first == 0 {
			if run.firstFromLog {
				if b, _ := os.ReadFile(run.log); bytes.Contains(b, []byte("first-piece ")) {
					r.first = now.Sub(t0)
				}
			} else if good > 0 {
				r.first = now.Sub(t0)
			}
		}
		if r.done == 0 && good == info.NumPieces() {
			r.done = now.Sub(t0)
		}
	}
wait:
	for r.done == 0 || r.first == 0 {
		select {
		case <-tick.C:
			see(time.Now())
		case <-p.Done():
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	res, err := p.Wait()
	r.exit = res.Wall
	switch {
	case ctx.Err() != nil:
		r.err = fmt.Errorf("%w after %.1fs", context.Cause(ctx), time.Since(t0).Seconds())
		return r
	case err != nil:
		r.err = err
		return r
	}
	see(t0.Add(res.Wall)) // what the last ticks missed happened before the exit
	if r.first == 0 || r.done == 0 {
		r.err = fmt.Errorf("exited after %.2fs with %d of %d pieces verified on disk", res.Wall.Seconds(), w.n, info.NumPieces())
		return r
	}
	got, err := swarmtest.SHA256File(run.file)
	if err != nil {
		r.err = err
	} else if got != want {
		r.err = fmt.Errorf("sha256 of the download is %s, want %s", got, want)
	}
	return r
}

// pieceWatch tells how many pieces of a single-file download hash right on disk, reading
// the file as it grows.
type pieceWatch struct {
	path string
	info *metainfo.Info
	good []bool
	n    int
	buf  []byte
}

func newPieceWatch(path string, info *metainfo.Info) *pieceWatch {
	return &pieceWatch{path: path, info: info, good: make([]bool, info.NumPieces()), buf: make([]byte, info.PieceLength)}
}

// probe is how much of each end of a piece is read to tell written data from a hole or a
// preallocated span: the payload is random, so written data is never 64 zero bytes.
const probe = 64

// poll hashes the pieces not yet good whose both ends are written, and returns how many
// pieces are good. A piece is read whole only once its first and last bytes are there, so
// a poll costs little more than the pieces that just arrived.
func (w *pieceWatch) poll() int {
	f, err := os.Open(w.path)
	if err != nil {
		return w.n
	}
	defer f.Close()
	var head, zero [probe]byte
	written := func(off int64, n int) bool {
		b := head[:n]
		if _, err := f.ReadAt(b, off); err != nil {
			return false
		}
		return !bytes.Equal(b, zero[:n])
	}
	for i, ok := range w.good {
		if ok {
			continue
		}
		off, size := w.info.PieceOffset(i), w.info.PieceSize(i)
		n := int(min(size, probe))
		if !written(off, n) || !written(off+size-int64(n), n) {
			continue
		}
		b := w.buf[:size]
		if _, err := f.ReadAt(b, off); err != nil {
			continue
		}
		if sha1.Sum(b) == w.info.PieceHash(i) {
			w.good[i] = true
			w.n++
		}
	}
	return w.n
}
