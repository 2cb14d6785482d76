package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "show what a .torrent file holds, or fetch a magnet link's metadata from peers and show it",
		ArgsUsage: "FILE.torrent | MAGNET",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "save", Usage: "write the torrent to `FILE.torrent` (for a magnet link: its fetched metadata and trackers)"},
			&cli.StringSliceFlag{Name: "peer", Usage: "ask this peer (host:port) for a magnet link's metadata; repeatable"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "give up fetching a magnet link's metadata after this long"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug messages"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("info: expected one .torrent file or magnet link, got %d arguments", c.NArg())
			}
			peers, err := staticPeers(c)
			if err != nil {
				return err
			}
			// A magnet's metadata is fetched without accepting peers and kept nowhere
			// but in --save.
			tmp, err := os.MkdirTemp("", "bitstorm-info-*")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			level := slog.LevelWarn
			if c.Bool("verbose") {
				level = slog.LevelDebug
			}
			opts := []pipeline.Option{
				pipeline.WithLogger(slog.New(slog.NewTextHandler(newLineWriter(os.Stderr), &slog.HandlerOptions{Level: level}))),
				pipeline.WithConfig(pipeline.Config{OutDir: tmp, NoListen: true, NoPeersTimeout: c.Duration("timeout")}),
			}
			if len(peers) > 0 {
				opts = append(opts, pipeline.WithPeerSource(peers))
			}
			m, err := loadTorrent(c.Context, c.Args().First(), opts)
			if err != nil {
				return err
			}
			printInfo(c.App.Writer, m)
			if path := c.String("save"); path != "" {
				if err := os.WriteFile(path, metainfo.Torrent(m.RawInfo, m.Trackers()), 0o644); err != nil {
					return fmt.Errorf("info: --save: %w", err)
				}
			}
			return nil
		},
	}
}

func printInfo(w io.Writer, m *metainfo.MetaInfo) {
	in := &m.Info
	fmt.Fprintf(w, "name:         %s\n", in.Name)
	fmt.Fprintf(w, "info hash:    %s\n", m.HexHash())
	fmt.Fprintf(w, "total size:   %s (%d bytes)\n", humanBytes(in.Length), in.Length)
	fmt.Fprintf(w, "piece length: %s (%d bytes)\n", humanBytes(in.PieceLength), in.PieceLength)
	fmt.Fprintf(w, "pieces:       %d\n", in.NumPieces())
	if in.Private {
		fmt.Fprintf(w, "private:      yes\n")
	}
	fmt.Fprintf(w, "files:        %d\n", len(in.Files))
	for i, f := range in.Files { // numbered from 1, as --select takes them
		fmt.Fprintf(w, "  %3d  %10s  %s\n", i+1, humanBytes(f.Length), filepath.Join(f.Path...))
	}
	tiers := m.Trackers()
	fmt.Fprintf(w, "trackers:     %d\n", countURLs(tiers))
	for i, t := range tiers {
		fmt.Fprintf(w, "  tier %d: %s\n", i, strings.Join(t, " "))
	}
}

func countURLs(tiers [][]string) int {
	n := 0
	for _, t := range tiers {
		n += len(t)
	}
	return n
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
