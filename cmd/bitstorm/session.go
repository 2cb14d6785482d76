package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

// torrentArg is one torrent of the command line, parsed: m, or the magnet link mag.
type torrentArg struct {
	arg string
	m   *metainfo.MetaInfo
	mag *magnet.Magnet
}

func (a torrentArg) hash() [20]byte {
	if a.m != nil {
		return a.m.InfoHash
	}
	return a.mag.InfoHash
}

// parseTorrentArgs reads every torrent of the command line before anything starts: the
// first bad one, or a torrent named twice, is the error.
func parseTorrentArgs(name string, args []string) ([]torrentArg, error) {
	out := make([]torrentArg, len(args))
	seen := make(map[[20]byte]int, len(args))
	for i, arg := range args {
		m, mag, err := parseTorrentArg(arg)
		if err != nil {
			if !strings.Contains(err.Error(), arg) {
				return nil, fmt.Errorf("%s: argument %d, %q: %w", name, i+1, arg, err)
			}
			return nil, fmt.Errorf("%s: argument %d: %w", name, i+1, err)
		}
		out[i] = torrentArg{arg: arg, m: m, mag: mag}
		h := out[i].hash()
		if j, dup := seen[h]; dup {
			return nil, fmt.Errorf("%s: %q (argument %d) is the torrent of %q (argument %d) again: info hash %x",
				name, arg, i+1, args[j], j+1, h)
		}
		seen[h] = i
	}
	return out, nil
}

// runSession downloads every torrent of the command line in one process through a
// pipeline.Session: one listen port, one DHT node, the flags' settings for each. It
// returns once every torrent has ended: nil when each is verified, else an error naming
// those that failed; Ctrl-C stops them all, their resume records saved.
func runSession(c *cli.Context, cfg pipeline.Config) error {
	s, err := setup(c, cfg)
	if err != nil {
		return err
	}
	cfg = s.cfg
	args, err := parseTorrentArgs(s.name, c.Args().Slice())
	if err != nil {
		return err
	}
	rep, err := newReporter(c, s.log)
	if err != nil {
		return err
	}
	defer rep.close()
	public := false // BEP 27: private torrents never use the DHT; the pipeline leaves them out
	for _, a := range args {
		public = public || a.m == nil || !a.m.Info.Private
	}
	sc := pipeline.SessionConfig{ListenAddr: cfg.ListenAddr, Log: s.log, Defaults: cfg, MaxConns: c.Int("max-conns"),
		MaxActiveDownloads: c.Int("max-active-downloads")}
	if sc.ListenAddr == "" {
		sc.ListenAddr = fmt.Sprintf(":%d", cfg.Port)
	}
	if public {
		if node := startDHT(c, cfg, s.log); node != nil {
			defer node.Close()
			sc.DHT = node
		}
	}
	// What pipeline.New refuses (a torrent with nowhere to find peers) is refused before
	// the first torrent starts: a pipeline opens nothing until it runs.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i, a := range args {
		opts := append([]pipeline.Option{pipeline.WithLogger(quiet), pipeline.WithConfig(cfg)}, s.torrentOptions(c)...)
		if sc.DHT != nil {
			opts = append(opts, pipeline.WithDHT(sc.DHT))
		}
		if a.m != nil {
			_, err = pipeline.New(a.m, opts...)
		} else {
			_, err = pipeline.NewMagnet(a.mag, opts...)
		}
		if err != nil {
			return fmt.Errorf("%s: argument %d, %s: %w", s.name, i+1, a.arg, err)
		}
	}

	byHash := make(map[[20]byte]*tracked, len(args))
	ts := make([]*tracked, len(args))
	for i, a := range args {
		ts[i] = rep.track(a.arg, a.m, a.mag)
		byHash[a.hash()] = ts[i]
	}
	// Events may come before Add returns: byHash is complete before the first Add.
	sc.Events = func(t *pipeline.Torrent, e stages.Event) {
		if tr := byHash[t.InfoHash()]; tr != nil {
			tr.event(e)
		}
	}
	sess, err := pipeline.NewSession(sc)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	defer sess.Close()
	start := time.Now()
	torrents := make([]*pipeline.Torrent, len(args))
	for i, a := range args {
		src := pipeline.FromMetaInfo(a.m)
		if a.m == nil {
			src = pipeline.FromMagnet(a.arg)
		}
		t, err := sess.Add(src, false, s.torrentOptions(c)...)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.name, a.arg, err)
		}
		torrents[i] = t
		ts[i].attach(t, start)
	}
	rep.start()
	var prog *progress
	if s.term {
		prog = startSessionProgress(s.out, ts)
	}
	ended := make(chan int, len(torrents))
	for i, t := range torrents {
		go func() {
			t.Wait(context.Background()) // a queued one through its turn and its run; Close ends every one
			ended <- i
		}()
	}
	interrupt, interrupted := c.Context.Done(), false
	failures := make([]string, len(torrents)) // in the order of the command line
	for range torrents {
		var i int
		for {
			select {
			case i = <-ended:
			case <-interrupt:
				interrupt, interrupted = nil, true
				sess.Close() // every torrent pauses and saves its resume record: each ends
				continue
			}
			break
		}
		t, tr := torrents[i], ts[i]
		switch t.State() {
		case pipeline.Finished:
			tr.end(nil)
			if m := t.Meta(); !c.Bool("quiet") {
				elapsed := time.Since(start)
				fmt.Fprintf(s.out, "%s: %s verified in %s (%s/s)\n", m.Info.Name, humanBytes(m.Info.Length),
					elapsed.Round(time.Millisecond), humanBytes(int64(float64(m.Info.Length)/elapsed.Seconds())))
			}
		case pipeline.Failed:
			tr.end(t.Err())
			s.log.Warn("torrent failed", "torrent", tr.label(), "err", t.Err())
			failures[i] = fmt.Sprintf("%s: %v", tr.describe(), t.Err())
		default: // paused by Ctrl-C
			tr.end(fmt.Errorf("download interrupted: %w", context.Canceled))
		}
	}
	if prog != nil {
		prog.stop()
	}
	if interrupted {
		return fmt.Errorf("download interrupted: %w", context.Canceled)
	}
	if failures = slices.DeleteFunc(failures, func(f string) bool { return f == "" }); len(failures) > 0 {
		return fmt.Errorf("%s: %d of %d torrents failed: %s", s.name, len(failures), len(torrents), strings.Join(failures, "; "))
	}
	return nil
}

// describe names t in an error: its name and the file or info hash it came from.
func (t *tracked) describe() string {
	from := t.arg
	if t.magnet {
		from = "magnet " + t.hex
	}
	if l := t.label(); l != t.hex {
		return fmt.Sprintf("%s (%s)", l, from)
	}
	return from
}
