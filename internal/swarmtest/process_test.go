package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid runs: a zombie waiting for its reaper counts as
// gone.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...; comm may hold spaces, so split after the last ')'.
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	fields := strings.Fields(rest)
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// waitGone polls until none of pids runs, for at most 5 s.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still run", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startFamily starts a shell that forks two sleeping grandchildren, and
// returns it with the pids of all three once the grandchildren run.
func startFamily(t *testing.T, ctx context.Context) (*Process, []int) {
	t.Helper()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	cmd := exec.Command("/bin/sh", "-c",
		`sleep 60 & a=$!; sleep 60 & b=$!; echo "$a $b" > "$1.tmp"; mv "$1.tmp" "$1"; wait`, "sh", pidFile)
	p, err := Start(ctx, cmd, filepath.Join(dir, "family.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			pids := []int{p.PID()}
			for _, f := range strings.Fields(string(b)) {
				n, _ := strconv.Atoi(f)
				pids = append(pids, n)
			}
			return p, pids
		}
		if time.Now().After(deadline) {
			t.Fatal("grandchildren did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopKillsProcessGroup(t *testing.T) {
	p, pids := startFamily(t, t.Context())
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d is not running before Stop", pid)
		}
	}
	if pgid, err := syscall.Getpgid(p.PID()); err != nil || pgid != p.PID() {
		t.Errorf("child's process group = %d, %v; want its own pid %d", pgid, err, p.PID())
	}
	if own := syscall.Getpgrp(); own == p.PID() {
		t.Errorf("child shares the test's process group %d", own)
	}
	p.Stop()
	waitGone(t, pids)
	if _, err := p.Wait(); err == nil {
		t.Error("Wait after Stop = nil error, want the kill")
	}
	p.Stop() // a second Stop is a no-op
}

func TestContextEndKillsProcessGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p, pids := startFamily(t, ctx)
	cancel()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("child still runs 5s after its context ended")
	}
	waitGone(t, pids)
}

func TestWaitReportsExitAndUsage(t *testing.T) {
	dir := t.TempDir()
	// Some CPU work, a line on stderr, then exit 3.
	cmd := exec.Command("/bin/sh", "-c", `i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo boom >&2; exit 3`)
	p, err := Start(t.Context(), cmd, filepath.Join(dir, "x.log"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Wait error = %v, want an *exec.ExitError", err)
	}
	if !strings.Contains(err.Error(), "boom") {
		t.Errorf("Wait error %q does not quote the log's last line", err)
	}
	if res.ExitCode != 3 {
		t.Errorf("ExitCode = %d, want 3", res.ExitCode)
	}
	if res.Wall <= 0 || res.CPU() <= 0 || res.MaxRSS <= 0 {
		t.Errorf("Result = %+v, want positive wall, CPU and peak RSS", res)
	}
	if got := p.Tail(5); got != "boom" {
		t.Errorf("Tail = %q, want %q", got, "boom")
	}
}

func TestStartRemovesProxyVariables(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", "env")
	cmd.Env = []string{"HTTP_PROXY=http://x", "https_proxy=http://y", "KEEP=1"}
	p, err := Start(t.Context(), cmd, filepath.Join(dir, "env.log"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(p.LogPath)
	if strings.Contains(strings.ToLower(string(out)), "proxy") || !strings.Contains(string(out), "KEEP=1") {
		t.Errorf("child environment:\n%s", out)
	}
}

// If this process dies without Stop, the watchdog in the child's group still
// kills the group. The test runs itself as that dying parent.
func TestWatchdogKillsGroupWhenParentDies(t *testing.T) {
	if os.Getenv("SWARMTEST_ORPHAN_PARENT") == "1" {
		// The parent: start a family, report its pids, die without Stop.
		p, pids := startFamily(t, context.Background())
		_ = p
		fmt.Println("pids", strings.Trim(fmt.Sprint(pids), "[]"))
		os.Exit(0)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWatchdogKillsGroupWhenParentDies$")
	cmd.Env = append(os.Environ(), "SWARMTEST_ORPHAN_PARENT=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parent: %v: %s", err, out)
	}
	var pids []int
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "pids "); ok {
			for _, f := range strings.Fields(rest) {
				n, _ := strconv.Atoi(f)
				pids = append(pids, n)
			}
		}
	}
	if len(pids) != 3 {
		t.Fatalf("parent printed %q, want three pids", out)
	}
	waitGone(t, pids)
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d", port)
	}
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	l.Close()
}
