package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/stages/sim"
)

func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "simulate a swarm in virtual time with BitStorm's scheduler, pickers and choker",
		Description: `Runs a swarm of in-process peers, each with BitStorm's own Scheduler, piece picker
and choker, over simulated links: an upload rate per peer, a latency per link, 16 KiB
blocks. It prints each peer's completion time and a summary; --compare runs every picker
with 2, 4 and 8 upload slots on the same seed and prints a markdown table. The same
flags and seed always give the same output.

--upload takes bytes/s with a K, M or G suffix (powers of 1024), or MIN-MAX to draw each
peer's rate uniformly from a range: --upload 1M-4M.`,
		Flags: []cli.Flag{
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random `SEED`; the same seed gives the same result"},
			&cli.IntFlag{Name: "peers", Value: 50, Usage: "leechers at the start"},
			&cli.IntFlag{Name: "seeders", Value: 1, Usage: "initial seeders, holding every piece"},
			&cli.IntFlag{Name: "pieces", Value: 500, Usage: "pieces in the torrent"},
			&cli.StringFlag{Name: "piece-length", Value: "256K", Usage: "piece length `N`: bytes, or with a K or M suffix"},
			&cli.StringFlag{Name: "upload", Value: "1M-4M", Usage: "upload `RATE` of each peer in bytes/s, or MIN-MAX"},
			&cli.DurationFlag{Name: "latency", Value: 50 * time.Millisecond, Usage: "mean one-way latency of a link"},
			&cli.Float64Flag{Name: "availability", Usage: "fraction `F` of the pieces each initial leecher starts with, at random"},
			&cli.Float64Flag{Name: "churn", Usage: "leechers replaced by new empty ones, per minute, while the first ones download"},
			&cli.DurationFlag{Name: "seeder-leave", Usage: "the initial seeders leave after `D` (0: not a limit)"},
			&cli.Float64Flag{Name: "seeder-leave-copies", Usage: "an initial seeder leaves once it has uploaded `N` copies (0: not a limit)"},
			&cli.DurationFlag{Name: "seed-time", Usage: "a finished leecher seeds for `D`, then leaves (0: until the end)"},
			&cli.StringFlag{Name: "picker", Value: "rarest", Usage: "piece picker: rarest, sequential or random"},
			&cli.IntFlag{Name: "slots", Value: 4, Usage: "upload slots of each peer's choker, the optimistic one included"},
			&cli.IntFlag{Name: "requests", Value: 16, Usage: "requests outstanding per link"},
			&cli.IntFlag{Name: "max-peers", Value: 50, Usage: "connections per peer"},
			&cli.DurationFlag{Name: "max-time", Value: time.Hour, Usage: "stop after `D` of virtual time"},
			&cli.BoolFlag{Name: "compare", Usage: "run every picker with 2, 4 and 8 slots and print a markdown table"},
		},
		Action: simAction,
	}
}

// simFlags names the flag of each sim.Config field, for errors.
var simFlags = map[string]string{
	"Peers": "peers", "Seeders": "seeders", "Pieces": "pieces", "PieceLength": "piece-length",
	"UploadRate": "upload", "Latency": "latency", "InitialAvailability": "availability",
	"Churn": "churn", "SeederLeaveAfter": "seeder-leave", "SeederLeaveCopies": "seeder-leave-copies",
	"SeedTime": "seed-time", "Picker": "picker",
	"UploadSlots": "slots", "Requests": "requests", "MaxPeers": "max-peers", "MaxTime": "max-time",
}

func simAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return fmt.Errorf("sim: unexpected arguments %q", c.Args().Slice())
	}
	cfg := sim.Config{
		Seed: c.Uint64("seed"), Peers: c.Int("peers"), Seeders: c.Int("seeders"), Pieces: c.Int("pieces"),
		Latency: c.Duration("latency"), InitialAvailability: c.Float64("availability"),
		Churn: c.Float64("churn"), SeederLeaveAfter: c.Duration("seeder-leave"),
		SeederLeaveCopies: c.Float64("seeder-leave-copies"), SeedTime: c.Duration("seed-time"),
		Picker: c.String("picker"), UploadSlots: c.Int("slots"), Requests: c.Int("requests"),
		MaxPeers: c.Int("max-peers"), MaxTime: c.Duration("max-time"),
	}
	var err error
	if cfg.PieceLength, err = parsePieceLength(c.String("piece-length")); err != nil {
		return fmt.Errorf("sim: --piece-length %q: %w", c.String("piece-length"), err)
	}
	if cfg.UploadRate, cfg.UploadRateMax, err = parseRateRange(c.String("upload")); err != nil {
		return fmt.Errorf("sim: --upload %q: %w", c.String("upload"), err)
	}
	// Zero means a default in sim.Config; here every flag has its default already, so a
	// zero the user typed is an error, not a default.
	for _, z := range []struct {
		flag string
		v    int
	}{{"pieces", cfg.Pieces}, {"slots", cfg.UploadSlots}, {"requests", cfg.Requests}, {"max-peers", cfg.MaxPeers}} {
		if z.v == 0 {
			return fmt.Errorf("sim: --%s 0: want at least 1", z.flag)
		}
	}
	if cfg.MaxTime == 0 {
		return errors.New("sim: --max-time 0: want a positive duration")
	}

	start := time.Now()
	if !c.Bool("compare") {
		r, err := sim.Run(c.Context, cfg)
		if err != nil {
			return simError(err)
		}
		printSimPeers(c.App.Writer, r)
		printSimSummary(c.App.Writer, r)
		fmt.Fprintf(c.App.ErrWriter, "sim: %d events in %s\n", r.Events, time.Since(start).Round(time.Millisecond))
		return nil
	}
	var cfgs []sim.Config
	for _, picker := range sim.Pickers {
		for _, slots := range []int{2, 4, 8} {
			cfg.Picker, cfg.UploadSlots = picker, slots
			cfgs = append(cfgs, cfg)
		}
	}
	results, err := runSims(c, cfgs)
	if err != nil {
		return simError(err)
	}
	printSimCompare(c.App.Writer, results)
	fmt.Fprintf(c.App.ErrWriter, "sim: %d runs in %s\n", len(results), time.Since(start).Round(time.Millisecond))
	return nil
}

