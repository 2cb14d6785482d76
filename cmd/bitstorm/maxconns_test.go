package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestDownloadMaxConns: two torrents downloaded in one process under --max-conns 1 from
// one seeder session both complete: the second torrent's peer connects once the first
// one's connection ends. --max-conns 0 is refused with one line naming it.
func TestDownloadMaxConns(t *testing.T) {
	bin := buildBinary(t)
	tors := []*stagetest.Torrent{
		stagetest.NewTorrent(t, 97, "conns-one", 16<<10, 200_000),
		stagetest.NewTorrent(t, 98, "conns-two", 16<<10, 150_000),
	}
	seeder := seedSession(t, tors...)
	one, _ := writeTorrent(t, tors[0])
	two, _ := writeTorrent(t, tors[1])
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := func(conns string) (stdout, stderr *bytes.Buffer, out string, err error) {
		out = t.TempDir()
		cmd := exec.CommandContext(ctx, bin, "download", "--no-dht", "--json", "--out", out, "--listen", "127.0.0.1", "--port", "0",
			"--max-conns", conns, "--peer", seeder.String(), one, two)
		stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		return stdout, stderr, out, cmd.Run()
	}

	_, stderr, _, err := run("0")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("--max-conns 0: exit = %v, want status 1; stderr:\n%s", err, stderr)
	}
	if line := strings.TrimRight(stderr.String(), "\n"); strings.Contains(line, "\n") || !strings.Contains(line, "--max-conns 0: must be at least 1") {
		t.Errorf("--max-conns 0: stderr = %q, want one line naming the flag", line)
	}

	stdout, stderr, out, err := run("1")
	if err != nil {
		t.Fatalf("download --max-conns 1: %v (context: %v)\n%s", err, ctx.Err(), stderr)
	}
	evs := parseJSONLines(t, stdout.Bytes())
	for _, tor := range tors {
		checkOnDisk(t, out, tor)
		checkJSONDownload(t, evs, tor)
	}
}

// TestDownloadMaxActive: three torrents under --max-active-downloads 1 download one after
// another and all complete (the command waits for a queued torrent through its turn, not
// only for a run: a queued one has none yet); the queue's order is TestSessionQueueDownloads'.
// A negative value is refused with one line naming the flag.
func TestDownloadMaxActive(t *testing.T) {
	bin := buildBinary(t)
	tors := []*stagetest.Torrent{
		stagetest.NewTorrent(t, 101, "active-one", 16<<10, 120_000),
		stagetest.NewTorrent(t, 102, "active-two", 16<<10, 100_000),
		stagetest.NewTorrent(t, 103, "active-three", 16<<10, 80_000),
	}
	seeder := seedSession(t, tors...)
	var args []string
	for _, tor := range tors {
		torrent, _ := writeTorrent(t, tor)
		args = append(args, torrent)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := func(active string) (stdout, stderr *bytes.Buffer, out string, err error) {
		out = t.TempDir()
		cmd := exec.CommandContext(ctx, bin, append([]string{"download", "--no-dht", "--json", "--out", out, "--listen", "127.0.0.1",
			"--port", "0", "--max-active-downloads", active, "--peer", seeder.String()}, args...)...)
		stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		return stdout, stderr, out, cmd.Run()
	}

	_, stderr, _, err := run("-1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "--max-active-downloads -1: must not be negative") {
		t.Errorf("--max-active-downloads -1: exit %v, stderr %q; want status 1 naming the flag", err, stderr)
	}

	stdout, stderr, out, err := run("1")
	if err != nil {
		t.Fatalf("download --max-active-downloads 1: %v (context: %v)\n%s", err, ctx.Err(), stderr)
	}
	evs := parseJSONLines(t, stdout.Bytes())
	for _, tor := range tors {
		checkOnDisk(t, out, tor)
		checkJSONDownload(t, evs, tor)
	}
}
