package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

func downloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "download",
		Usage:     "download a torrent; exits 0 once every piece is verified on disk",
		ArgsUsage: "FILE.torrent",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: ".", Usage: "directory to download into"},
			&cli.UintFlag{Name: "port", Aliases: []string{"p"}, Value: 6881, Usage: "port announced to trackers"},
			&cli.IntFlag{Name: "max-peers", Value: 50, Usage: "concurrent peer connections"},
			&cli.StringSliceFlag{Name: "peer", Usage: "dial this peer (host:port) instead of asking the trackers; repeatable"},
			&cli.DurationFlag{Name: "no-peers-timeout", Value: 2 * time.Minute, Usage: "give up when no peer is connected for this long"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug messages"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log only warnings and errors, no progress"},
		},
		Action: download,
	}
}

func download(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("download: expected one .torrent file, got %d arguments", c.NArg())
	}
	if c.Uint("port") == 0 || c.Uint("port") > 65535 {
		return fmt.Errorf("download: --port %d: must be 1-65535", c.Uint("port"))
	}
	if c.Int("max-peers") < 1 {
		return fmt.Errorf("download: --max-peers %d: must be at least 1", c.Int("max-peers"))
	}
	m, err := metainfo.Load(c.Args().First())
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	switch {
	case c.Bool("verbose"):
		level = slog.LevelDebug
	case c.Bool("quiet"):
		level = slog.LevelWarn
	}
	term := isTerminal(os.Stderr) && !c.Bool("quiet")
	out := newLineWriter(os.Stderr)
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	opts := []pipeline.Option{
		pipeline.WithLogger(log),
		pipeline.WithConfig(pipeline.Config{
			OutDir: c.String("out"), Port: uint16(c.Uint("port")), MaxPeers: c.Int("max-peers"),
			NoPeersTimeout: c.Duration("no-peers-timeout"),
		}),
	}
	if peers := c.StringSlice("peer"); len(peers) > 0 {
		var static stages.StaticPeers
		for _, s := range peers {
			a, err := netip.ParseAddrPort(s)
			if err != nil {
				return fmt.Errorf("download: --peer %q: %w", s, err)
			}
			static = append(static, a)
		}
		opts = append(opts, pipeline.WithPeerSource(static))
	}
	p, err := pipeline.New(m, opts...)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	start := time.Now()
	var prog *progress
	if term {
		prog = startProgress(out, p.Stats)
	}
	err = p.Run(c.Context)
	if prog != nil {
		prog.stop()
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if !c.Bool("quiet") {
		fmt.Fprintf(out, "%s: %s verified in %s (%s/s)\n", m.Info.Name, humanBytes(m.Info.Length),
			elapsed.Round(time.Millisecond), humanBytes(int64(float64(m.Info.Length)/elapsed.Seconds())))
	}
	return nil
}
