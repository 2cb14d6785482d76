package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// makeHybrid makes a BEP 52 hybrid torrent with libtorrent's create_torrent, as
// qBittorrent and Deluge make them: BEP 47 padding aligns every file to a piece, the
// executable bit is an 'x' attribute and a symbolic link an 'l' file. It prints the v1
// info hash. Arguments: source directory, its parent, announce URL, piece length, output.
const makeHybrid = `
import sys, libtorrent as lt
src, parent, announce, piece, out = sys.argv[1:]
fs = lt.file_storage()
lt.add_files(fs, src, flags=lt.create_torrent.symlinks)
ct = lt.create_torrent(fs, int(piece), flags=lt.create_torrent.symlinks)
ct.add_tracker(announce)
lt.set_piece_hashes(ct, parent)
open(out, "wb").write(lt.bencode(ct.generate()))
print(lt.torrent_info(out).info_hashes().v1)
`

// TestPaddingDownload downloads a hybrid torrent with padding files, an executable and a
// symlink from a libtorrent seeder, then again from a BitStorm seeder of that download:
// each time the files hold the seeder's bytes, the executable is executable, the link
// points to its target, no padding file is on disk, and bitstorm verify finds every
// piece complete.
func TestPaddingDownload(t *testing.T) {
	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Libtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := []swarmtest.FileSpec{
		{Path: "padded/a.bin", Size: 100_000}, {Path: "padded/b.bin", Size: 33_333},
		{Path: "padded/sub/c.bin", Size: 70_001}, {Path: "padded/tool.sh", Size: 5_000},
	}
	if err := swarmtest.WritePayload(src, 47, files); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "padded", "tool.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.bin", filepath.Join(src, "padded", "link")); err != nil {
		t.Fatal(err)
	}

	tr, err := swarmtest.StartTracker(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	torrent := filepath.Join(dir, "padded.torrent")
	out, err := exec.CommandContext(ctx, swarmtest.Python, "-I", "-c", makeHybrid,
		filepath.Join(src, "padded"), src, tr.AnnounceURL, "16384", torrent).Output()
	if err != nil {
		t.Fatalf("libtorrent create_torrent: %v", err)
	}
	hash := strings.TrimSpace(string(out))
	m, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	if m.HexHash() != hash {
		t.Fatalf("info hash %s, libtorrent says %s", m.HexHash(), hash)
	}
	var pads, links, execs int
	for _, f := range m.Info.Files {
		pads += btoi(f.IsPad())
		links += btoi(f.IsSymlink())
		execs += btoi(f.Attr&metainfo.AttrExecutable != 0 && !f.IsSymlink())
	}
	if pads == 0 || links != 1 || execs != 1 {
		t.Fatalf("the torrent has %d padding files, %d links, %d executables; want some, 1, 1", pads, links, execs)
	}
	if err := tr.Allow(ctx, hash); err != nil {
		t.Fatal(err)
	}

	seeder, err := swarmtest.StartLibtorrentSeeder(ctx, torrent, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		t.Fatal(err)
	}
	fromLibtorrent := filepath.Join(dir, "from-libtorrent")
	runBitstorm(t, ctx, bin, "download", "--no-dht", "--out", fromLibtorrent, "--listen", "127.0.0.1", "--port", "0", torrent)
	checkPadded(t, ctx, bin, m, torrent, src, fromLibtorrent)
	seeder.Stop()

	// BitStorm seeds what it downloaded: the padding it serves is zeros it never stored.
	port, err := swarmtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	seed := exec.CommandContext(ctx, bin, "seed", "--no-dht", "--data", fromLibtorrent, "--listen", "127.0.0.1",
		"--port", strconv.Itoa(port), torrent)
	var seedLog bytes.Buffer
	seed.Stderr = &seedLog
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		seed.Process.Kill()
		seed.Wait()
	}()
	waitListening(t, ctx, port, &seedLog)
	fromBitstorm := filepath.Join(dir, "from-bitstorm")
	runBitstorm(t, ctx, bin, "download", "--no-dht", "--out", fromBitstorm, "--listen", "127.0.0.1", "--port", "0",
		"--peer", fmt.Sprintf("127.0.0.1:%d", port), torrent)
	checkPadded(t, ctx, bin, m, torrent, src, fromBitstorm)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runBitstorm runs the binary and fails the test unless it exits 0.
func runBitstorm(t *testing.T, ctx context.Context, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bitstorm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// waitListening waits until something accepts connections on 127.0.0.1:port.
func waitListening(t *testing.T, ctx context.Context, port int, log *bytes.Buffer) {
	t.Helper()
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nothing listens on port %d: %v\n%s", port, err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkPadded checks a download of m into out against the source directory src.
func checkPadded(t *testing.T, ctx context.Context, bin string, m *metainfo.MetaInfo, torrent, src, out string) {
	t.Helper()
	var want []string
	for _, f := range m.Info.Files {
		rel := filepath.Join(f.Path...)
		name := filepath.Join(out, rel)
		switch {
		case f.IsPad():
			continue
		case f.IsSymlink():
			target, err := os.Readlink(name)
			if wantTarget, _ := os.Readlink(filepath.Join(src, rel)); err != nil || target != wantTarget {
				t.Errorf("%s: link to %q, %v; want a link to %q", rel, target, err, wantTarget)
			}
		default:
			got, err := os.ReadFile(name)
			wantData, _ := os.ReadFile(filepath.Join(src, rel))
			if err != nil || !bytes.Equal(got, wantData) {
				t.Errorf("%s: %d bytes, %v; want the seeder's %d", rel, len(got), err, len(wantData))
			}
			st, err := os.Stat(name)
			if exec := f.Attr&metainfo.AttrExecutable != 0; err != nil || (st.Mode()&0o100 != 0) != exec {
				t.Errorf("%s: mode %v, %v; executable should be %v", rel, st.Mode(), err, exec)
			}
		}
		for d := rel; d != "."; d = filepath.Dir(d) {
			want = append(want, d)
		}
	}
	var got []string
	filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(out, path)
		if rel == ".bitstorm" { // resume state, if any
			return fs.SkipDir
		}
		if rel != "." {
			got = append(got, rel)
		}
		return err
	})
	slices.Sort(want)
	if want = slices.Compact(want); !slices.Equal(got, want) {
		t.Errorf("the download holds %q, want %q: no padding file", got, want)
	}
	verify := runBitstorm(t, ctx, bin, "verify", "--data", out, torrent)
	if n := m.Info.NumPieces(); !strings.Contains(verify, fmt.Sprintf("pieces: %d/%d complete", n, n)) {
		t.Errorf("bitstorm verify:\n%s", verify)
	}
	if strings.Contains(verify, "missing") {
		t.Errorf("bitstorm verify reports a missing file:\n%s", verify)
	}
	if _, err := os.Stat(filepath.Join(out, "padded", ".pad")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("padded/.pad exists (%v)", err)
	}
}
