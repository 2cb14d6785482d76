package main

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
)

// Selective download: --select names the files to download by number, --exclude leaves
// out those whose path matches a pattern. The files left out are not created; the bytes
// of theirs that pieces shared with selected files hold are kept in OUT/.bitstorm/ and
// used once they are selected. A run without these flags goes on with the last selection.

// selectFlags are download's (and seed's) flags of a selective download.
func selectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "select", Usage: "download only the files numbered `N,M-K` (from 1, in the order bitstorm info lists them; as aria2's --select-file); the others are not created. Without --select or --exclude, the last run's selection holds"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "do not download the files whose path in the torrent matches `GLOB` (path.Match on the path below the torrent's directory, '/'-separated; a pattern without '/' matches the file's name in any directory too); repeatable"},
	}
}

// fileChoice is the --select and --exclude flags, parsed.
type fileChoice struct {
	cmd    string
	spec   string   // --select as given; "" without
	ranges [][2]int // from 1, inclusive
	globs  []string
}

// parseFileChoice checks the flags' syntax; nil without either flag.
func parseFileChoice(c *cli.Context) (*fileChoice, error) {
	fc := &fileChoice{cmd: c.Command.Name, globs: c.StringSlice("exclude")}
	if !c.IsSet("select") && len(fc.globs) == 0 {
		return nil, nil
	}
	if c.IsSet("select") {
		fc.spec = c.String("select")
		if strings.TrimSpace(fc.spec) == "" {
			return nil, fmt.Errorf("%s: --select %q: names no file; want file numbers such as 2,4-5", fc.cmd, fc.spec)
		}
		for _, part := range strings.Split(fc.spec, ",") {
			r, err := parseRange(strings.TrimSpace(part))
			if err != nil {
				return nil, fmt.Errorf("%s: --select %q: %q: %w", fc.cmd, fc.spec, part, err)
			}
			fc.ranges = append(fc.ranges, r)
		}
	}
	for _, g := range fc.globs {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("%s: --exclude %q: %w", fc.cmd, g, err)
		}
	}
	return fc, nil
}

// parseRange parses "N" or "N-M", file numbers from 1.
func parseRange(s string) ([2]int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 {
		return [2]int{}, fmt.Errorf("malformed: want a file number from 1, or a range N-M")
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil || b < a {
			return [2]int{}, fmt.Errorf("malformed range: want N-M with N <= M")
		}
	}
	return [2]int{a, b}, nil
}

// priorities is the choice for the files of info: an error names a number out of range, a
// pattern that matches no file, or a choice that leaves no file.
func (fc *fileChoice) priorities(info *metainfo.Info) ([]pipeline.FilePriority, error) {
	n := len(info.Files)
	prios := make([]pipeline.FilePriority, n)
	if fc.ranges != nil {
		for i := range prios {
			prios[i] = pipeline.FileSkip
		}
		for _, r := range fc.ranges {
			if r[1] > n {
				return nil, fmt.Errorf("%s: --select %q: file %d out of range: the torrent has %d files (bitstorm info lists them)", fc.cmd, fc.spec, r[1], n)
			}
			for k := r[0]; k <= r[1]; k++ {
				prios[k-1] = pipeline.FileNormal
			}
		}
	}
	for _, g := range fc.globs {
		matched := false
		for i, f := range info.Files {
			if f.OnDisk() && matchFile(g, info, f) {
				prios[i], matched = pipeline.FileSkip, true
			}
		}
		if !matched {
			return nil, fmt.Errorf("%s: --exclude %q: matches no file of the torrent", fc.cmd, g)
		}
	}
	for i, f := range info.Files {
		if f.OnDisk() && prios[i] != pipeline.FileSkip {
			return prios, nil
		}
	}
	return nil, fmt.Errorf("%s: %s: no file left to download", fc.cmd, fc.describe())
}

func (fc *fileChoice) describe() string {
	var parts []string
	if fc.spec != "" {
		parts = append(parts, fmt.Sprintf("--select %q", fc.spec))
	}
	for _, g := range fc.globs {
		parts = append(parts, fmt.Sprintf("--exclude %q", g))
	}
	return strings.Join(parts, " ")
}

// matchFile reports whether glob matches f's path below the torrent's directory (a
// single-file torrent's file is its name), or, for a glob without '/', its name.
func matchFile(glob string, info *metainfo.Info, f metainfo.File) bool {
	inner := f.Path
	if info.MultiFile && len(inner) > 1 {
		inner = inner[1:]
	}
	if ok, _ := path.Match(glob, strings.Join(inner, "/")); ok {
		return true
	}
	if !strings.Contains(glob, "/") {
		ok, _ := path.Match(glob, inner[len(inner)-1])
		return ok
	}
	return false
}

// fileOptions are the pipeline options of --select and --exclude: none without them.
// The choice is checked against the torrent once its files are known, before any is
// created (a magnet link's, after its metadata).
func fileOptions(c *cli.Context) []pipeline.Option {
	fc, err := parseFileChoice(c)
	if err != nil || fc == nil { // a syntax error is setup's (checkFileFlags)
		return nil
	}
	return []pipeline.Option{pipeline.WithFileSelection(fc.priorities)}
}

// checkFileFlags checks the syntax of --select and --exclude, before anything starts.
func checkFileFlags(c *cli.Context) error {
	_, err := parseFileChoice(c)
	return err
}