// simError names the flag behind a bad sim.Config field.
func simError(err error) error {
	var ce *sim.ConfigError
	if errors.As(err, &ce) {
		if flag, ok := simFlags[ce.Field]; ok {
			v := fmt.Sprint(ce.Value)
			if s, ok := ce.Value.(string); ok {
				v = strconv.Quote(s)
			}
			return fmt.Errorf("sim: --%s %s: want %s", flag, v, ce.Want)
		}
	}
	return err
}

// runSims runs cfgs on all cores; each run is deterministic on its own.
func runSims(c *cli.Context, cfgs []sim.Config) ([]*sim.Result, error) {
	results := make([]*sim.Result, len(cfgs))
	errs := make([]error, len(cfgs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = sim.Run(c.Context, cfg)
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// parseRateRange parses --upload: one rate, or MIN-MAX.
func parseRateRange(s string) (lo, hi int64, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parseRate(a); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = parseRate(b); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, errors.New("MIN is above MAX")
	}
	return lo, hi, nil
}

func parseRate(s string) (int64, error) {
	n, err := parsePieceLength(s) // the same sizes: bytes with a K, M or G suffix
	if err == nil && n == 0 {     // "auto"
		err = errors.New("want a positive number of bytes, or one with a K, M or G suffix")
	}
	return n, err
}

func printSimPeers(w io.Writer, r *sim.Result) {
	fmt.Fprintln(w, "| peer | role | upload | joined | completion | downloaded | uploaded |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|")
	for _, p := range r.Peers {
		role, done := "leecher", simDuration(p.Time)
		switch {
		case p.Seeder:
			role, done = "seeder", "-"
		case !p.Initial:
			role = "newcomer"
		}
		switch p.State {
		case sim.Left:
			done = fmt.Sprintf("left at %s", simDuration(p.Gone))
		case sim.Unfinished:
			done = "did not finish"
		}
		fmt.Fprintf(w, "| %d | %s | %s/s | %s | %s | %s | %s |\n", p.ID, role, humanBytes(p.UploadRate),
			simDuration(p.Joined), done, humanBytes(p.Downloaded), humanBytes(p.Uploaded))
	}
}

func printSimSummary(w io.Writer, r *sim.Result) {
	fmt.Fprintf(w, "\n%d of %d leechers finished (%d left before finishing); completion mean %s, median %s, p90 %s, max %s; "+
		"seeders uploaded %s (%.2f copies); %s of virtual time\n",
		r.Finished, r.Finished+r.Unfinished, r.Left, simMean(r), simDuration(r.Median), simDuration(r.P90),
		simDuration(r.Max), humanBytes(r.SeederUploaded), r.SeederCopies(), simDuration(r.End))
}

func printSimCompare(w io.Writer, rs []*sim.Result) {
	fmt.Fprintln(w, "| picker | slots | finished | left | mean | median | p90 | max | seeder upload |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %d/%d | %d | %s | %s | %s | %s | %.2f copies |\n",
			r.Config.Picker, r.Config.UploadSlots, r.Finished, r.Finished+r.Unfinished, r.Left,
			simMean(r), simDuration(r.Median), simDuration(r.P90), simDuration(r.Max), r.SeederCopies())
	}
}

// simDuration rounds a virtual time to a tenth of a second; Never reads "dnf" (did not finish).
func simDuration(d time.Duration) string {
	if d == sim.Never {
		return "dnf"
	}
	return d.Round(100 * time.Millisecond).String()
}

// simMean is the mean completion time, over the leechers that finished.
func simMean(r *sim.Result) string {
	if r.Finished == 0 {
		return "-"
	}
	return simDuration(r.Mean)
}
