package swarmtest

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

//go:embed ltdht.py
var libtorrentDHTScript string

// LibtorrentDHTArgs writes ltdht.py into dir and returns the command line that runs it
// in mode (nodes, seed or leech; see the script's doc) with args: libtorrent sessions as
// DHT nodes, seeders and leechers on private addresses, for a test to run inside a
// network namespace of its own (behind `ip netns exec NAME`).
func LibtorrentDHTArgs(dir, mode string, args ...string) ([]string, error) {
	script := filepath.Join(dir, "swarmtest-ltdht.py")
	if err := os.WriteFile(script, []byte(libtorrentDHTScript), 0o644); err != nil {
		return nil, fmt.Errorf("swarmtest: libtorrent DHT script: %w", err)
	}
	return append([]string{Python, "-I", "-u", script, mode}, args...), nil
}
