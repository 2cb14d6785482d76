package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "show what a .torrent file holds",
		ArgsUsage: "FILE.torrent",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("info: expected one .torrent file, got %d arguments", c.NArg())
			}
			m, err := metainfo.Load(c.Args().First())
			if err != nil {
				return err
			}
			printInfo(c.App.Writer, m)
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
	for _, f := range in.Files {
		fmt.Fprintf(w, "  %10s  %s\n", humanBytes(f.Length), filepath.Join(f.Path...))
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
