package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "recheck the data on disk: which pieces and files are complete; exits 0 when all are (all those of the selected files, after download --select or --exclude)",
		ArgsUsage: "FILE.torrent",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Value: ".",
				Usage: "`DIR` the torrent's files live in: what download --out was"},
		},
		Action: verifyAction,
	}
}

func verifyAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("verify: expected one .torrent file, got %d arguments", c.NArg())
	}
	m, err := metainfo.Load(c.Args().First())
	if err != nil {
		return err
	}
	info := &m.Info
	// Read-only: verifying must not create or extend the files it reports on.
	files, err := resume.OpenReader(c.String("data"), info)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer files.Close()
	// A selective download: the files it selected, and the bytes of the others that its
	// pieces hold, kept in the part file (select.go).
	prios, err := pipeline.SavedFilePriorities(c.String("data"), m)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if err := files.UsePart(resume.PartPath(c.String("data"), m.InfoHash)); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	r := &countingReader{r: files}

	var onPiece func(done, total int)
	if isTerminal(os.Stderr) {
		status := newLineWriter(os.Stderr)
		defer status.clear()
		var last time.Time
		onPiece = func(done, total int) {
			if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || done == total {
				last = now
				status.status(fmt.Sprintf("verifying: %d/%d pieces (%.0f%%)", done, total, 100*float64(done)/float64(total)))
			}
		}
	}
	start := time.Now()
	have, err := resume.Recheck(c.Context, info, r, runtime.GOMAXPROCS(0), onPiece)
	elapsed := time.Since(start)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	printVerify(c.App.Writer, info, have, files.Missing, prios, r.n.Load(), elapsed)
	if prios != nil {
		want := pipeline.WantedPieces(info, prios)
		n, got := want.Count(), countBoth(want, have)
		if got < n {
			return fmt.Errorf("verify: %d of %d pieces of the selected files incomplete", n-got, n)
		}
		return nil
	}
	if n, got := info.NumPieces(), have.Count(); got < n {
		return fmt.Errorf("verify: %d of %d pieces incomplete", n-got, n)
	}
	return nil
}

// countBoth is the number of pieces in both a and b.
func countBoth(a, b wire.Bitfield) int {
	n := 0
	for i := range len(a) * 8 {
		if a.Has(i) && b.Has(i) {
			n++
		}
	}
	return n
}

// printVerify writes the report: pieces complete, the state of each file, and the rate.
// A file is complete only when every piece it overlaps is, so an intact file next to a
// damaged one is incomplete if they share a piece. prios, when not nil, is the selection
// of a selective download: its line, and the files it left out said to be.
func printVerify(w io.Writer, info *metainfo.Info, have wire.Bitfield, missing func(int) bool, prios []pipeline.FilePriority, read int64, elapsed time.Duration) {
	fmt.Fprintf(w, "pieces: %d/%d complete\n", have.Count(), info.NumPieces())
	if prios != nil {
		want := pipeline.WantedPieces(info, prios)
		selected, files := 0, 0
		for i, f := range info.Files {
			if f.OnDisk() {
				files++
				if prios[i] != pipeline.FileSkip {
					selected++
				}
			}
		}
		fmt.Fprintf(w, "selected: %d of %d files, their pieces %d/%d complete\n", selected, files, countBoth(want, have), want.Count())
	}
	for i, f := range info.Files {
		state := "complete"
		switch {
		case missing(i):
			state = "missing"
		case f.Length > 0:
			first := int(f.Offset / info.PieceLength)
			last := int((f.Offset + f.Length - 1) / info.PieceLength)
			n := 0
			for p := first; p <= last; p++ {
				if have.Has(p) {
					n++
				}
			}
			if n < last-first+1 {
				state = fmt.Sprintf("incomplete (%d of %d pieces)", n, last-first+1)
			}
		}
		if prios != nil && prios[i] == pipeline.FileSkip && f.OnDisk() {
			state = "not selected, " + state
			if missing(i) {
				state = "not selected"
			}
		}
		fmt.Fprintf(w, "  %s: %s\n", filepath.Join(f.Path...), state)
	}
	rate := float64(read) / (1 << 20) / max(elapsed.Seconds(), 1e-9)
	round := time.Millisecond
	if elapsed < 100*time.Millisecond {
		round = time.Microsecond
	}
	fmt.Fprintf(w, "recheck: %.1f MiB/s (%s read in %s)\n", rate, humanBytes(read), elapsed.Round(round))
}

// countingReader counts the bytes read through it, for the recheck rate.
type countingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}
