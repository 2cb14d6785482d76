package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// The serve table: bitstorm serve streams one file from one libtorrent seeder whose upload
// is rate limited, so that the download takes a while on any machine; HTTP Range requests
// at random offsets, each while the bytes there are not downloaded yet, are timed to their
// first byte and to their first MiB (checked against the payload). It is what a player
// waits for after a seek.
//
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm -serve-only [-serve-size 64] [-serve-rate 4] [-serve-seeks 8]

var serveFlags struct {
	only  bool
	mib   int
	rate  int // MiB/s
	seeks int
}

func init() {
	flag.BoolVar(&serveFlags.only, "serve-only", false, "run only the serve table (serve.go): time to the first byte after a seek through bitstorm serve")
	flag.IntVar(&serveFlags.mib, "serve-size", 64, "the serve table's payload in MiB (one file)")
	flag.IntVar(&serveFlags.rate, "serve-rate", 4, "the serve table's seeder upload limit in MiB/s")
	flag.IntVar(&serveFlags.seeks, "serve-seeks", 8, "the serve table's seeks")
}

// serveOnly is run for -serve-only: the serve table alone.
func serveOnly(ctx context.Context, cfg config) error {
	bin, err := filepath.Abs(cfg.bitstorm)
	if err != nil {
		return err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return fmt.Errorf("no bitstorm binary at %s (make build)", bin)
	}
	if err := swarmtest.Ensure(swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent); err != nil {
		return err
	}
	dir, done, err := benchDir(cfg)
	if err != nil {
		return err
	}
	defer done()
	return serveTable(ctx, cfg, bin, dir)
}

// seekRow is one timed request.
type seekRow struct {
	what        string
	off         int64
	first, mib  time.Duration
	piecesAfter int // on disk once it was answered
}

func serveTable(ctx context.Context, cfg config, bin, dir string) error {
	sdir := filepath.Join(dir, "serve")
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return err
	}
	name := fmt.Sprintf("serve-%dMiB.bin", serveFlags.mib)
	size := int64(serveFlags.mib) << 20
	if err := swarmtest.WritePayload(sdir, 4, []swarmtest.FileSpec{{Path: name, Size: size}}); err != nil {
		return err
	}
	src := filepath.Join(sdir, name)
	tr, err := swarmtest.StartTracker(ctx, sdir)
	if err != nil {
		return err
	}
	defer tr.Stop()
	torrent := filepath.Join(sdir, "serve.torrent")
	if err := swarmtest.MakeTorrent(ctx, src, torrent, tr.AnnounceURL, cfg.pieceLog2); err != nil {
		return err
	}
	hash, err := swarmtest.InfoHash(ctx, torrent)
	if err != nil {
		return err
	}
	if err := tr.Allow(ctx, hash); err != nil {
		return err
	}
	m, err := metainfo.Load(torrent)
	if err != nil {
		return err
	}
	seeder, err := swarmtest.StartLibtorrentSeederLimited(ctx, torrent, sdir, serveFlags.rate<<20)
	if err != nil {
		return err
	}
	defer seeder.Stop()
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		return err
	}

	out := filepath.Join(sdir, "out")
	port, err := swarmtest.FreePort()
	if err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	cmd := exec.Command(bin, "serve", "--no-dht", "--quiet", "--http", "127.0.0.1:0", "--out", out,
		"--listen", "127.0.0.1", "--port", strconv.Itoa(port), torrent)
	cmd.Stdout = pw
	serve, err := swarmtest.Start(ctx, cmd, filepath.Join(sdir, "serve.log"))
	pw.Close()
	if err != nil {
		return err
	}
	defer serve.Stop()
	url, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		return fmt.Errorf("bitstorm serve printed no URL: %w\n%s", err, serve.Tail(20))
	}
	url = strings.TrimSpace(url)
	payload, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	watch := newPieceWatch(filepath.Join(out, name), &m.Info)

	fmt.Printf("\nserve: %d MiB in one file, %d KiB pieces, one libtorrent seeder at %d MiB/s (the download takes %d s at least); "+
		"bitstorm serve, default readahead\n\n", serveFlags.mib, m.Info.PieceLength>>10, serveFlags.rate, serveFlags.mib/max(serveFlags.rate, 1))
	rng := rand.New(rand.NewPCG(4, 4))
	start := time.Now()
	var rows []seekRow
	request := func(what string, off int64) error {
		r, err := timeRange(ctx, url, off, payload)
		if err != nil {
			return fmt.Errorf("%s at %d: %w\n%s", what, off, err, serve.Tail(20))
		}
		r.what, r.piecesAfter = what, watch.poll()
		rows = append(rows, r)
		return nil
	}
	if err := request("start", 0); err != nil {
		return err
	}
	for i := range serveFlags.seeks {
		// A random offset in a piece not on disk yet, and not in an earlier request's
		// readahead: a seek into what is not downloaded.
		watch.poll()
		var off int64
		for range 1000 {
			off = rng.Int64N(size - 1<<20)
			ahead := slices.ContainsFunc(rows, func(r seekRow) bool { return off >= r.off && off < r.off+8<<20 })
			if !ahead && !watch.good[int(off/m.Info.PieceLength)] {
				break
			}
		}
		if err := request(fmt.Sprintf("seek %d", i+1), off); err != nil {
			return err
		}
	}
	if err := request("again (on disk)", rows[1].off); err != nil {
		return err
	}
	elapsed := time.Since(start)

	fmt.Printf("%-16s %10s %14s %14s %16s\n", "request", "offset MiB", "first byte ms", "first MiB ms", "pieces on disk")
	var firsts []time.Duration
	for _, r := range rows {
		fmt.Printf("%-16s %10.1f %14.0f %14.0f %10d/%d\n", r.what, float64(r.off)/(1<<20),
			ms(r.first), ms(r.mib), r.piecesAfter, m.Info.NumPieces())
		if strings.HasPrefix(r.what, "seek") {
			firsts = append(firsts, r.first)
		}
	}
	slices.Sort(firsts)
	fmt.Printf("\nseeks: first byte median %.0f ms, max %.0f ms; %d requests in %.1f s, %d of %d pieces on disk by then\n",
		ms(firsts[len(firsts)/2]), ms(firsts[len(firsts)-1]), len(rows), elapsed.Seconds(), watch.poll(), m.Info.NumPieces())
	return nil
}

// timeRange asks for the bytes of url from off on and times the first byte and the first
// MiB, which must be the payload's.
func timeRange(ctx context.Context, url string, off int64, payload []byte) (seekRow, error) {
	r := seekRow{off: off}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return r, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return r, fmt.Errorf("%s", resp.Status)
	}
	buf := make([]byte, min(1<<20, int64(len(payload))-off))
	if _, err := io.ReadFull(resp.Body, buf[:1]); err != nil {
		return r, err
	}
	r.first = time.Since(t0)
	if _, err := io.ReadFull(resp.Body, buf[1:]); err != nil {
		return r, err
	}
	r.mib = time.Since(t0)
	if !bytes.Equal(buf, payload[off:off+int64(len(buf))]) {
		return r, errors.New("bytes differ from the payload")
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
