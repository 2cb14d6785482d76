package swarmtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// MakeTorrent runs mktorrent over srcPath (a file, or a directory for a
// multi-file torrent) and writes the metainfo to torrentPath, replacing it
// if it exists. Pieces are 1<<pieceLenLog2 bytes (18 = 256 KiB).
func MakeTorrent(ctx context.Context, srcPath, torrentPath, announceURL string, pieceLenLog2 int) error {
	if pieceLenLog2 < 15 || pieceLenLog2 > 28 {
		return fmt.Errorf("swarmtest: mktorrent: piece length 2^%d out of range [2^15, 2^28]", pieceLenLog2)
	}
	// mktorrent refuses to overwrite its output.
	if err := os.Remove(torrentPath); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("swarmtest: mktorrent: %w", err)
	}
	cmd := exec.CommandContext(ctx, "mktorrent",
		"-l", strconv.Itoa(pieceLenLog2), "-a", announceURL, "-o", torrentPath, srcPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("swarmtest: mktorrent %s: %w: %s", srcPath, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// InfoHash returns the hex BitTorrent v1 info hash of the metainfo file, as
// libtorrent computes it.
func InfoHash(ctx context.Context, torrentPath string) (string, error) {
	const script = "import sys, libtorrent as lt; print(lt.torrent_info(sys.argv[1]).info_hash())"
	out, err := exec.CommandContext(ctx, Python, "-I", "-c", script, torrentPath).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return "", fmt.Errorf("swarmtest: info hash of %s: %w: %s", torrentPath, err, s)
	}
	if _, err := parseInfoHash(s); err != nil {
		return "", fmt.Errorf("swarmtest: info hash of %s: libtorrent printed %q", torrentPath, s)
	}
	return s, nil
}

// parseInfoHash decodes a 40-digit hex info hash.
func parseInfoHash(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		return nil, fmt.Errorf("swarmtest: info hash %q: want 40 hex digits", s)
	}
	return b, nil
}
