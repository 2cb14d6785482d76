package swarmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// RunAria2c downloads torrentPath into outDir with aria2c and returns once it
// has exited: after the download and its final announce, since it does not
// seed (--seed-time=0). DHT, LPD and peer exchange are off, it listens on
// 127.0.0.1 at a free port, and it reads no configuration file. Its log goes
// to outDir+".log".
//
// aria2c spends about 3 s in fixed ticks (before the first announce, before
// connecting, before the final announce): compare throughput on large
// payloads only.
func RunAria2c(ctx context.Context, torrentPath, outDir string) (Result, error) {
	port, err := FreePort()
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("swarmtest: aria2c: %w", err)
	}
	cmd := exec.Command("aria2c",
		"--no-conf=true",
		"--dir="+outDir,
		"--seed-time=0",
		"--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false",
		"--enable-peer-exchange=false",
		"--summary-interval=0",
		"--listen-port="+strconv.Itoa(port),
		"--interface=127.0.0.1",
		"--disable-ipv6=true",
		torrentPath)
	p, err := start(ctx, "aria2c", cmd, filepath.Clean(outDir)+".log", nil)
	if err != nil {
		return Result{}, err
	}
	return p.Wait()
}
