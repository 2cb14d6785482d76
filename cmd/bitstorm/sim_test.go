package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runSimCommand runs "bitstorm sim args..." in-process and returns what it printed.
func runSimCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name:           "bitstorm",
		Writer:         &out,
		ErrWriter:      &errOut,
		Commands:       []*cli.Command{simCommand()},
		ExitErrHandler: func(*cli.Context, error) {}, // never os.Exit in a test
	}
	err := app.Run(append([]string{"bitstorm", "sim"}, args...))
	return out.String(), err
}

// simSmall is a swarm that simulates in milliseconds.
var simSmall = []string{"--peers", "8", "--pieces", "40", "--piece-length", "64K", "--upload", "512K-2M", "--latency", "20ms"}

func TestSimCompare(t *testing.T) {
	out, err := runSimCommand(t, append(simSmall, "--compare", "--seeder-leave", "30s")...)
	if err != nil {
		t.Fatalf("sim --compare: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2+9 || !strings.HasPrefix(lines[0], "| picker | slots |") {
		t.Fatalf("want a header, a rule and 9 rows (3 pickers x 3 slot counts), got:\n%s", out)
	}
	rows := map[string]int{}
	for _, l := range lines[2:] {
		cells := strings.Split(strings.Trim(l, "| "), " | ")
		if len(cells) != 9 {
			t.Fatalf("row %q: %d cells, want 9", l, len(cells))
		}
		rows[cells[0]]++
		for i, name := range []string{"mean", "median", "p90", "max"} {
			if v := cells[4+i]; v == "" || v == "0s" {
				t.Errorf("row %q: %s is %q, want a completion time", l, name, v)
			}
		}
	}
	for _, picker := range []string{"rarest", "sequential", "random"} {
		if rows[picker] != 3 {
			t.Errorf("%d rows for %s, want 3 (2, 4 and 8 slots)", rows[picker], picker)
		}
	}
	// The same flags give the same table.
	if again, _ := runSimCommand(t, append(simSmall, "--compare", "--seeder-leave", "30s")...); again != out {
		t.Errorf("a second run printed another table:\n%s\nthen:\n%s", out, again)
	}
}

func TestSimPeers(t *testing.T) {
	out, err := runSimCommand(t, simSmall...)
	if err != nil {
		t.Fatalf("sim: %v\n%s", err, out)
	}
	// A header, a rule, the seeder and 8 leechers, a blank line and the summary.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2+1+8+2 || !strings.Contains(lines[2], "| seeder |") ||
		!strings.HasPrefix(lines[len(lines)-1], "8 of 8 leechers finished") {
		t.Fatalf("want a row per peer and a summary where all 8 finished, got:\n%s", out)
	}
}

// TestSimBadFlags runs the binary: a bad value exits 1 with one line naming the flag.
func TestSimBadFlags(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--picker", "best"}, `sim: --picker "best": want rarest, sequential or random`},
		{[]string{"--upload", "4M-1M"}, `sim: --upload "4M-1M": MIN is above MAX`},
		{[]string{"--upload", "fast"}, `sim: --upload "fast"`},
		{[]string{"--peers", "0"}, "sim: --peers 0: want at least 1"},
		{[]string{"--availability", "2"}, "sim: --availability 2: want a fraction in [0, 1]"},
		{[]string{"--slots", "0"}, "sim: --slots 0: want at least 1"},
		{[]string{"--piece-length", "0"}, `sim: --piece-length "0"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"sim"}, tc.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			if got := strings.TrimSpace(stderr.String()); !strings.Contains(got, tc.want) || strings.Count(got, "\n") != 0 {
				t.Errorf("stderr %q, want one line with %q", got, tc.want)
			}
		})
	}
}
