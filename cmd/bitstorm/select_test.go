package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// selectTorrent has four files over pieces of 32 KiB: f0 [0, 100000) pieces 0-3, f1
// [100000, 150000) pieces 3-4, f2 [150000, 220001) pieces 4-6, f3 [220001, 250001)
// pieces 6-7. Pieces 3, 4 and 6 are shared by two files.
func selectTorrent(t *testing.T) *stagetest.Torrent {
	return stagetest.NewTorrent(t, 121, "sel", 32<<10, 100_000, 50_000, 70_001, 30_000)
}

// checkSelected checks that the files numbered (from 0) onDisk hold their bytes and the
// others do not exist.
func checkSelected(t *testing.T, out string, tor *stagetest.Torrent, onDisk ...int) {
	t.Helper()
	for i, f := range tor.Meta.Info.Files {
		b, err := os.ReadFile(filepath.Join(append([]string{out}, f.Path...)...))
		switch {
		case !slices.Contains(onDisk, i):
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file %d, not selected: %d bytes, %v; want it absent", i+1, len(b), err)
			}
		case err != nil || !bytes.Equal(b, tor.Data[f.Offset:f.Offset+f.Length]):
			t.Errorf("file %d: %d bytes, %v; want its %d bytes", i+1, len(b), err, f.Length)
		}
	}
}

// blocks is the number of 16 KiB blocks of the pieces listed.
func blocks(info *metainfo.Info, pieces ...int) int64 {
	var n int64
	for _, i := range pieces {
		n += (info.PieceSize(i) + 16<<10 - 1) / (16 << 10)
	}
	return n
}

// servedSince is what peer served since it had served base blocks, once at least lo (the
// peer counts a block once sent: the count may lag the download's end a moment).
func servedSince(peer *stagetest.FakePeer, base, lo int64) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	peer.WaitServed(ctx, base+lo)
	return peer.Served.Load() - base
}

// TestSelectCommand: download --select 2,4 fetches the pieces of files 2 and 4 only,
// creates those files and keeps the other files' bytes of the shared pieces in the part
// file; verify reports the selection; download --select 1-4 then fetches the other pieces
// only, and the whole torrent verifies. --exclude leaves out the files it matches.
func TestSelectCommand(t *testing.T) {
	bin := buildBinary(t)
	tor := selectTorrent(t)
	info := &tor.Meta.Info
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	torrent, _ := writeTorrent(t, tor)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"download", "--no-dht", "--quiet", "--out", out, "--port", "0", "--peer", peer.Addr().String()}

	runBitstorm(t, ctx, bin, append(args, "--select", "2,4", torrent)...)
	checkSelected(t, out, tor, 1, 3)
	lo, hi := blocks(info, 3, 4, 6, 7), blocks(info, 3, 4, 6, 7)+blocks(info, 0, 1, 2, 5)
	if n := servedSince(peer, 0, lo); n < lo || n >= hi {
		t.Errorf("--select 2,4: the peer served %d blocks, want %d, those of pieces 3, 4, 6 and 7 (and fewer than %d)", n, lo, hi)
	}
	part, err := os.ReadFile(resume.PartPath(out, tor.Meta.InfoHash))
	if err != nil || len(part) < 220_001 || !bytes.Equal(part[3*32<<10:100_000], tor.Data[3*32<<10:100_000]) ||
		!bytes.Equal(part[150_000:5*32<<10], tor.Data[150_000:5*32<<10]) || !bytes.Equal(part[6*32<<10:220_001], tor.Data[6*32<<10:220_001]) {
		t.Errorf("part file: %d bytes, %v; want files 1 and 3's bytes of pieces 3, 4 and 6 at their offsets", len(part), err)
	}

	got, err := runVerifyCommand(t, "--data", out, torrent)
	if err != nil {
		t.Errorf("verify after --select 2,4 = %v, want nil: every selected file is complete", err)
	}
	for _, want := range []string{
		"pieces: 4/8 complete",
		"selected: 2 of 4 files, their pieces 4/4 complete",
		"  sel/f0.bin: not selected",
		"  sel/f1.bin: complete",
		"  sel/f2.bin: not selected",
		"  sel/f3.bin: complete",
	} {
		if !strings.Contains(filepath.ToSlash(got), want+"\n") {
			t.Errorf("verify printed\n%s\nwant a line %q", got, want)
		}
	}

	// A run without --select goes on with it: nothing to fetch.
	served := peer.Served.Load()
	runBitstorm(t, ctx, bin, append(args, torrent)...)
	checkSelected(t, out, tor, 1, 3)
	if n := peer.Served.Load() - served; n != 0 {
		t.Errorf("a run with the kept selection fetched %d blocks, want none", n)
	}

	runBitstorm(t, ctx, bin, append(args, "--select", "1-4", torrent)...)
	checkSelected(t, out, tor, 0, 1, 2, 3)
	lo, hi = blocks(info, 0, 1, 2, 5), blocks(info, 0, 1, 2, 5)+blocks(info, 3, 4, 6)
	if n := servedSince(peer, served, lo); n < lo || n >= hi {
		t.Errorf("--select 1-4 after 2,4: the peer served %d blocks, want %d, those of pieces 0, 1, 2 and 5 (the shared ones are in the part file; fewer than %d)", n, lo, hi)
	}
	if _, err := os.Stat(resume.PartPath(out, tor.Meta.InfoHash)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("part file once every file is on disk: %v, want it gone", err)
	}
	if got, err := runVerifyCommand(t, "--data", out, torrent); err != nil || !strings.Contains(got, "pieces: 8/8 complete") {
		t.Errorf("verify of the whole torrent = %v\n%s", err, got)
	}

	// --exclude: f1.bin by name, f3 by a path pattern.
	out2 := t.TempDir()
	args[4] = out2
	runBitstorm(t, ctx, bin, append(args, "--exclude", "f1.bin", "--exclude", "f[3]*", torrent)...)
	checkSelected(t, out2, tor, 0, 2)
}

