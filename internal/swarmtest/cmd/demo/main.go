// Command demo is the driver of `make demo`: it downloads a generated
// multi-file torrent with the bitstorm binary from a real libtorrent seeder,
// found through a real opentracker, all on 127.0.0.1, with bitstorm's
// progress display on this terminal. Then it checks every byte and prints a
// summary.
//
//	go run ./internal/swarmtest/cmd/demo -bitstorm bin/bitstorm
//
// It installs missing Debian packages when run as root, works in a temporary
// directory that it deletes, and stops every process it started, also on
// Ctrl-C. It exits non-zero on any failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

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

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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

	say("checking opentracker, mktorrent and python3-libtorrent (installed with apt-get when missing and root)")
	if err := swarmtest.Ensure(swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent); err != nil {
		return err
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

	files := payload(cfg.sizeMiB)
	total := swarmtest.TotalSize(files)
	say("generating %d files, %.1f MiB of seeded random data in %s", len(files), mib(total), dir)
	if err := swarmtest.WritePayload(dir, 4242, files); err != nil {
		return err
	}

	tr, err := swarmtest.StartTracker(ctx, dir)
	if err != nil {
		return err
	}
	defer tr.Stop()
	say("opentracker at %s", tr.AnnounceURL)

	torrent := filepath.Join(dir, "bitstorm-demo.torrent")
	if err := swarmtest.MakeTorrent(ctx, filepath.Join(dir, "bitstorm-demo"), torrent, tr.AnnounceURL, 18); err != nil {
		return err
	}
	hash, err := swarmtest.InfoHash(ctx, torrent)
	if err != nil {
		return err
	}
	if err := tr.Allow(ctx, hash); err != nil {
		return err
	}
	say("torrent %s, info hash %s, 256 KiB pieces", filepath.Base(torrent), hash)

	seeder, err := swarmtest.StartLibtorrentSeeder(ctx, torrent, dir)
	if err != nil {
		return err
	}
	defer seeder.Stop()
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		return err
	}
	say("libtorrent seeder (pid %d) has announced itself", seeder.PID())

	out := filepath.Join(dir, "download")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	port, err := swarmtest.FreePort()
	if err != nil {
		return err
	}
	args := []string{"download", "--out", out, "--port", strconv.Itoa(port), torrent}
	say("running: %s %s", cfg.bitstorm, strings.Join(args, " "))
	fmt.Println()
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	p, err := swarmtest.Start(ctx, cmd, "")
	if err != nil {
		return err
	}
	res, err := p.Wait()
	fmt.Println()
	if ctx.Err() != nil {
		return fmt.Errorf("bitstorm stopped: %w", context.Cause(ctx))
	}
	if err != nil {
		return err
	}

	say("checking every file against the payload (SHA-256)")
	if err := swarmtest.ComparePayload(dir, out, files); err != nil {
		return errors.Join(errors.New("downloaded files differ from the payload"), err)
	}
	fmt.Printf("\nOK: %d files, %.1f MiB in %.2f s = %.1f MiB/s (cpu %.2f s, peak RSS %.0f MiB), all bytes match.\n",
		len(files), mib(total), res.Wall.Seconds(), mib(total)/res.Wall.Seconds(),
		res.CPU().Seconds(), mib(res.MaxRSS))
	return nil
}

func say(format string, args ...any) {
	fmt.Printf("demo: "+format+"\n", args...)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
