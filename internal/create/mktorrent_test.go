package create

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

const mktorrent = "/usr/bin/mktorrent"

// needMktorrent skips the test when mktorrent is missing, unless CI=true, where it fails.
func needMktorrent(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(mktorrent); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required when CI=true: %v", mktorrent, err)
		}
		t.Skipf("%s not installed: %v", mktorrent, err)
	}
}

// runMktorrent runs mktorrent on target with args and returns the .torrent it wrote.
func runMktorrent(t *testing.T, target string, args ...string) (path string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path = filepath.Join(t.TempDir(), "mktorrent.torrent")
	args = append(slices.Clone(args), "-o", path, target)
	if out, err := exec.CommandContext(ctx, mktorrent, args...).CombinedOutput(); err != nil {
		t.Fatalf("mktorrent %q: %v\n%s", args, err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestMatchesMktorrent checks that Build and mktorrent give the same info hash for the
// same input and piece length, private or not. mktorrent 1.1's -p adds "private" = 1 to
// the info dictionary and nothing else, as Build does, so private torrents match too.
func TestMatchesMktorrent(t *testing.T) {
	needMktorrent(t)
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "tree"), tree)
	if err := os.WriteFile(filepath.Join(dir, "single.bin"), payload(99, 2_345_679), 0o644); err != nil {
		t.Fatal(err)
	}
	const announce = "http://127.0.0.1:6969/announce"
	for _, tc := range []struct {
		target  string
		log2    int // mktorrent -l: the piece length is 2^log2
		private bool
	}{
		{"tree", 15, false}, // 32 KiB: most files span pieces, a.txt and .hidden share one
		{"tree", 15, true},
		{"tree", 18, false}, // mktorrent's default
		{"tree", 20, true},  // 1 MiB: pieces hold several files
		{"tree", 23, false}, // 8 MiB: one short piece
		{"single.bin", 15, false},
		{"single.bin", 16, true},
		{"single.bin", 21, false},
	} {
		name := tc.target + "/l" + strconv.Itoa(tc.log2)
		if tc.private {
			name += "/private"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"-l", strconv.Itoa(tc.log2), "-a", announce}
			if tc.private {
				args = append(args, "-p")
			}
			path, _ := runMktorrent(t, filepath.Join(dir, tc.target), args...)
			want, err := metainfo.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got := build(t, filepath.Join(dir, tc.target), Options{
				PieceLength: 1 << tc.log2, Trackers: [][]string{{announce}}, Private: tc.private,
			})
			if got.InfoHash != want.InfoHash {
				t.Errorf("info hash %s, mktorrent's %s", got.HexHash(), want.HexHash())
			}
			if got.Info.Private != tc.private || want.Info.Private != tc.private {
				t.Errorf("Private = %v, mktorrent's %v, want %v", got.Info.Private, want.Info.Private, tc.private)
			}
		})
	}
}

// TestMatchesMktorrentBytes goes further than the info hash: with mktorrent's "created
// by" and no creation date, the whole .torrent is byte for byte mktorrent's, tiers
// (BEP 12), comment and web seeds (BEP 19, one as a string, several as a list) included.
func TestMatchesMktorrentBytes(t *testing.T) {
	needMktorrent(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "tree")
	writeTree(t, target, tree)
	for _, tc := range []struct {
		name string
		args []string
		opt  Options
	}{
		{
			name: "one tracker",
			args: []string{"-a", "http://a/announce"},
			opt:  Options{Trackers: [][]string{{"http://a/announce"}}},
		},
		{
			name: "tiers, comment, private, one web seed",
			args: []string{"-a", "http://a/1,http://a/2", "-a", "udp://b:80", "-c", "a comment", "-p", "-w", "http://w/"},
			opt: Options{Trackers: [][]string{{"http://a/1", "http://a/2"}, {"udp://b:80"}}, Comment: "a comment",
				Private: true, WebSeeds: []string{"http://w/"}},
		},
		{
			name: "one tier of two, two web seeds",
			args: []string{"-a", "http://a/1,http://a/2", "-w", "http://w/1", "-w", "http://w/2"},
			opt:  Options{Trackers: [][]string{{"http://a/1", "http://a/2"}}, WebSeeds: []string{"http://w/1", "http://w/2"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, want := runMktorrent(t, target, append([]string{"-d", "-l", "16"}, tc.args...)...)
			m, err := metainfo.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			opt := tc.opt
			opt.PieceLength, opt.NoDate, opt.CreatedBy = 1<<16, true, m.CreatedBy
			got, err := Build(t.Context(), target, opt)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Errorf("Build differs from mktorrent at byte %d:\n got %q\nwant %q",
					i, got[i:min(i+80, len(got))], want[i:min(i+80, len(want))])
			}
		})
	}
}