// TestSelectCommandErrors: a selection that does not fit the torrent is one line naming
// it, exit status 1, and nothing created in the output directory.
func TestSelectCommandErrors(t *testing.T) {
	bin := buildBinary(t)
	tor := selectTorrent(t)
	torrent, _ := writeTorrent(t, tor)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"out of range", []string{"--select", "2,9"}, `--select "2,9": file 9 out of range: the torrent has 4 files`},
		{"zero", []string{"--select", "0"}, `--select "0": "0": malformed`},
		{"malformed range", []string{"--select", "2-x"}, `--select "2-x": "2-x": malformed range`},
		{"descending range", []string{"--select", "4-2"}, `--select "4-2": "4-2": malformed range`},
		{"empty item", []string{"--select", "1,,2"}, `--select "1,,2": "": malformed`},
		{"names no file", []string{"--select", ""}, `--select "": names no file`},
		{"glob matches nothing", []string{"--exclude", "*.nfo"}, `--exclude "*.nfo": matches no file`},
		{"bad glob", []string{"--exclude", "f[1"}, `--exclude "f[1": syntax error in pattern`},
		{"nothing left", []string{"--select", "2", "--exclude", "f1.bin"}, `--select "2" --exclude "f1.bin": no file left to download`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := slices.Concat([]string{"download", "--no-dht", "--out", out, "--port", "0", "--peer", "127.0.0.1:1"}, tc.args, []string{torrent})
			cmd := exec.Command(bin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "bitstorm: download: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("last stderr line = %q, want a bitstorm: download: line containing %q", last, tc.want)
			}
			if names, _ := os.ReadDir(out); len(names) != 0 {
				t.Errorf("the output directory holds %v, want nothing", names)
			}
		})
	}
}

func TestMatchFile(t *testing.T) {
	multi := &stagetest.NewTorrent(t, 1, "album", 16<<10, 10, 10).Meta.Info
	single := &stagetest.NewTorrent(t, 1, "movie.mkv", 16<<10, 10).Meta.Info
	sub := metainfo.File{Path: []string{"album", "cd1", "track.flac"}}
	for _, tc := range []struct {
		glob string
		info *metainfo.Info
		f    metainfo.File
		want bool
	}{
		{"f0.bin", multi, multi.Files[0], true},
		{"*.bin", multi, multi.Files[1], true},
		{"album/*", multi, multi.Files[0], false}, // the path is below the torrent's directory
		{"cd1/*.flac", multi, sub, true},
		{"*.flac", multi, sub, true}, // no '/': the name, in any directory
		{"cd2/*", multi, sub, false},
		{"*/track.flac", multi, sub, true},
		{"movie.mkv", single, single.Files[0], true},
		{"*.mp4", single, single.Files[0], false},
	} {
		if got := matchFile(tc.glob, tc.info, tc.f); got != tc.want {
			t.Errorf("matchFile(%q, %q) = %v, want %v", tc.glob, strings.Join(tc.f.Path, "/"), got, tc.want)
		}
	}
}

func TestFileChoicePriorities(t *testing.T) {
	info := &selectTorrent(t).Meta.Info
	fc := &fileChoice{cmd: "download", spec: "1,3-4", ranges: [][2]int{{1, 1}, {3, 4}}, globs: []string{"f3.bin"}}
	got, err := fc.priorities(info)
	want := []pipeline.FilePriority{pipeline.FileNormal, pipeline.FileSkip, pipeline.FileNormal, pipeline.FileSkip}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("priorities(--select 1,3-4 --exclude f3.bin) = %v, %v; want %v", got, err, want)
	}
}
