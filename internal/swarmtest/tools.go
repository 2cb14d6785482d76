package swarmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tool is a program the harness drives, named for its Debian package.
type Tool string

// The tools swarmtest knows how to find and install.
const (
	Opentracker Tool = "opentracker"
	Mktorrent   Tool = "mktorrent"
	Aria2c      Tool = "aria2"
	Libtorrent  Tool = "python3-libtorrent"
	// Transmission is transmission-daemon, which downloads; TransmissionRemote
	// (transmission-remote, from Debian's transmission-cli) drives it.
	Transmission       Tool = "transmission-daemon"
	TransmissionRemote Tool = "transmission-cli"
	// IPRoute2 is ip, which makes the network namespaces that tests put
	// transmission in (it never dials a peer at 127.0.0.0/8).
	IPRoute2 Tool = "iproute2"
	// QBittorrent is qbittorrent-nox, driven through its Web API (qbittorrent.go).
	QBittorrent Tool = "qbittorrent-nox"
	// RTorrent is rtorrent (libTorrent 0.13), run headless (rtorrent.go).
	RTorrent Tool = "rtorrent"
	// FFmpeg is ffmpeg and ffprobe: they make a video and play it over HTTP from
	// bitstorm serve.
	FFmpeg Tool = "ffmpeg"
	// Chromium is Debian's headless-capable browser at ChromiumPath: tests drive the
	// daemon's web page in it (chromedp).
	Chromium Tool = "chromium"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// AllTools lists every Tool.
var AllTools = []Tool{Opentracker, Mktorrent, Aria2c, Libtorrent, Transmission, TransmissionRemote, IPRoute2, QBittorrent, RTorrent, FFmpeg, Chromium}

// Python is the interpreter that has the libtorrent bindings (Debian's).
const Python = "/usr/bin/python3"

// commands names the program each Tool but Libtorrent (a Python module) puts on PATH.
var commands = map[Tool]string{
	Opentracker: "opentracker", Mktorrent: "mktorrent", Aria2c: "aria2c",
	Transmission: "transmission-daemon", TransmissionRemote: "transmission-remote", IPRoute2: "ip",
	QBittorrent: "qbittorrent-nox", RTorrent: "rtorrent", FFmpeg: "ffprobe", Chromium: "chromium",
}

// present reports whether t can be run.
func (t Tool) present() bool {
	if t == Libtorrent {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, Python, "-I", "-c", "import libtorrent").Run() == nil
	}
	name, ok := commands[t]
	return ok && onPath(name)
}

func onPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func missing(tools []Tool) []Tool {
	var out []Tool
	for _, t := range tools {
		if !t.present() {
			out = append(out, t)
		}
	}
	return out
}

// Ensure makes sure the tools are installed. When some are missing and this
// process runs as root, it installs their Debian packages (apt-get update
// once, then apt-get install -y); otherwise it returns an error that names
// the missing packages. With no arguments it ensures AllTools.
func Ensure(tools ...Tool) error {
	if len(tools) == 0 {
		tools = AllTools
	}
	miss := missing(tools)
	if len(miss) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("swarmtest: missing %s; install as root: apt-get install -y %s",
			joinTools(miss), joinTools(miss))
	}
	if err := install(miss); err != nil {
		return err
	}
	if miss := missing(tools); len(miss) > 0 {
		return fmt.Errorf("swarmtest: still missing after apt-get install: %s", joinTools(miss))
	}
	return nil
}

// Require is Ensure for tests: when a tool is still missing afterwards it
// fails the test if the environment has CI=true and skips it otherwise.
func Require(tb testing.TB, tools ...Tool) {
	tb.Helper()
	if err := Ensure(tools...); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
}

var (
	aptMu      sync.Mutex
	aptUpdated bool
)

// install runs apt-get for pkgs. A file lock keeps test binaries that run at
// the same time (go test runs packages in parallel) from racing for dpkg.
func install(pkgs []Tool) error {
	aptMu.Lock()
	defer aptMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	lock, err := os.OpenFile(os.TempDir()+"/swarmtest-apt.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("swarmtest: apt lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("swarmtest: apt lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	// Another process may have installed them while we waited for the lock.
	if pkgs = missing(pkgs); len(pkgs) == 0 {
		return nil
	}
	if !aptUpdated {
		if err := apt(ctx, "update"); err != nil {
			return err
		}
		aptUpdated = true
	}
	args := []string{"install", "-y"}
	for _, p := range pkgs {
		args = append(args, string(p))
	}
	return apt(ctx, args...)
}

func apt(ctx context.Context, args ...string) error {
	args = append([]string{"-o", "DPkg::Lock::Timeout=600", "-q"}, args...)
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		return fmt.Errorf("swarmtest: apt-get %s: %w\n%s", strings.Join(args, " "), err, strings.Join(lines, "\n"))
	}
	return nil
}

func joinTools(ts []Tool) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, " ")
}
