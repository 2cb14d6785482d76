package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/create"
	"github.com/bitstorm/bitstorm/internal/metainfo"
)

func createCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "make a .torrent from a file or a directory",
		ArgsUsage: "PATH",
		Description: `Hashes PATH and writes a .torrent named after it. A directory becomes a
multi-file torrent of every file below it, sorted by path bytewise as mktorrent does,
symbolic links followed; for the same piece length the info hash is mktorrent's.

Each --tracker is a tier of its own (BEP 12); commas put several URLs in one tier:
  --tracker http://a/announce,http://b/announce --tracker udp://c:6969
makes two tiers, [a b] then [c]; the first URL is also "announce".
--web-seed, repeatable or comma-separated, adds BEP 19 web seeds (url-list).
--piece-length takes bytes or a K/M suffix (256K, 1M: powers of 1024), a power of two
from 16K; by default it is picked for 1000-2000 pieces (16K to 16M).

Without --out the torrent is written to ./<base name of PATH>.torrent. An existing file
is never overwritten unless --force is given.`,
		// --tracker and --web-seed have no short alias: urfave/cli v2 refuses a command
		// line that mixes two forms of one flag, which a repeatable flag invites.
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the torrent to `FILE` (default: ./<base name of PATH>.torrent)"},
			&cli.StringFlag{Name: "piece-length", Aliases: []string{"l"}, Value: "auto", Usage: "piece length `N`: bytes, or with a K or M suffix (256K, 1M)"},
			&cli.GenericFlag{Name: "tracker", Value: &trackerTiers{},
				Usage: "announce `URL`; each --tracker is a tier, commas put several URLs in one tier; repeatable"},
			&cli.BoolFlag{Name: "private", Aliases: []string{"p"}, Usage: "set the private flag (BEP 27): peers from the trackers only"},
			&cli.StringFlag{Name: "comment", Aliases: []string{"c"}, Usage: "add a comment `TEXT`"},
			&cli.GenericFlag{Name: "web-seed", Value: &webSeedList{},
				Usage: "add a web seed `URL` (BEP 19); repeatable or comma-separated"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "overwrite the output file if it exists"},
		},
		Action: createAction,
	}
}

func createAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("create: expected one file or directory, got %d arguments", c.NArg())
	}
	src := c.Args().First()
	pieceLen, err := parsePieceLength(c.String("piece-length"))
	if err != nil {
		return fmt.Errorf("create: --piece-length %q: %w", c.String("piece-length"), err)
	}
	out := c.String("out")
	if out == "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		out = filepath.Base(abs) + ".torrent"
	}
	force := c.Bool("force")
	// Checked again when the file is created; this saves hashing for nothing.
	if _, err := os.Lstat(out); err == nil && !force {
		return fmt.Errorf("create: %s already exists (--force overwrites it)", out)
	}
	data, err := create.Build(c.Context, src, create.Options{
		PieceLength: pieceLen,
		Trackers:    c.Generic("tracker").(*trackerTiers).tiers,
		Private:     c.Bool("private"),
		Comment:     c.String("comment"),
		WebSeeds:    c.Generic("web-seed").(*webSeedList).urls,
	})
	if err != nil {
		return err
	}
	m, err := metainfo.Parse(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("create: the torrent made does not load: %w", err)
	}
	if err := writeTorrentFile(out, data, force); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "info hash: %s\nwrote:     %s\n", m.HexHash(), out)
	return nil
}

// parsePieceLength reads "auto" (or nothing) as 0, else a byte count with an optional
// K, M or G suffix, in powers of 1024 ("KiB" and "KB" mean the same: piece lengths are
// powers of two). create.Build checks the value.
func parsePieceLength(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "auto") {
		return 0, nil
	}
	num, shift := strings.ToUpper(s), 0
	for _, u := range []struct {
		suffix string
		shift  int
	}{{"KIB", 10}, {"KB", 10}, {"K", 10}, {"MIB", 20}, {"MB", 20}, {"M", 20}, {"GIB", 30}, {"GB", 30}, {"G", 30}, {"B", 0}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive number of bytes, or one with a K, M or G suffix")
	}
	if n > math.MaxInt64>>shift {
		return 0, errors.New("too large")
	}
	return n << shift, nil
}

// trackerTiers is the value of --tracker: each use adds a tier (BEP 12), and commas
// separate the URLs of that tier.
type trackerTiers struct{ tiers [][]string }

// Set adds one tier.
func (t *trackerTiers) Set(v string) error {
	tier, err := splitURLs(v)
	if err != nil {
		return err
	}
	t.tiers = append(t.tiers, tier)
	return nil
}

func (t *trackerTiers) String() string {
	s := make([]string, len(t.tiers))
	for i, tier := range t.tiers {
		s[i] = strings.Join(tier, ",")
	}
	return strings.Join(s, " ")
}

// webSeedList is the value of --web-seed: each use adds one or more comma-separated URLs.
type webSeedList struct{ urls []string }

// Set adds the URLs of v.
func (w *webSeedList) Set(v string) error {
	urls, err := splitURLs(v)
	if err != nil {
		return err
	}
	w.urls = append(w.urls, urls...)
	return nil
}

func (w *webSeedList) String() string { return strings.Join(w.urls, ",") }

// splitURLs splits a comma-separated list; create.Build validates each URL.
func splitURLs(v string) ([]string, error) {
	urls := strings.Split(v, ",")
	for i, u := range urls {
		urls[i] = strings.TrimSpace(u)
		if urls[i] == "" {
			return nil, errors.New("empty URL")
		}
	}
	return urls, nil
}

// writeTorrentFile writes data to path. Without force it fails if path exists, checked
// as the file is created (O_EXCL); with force it replaces path by renaming a complete
// temporary file over it, so a failed write never leaves a truncated torrent.
func writeTorrentFile(path string, data []byte, force bool) (err error) {
	var f *os.File
	if force {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create: %s already exists (--force overwrites it)", path)
	} else if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("create: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if force {
		if err := os.Chmod(f.Name(), 0o644); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if err := os.Rename(f.Name(), path); err != nil {
			return fmt.Errorf("create: %w", err)
		}
	}
	return nil
}
