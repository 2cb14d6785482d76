package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// buildBinary builds this command once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bitstorm")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestDownloadCommand runs the binary against in-process peers: a complete download exits 0
// with the bytes on disk; bad input exits 1 with one line that says what is wrong.
func TestDownloadCommand(t *testing.T) {
	bin := buildBinary(t)
	tor := stagetest.NewTorrent(t, 40, "cli", 32<<10, 300_000, 77_777)
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	torrent, _ := writeTorrent(t, tor)
	out := t.TempDir()

	t.Run("complete", func(t *testing.T) {
		cmd := exec.Command(bin, "download", "--no-dht", "--out", out, "--port", "0", "--peer", peer.Addr().String(), torrent)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("download: %v\n%s", err, stderr.String())
		}
		var got []byte
		for _, f := range tor.Meta.Info.Files {
			b, err := os.ReadFile(filepath.Join(append([]string{out}, f.Path...)...))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, tor.Data) {
			t.Fatal("downloaded bytes differ from the payload")
		}
		if !strings.Contains(stderr.String(), "verified in") {
			t.Errorf("no completion line in stderr:\n%s", stderr.String())
		}
	})

	bad := filepath.Join(t.TempDir(), "bad.torrent")
	os.WriteFile(bad, []byte("d4:infod6:lengthi10e4:name1:x12:piece lengthi0e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"download", "/nonexistent.torrent"}, "no such file"},
		{"bad torrent", []string{"download", bad}, "piece length"},
		{"bad port", []string{"download", "--port", "70000", torrent}, "--port 70000"},
		{"bad peer", []string{"download", "--peer", "nohost", torrent}, `--peer "nohost"`},
		{"bad picker", []string{"download", "--picker", "best", torrent}, `--picker "best"`},
		{"bad listen", []string{"download", "--listen", "localhost:1", torrent}, `--listen "localhost:1"`},
		{"no upload slots", []string{"seed", "--upload-slots", "0", torrent}, "--upload-slots 0: must be at least 1"},
		{"zero download limit", []string{"download", "--download-limit", "0", torrent}, `--download-limit "0"`},
		{"garbage upload limit", []string{"seed", "--upload-limit", "fast", torrent}, `--upload-limit "fast"`},
		{"no peers", []string{"download", "--out", t.TempDir(), "--port", "0", "--no-peers-timeout", "1s", "--peer", "127.0.0.1:1", torrent}, "no peers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Never the DHT: its default bootstrap routers are public hosts.
			cmd := exec.Command(bin, slices.Concat(tc.args[:1], []string{"--no-dht"}, tc.args[1:])...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "bitstorm: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("last stderr line = %q, want a bitstorm: line containing %q", last, tc.want)
			}
		})
	}
}

// TestInterruptStopsCleanly sends SIGINT to a download in progress: the process exits
// promptly with status 130, the tracker hears stopped, and every piece the resume record
// lists is on disk.
func TestInterruptStopsCleanly(t *testing.T) {
	bin := buildBinary(t)
	tor := stagetest.NewTorrent(t, 41, "interrupt", 32<<10, 4<<20)
	slow := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	slow.Delay = 5 * time.Millisecond
	tr := stagetest.NewFakeTracker(t, slow.Addr())
	tor = tor.WithAnnounce(t, tr.URL())
	torrent, _ := writeTorrent(t, tor)
	out := t.TempDir()

	cmd := exec.Command(bin, "download", "--no-dht", "--out", out, "--port", "0", torrent)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if !slow.WaitServed(ctx, 40) {
		cmd.Process.Kill()
		t.Fatalf("the peer served %d blocks in 30s, want 40 before the interrupt; stderr:\n%s", slow.Served.Load(), stderr.String())
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 10s after SIGINT; stderr:\n%s", stderr.String())
	}
	t.Logf("exited %v after SIGINT", time.Since(sent).Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit = %v, want status 130; stderr:\n%s", err, stderr.String())
	}
	if ev := tr.Events(); len(ev) < 2 || ev[0] != "started" || ev[len(ev)-1] != "stopped" || slices.Contains(ev, "completed") {
		t.Errorf("tracker events = %q, want started ... stopped", ev)
	}
	rec, err := resume.Load(resume.Path(out, tor.Meta.InfoHash), &tor.Meta.Info, tor.Meta.InfoHash)
	if err != nil {
		t.Fatalf("no resume record after SIGINT: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(out, "interrupt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range tor.Meta.Info.NumPieces() {
		if !rec.Pieces.Has(i) {
			continue
		}
		n++
		off, size := tor.Meta.Info.PieceOffset(i), tor.Meta.Info.PieceSize(i)
		if !bytes.Equal(data[off:off+size], tor.Data[off:off+size]) {
			t.Fatalf("the record claims piece %d, which is not on disk", i)
		}
	}
	if n == 0 {
		t.Error("the record lists no piece although blocks were served")
	}
}

// TestListenLoopbackOnly: seed --listen 127.0.0.1 accepts peers on 127.0.0.1 and not on
// the IPv6 loopback, where it would listen without the flag.
func TestListenLoopbackOnly(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here to tell the difference: %v", err)
	}
	probe.Close()
	bin := buildBinary(t)
	tor := stagetest.NewTorrent(t, 42, "listen", 32<<10, 100_000)
	tr := stagetest.NewFakeTracker(t)
	tor = tor.WithAnnounce(t, tr.URL())
	torrent, data := writeTorrent(t, tor)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cmd := exec.Command(bin, "seed", "--no-dht", "--data", data, "--listen", "127.0.0.1", "--port", strconv.Itoa(port), torrent)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}()
	v4 := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", v4)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v\n%s", v4, err, stderr.String())
		}
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("[::1]:%d", port)); err == nil {
		c.Close()
		t.Errorf("seed --listen 127.0.0.1 accepted a connection on [::1]:%d", port)
	}
}
