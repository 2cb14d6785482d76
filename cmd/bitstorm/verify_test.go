package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// runVerifyCommand runs "bitstorm verify args..." in-process and returns what it printed.
func runVerifyCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{
		Name:           "bitstorm",
		Writer:         &out,
		ErrWriter:      &out,
		Commands:       []*cli.Command{verifyCommand()},
		ExitErrHandler: func(*cli.Context, error) {}, // never os.Exit in a test
	}
	err := app.Run(append([]string{"bitstorm", "verify"}, args...))
	return out.String(), err
}

// writeTorrent writes tor's .torrent file and its payload below a temporary directory,
// laid out as download --out DIR would, and returns the .torrent path and DIR.
func writeTorrent(t *testing.T, tor *stagetest.Torrent) (torrent, data string) {
	t.Helper()
	tmp := t.TempDir()
	torrent, data = filepath.Join(tmp, "t.torrent"), filepath.Join(tmp, "data")
	if err := os.WriteFile(torrent, tor.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range tor.Meta.Info.Files {
		name := filepath.Join(append([]string{data}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, tor.Data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return torrent, data
}

func TestVerifyCommand(t *testing.T) {
	// Pieces of 16 KiB over five files: f0 [0, 40000) holds pieces 0-2, f1 [40000, 65000)
	// pieces 2-3, f2 [65000, 95000) pieces 3-5, f3 [95000, 115000) pieces 5-7 and
	// f4 [115000, 165000) pieces 7-10; 11 pieces in all.
	multi := stagetest.NewTorrent(t, 11, "multi", 16<<10, 40000, 25000, 30000, 20000, 50000)
	single := stagetest.NewTorrent(t, 12, "single.bin", 16<<10, 100000) // 7 pieces
	tests := []struct {
		name    string
		tor     *stagetest.Torrent
		damage  func(t *testing.T, data string)
		want    []string // lines between the pieces line and the rate line
		wantErr string
	}{
		{"multi-file complete", multi, func(*testing.T, string) {}, []string{
			"pieces: 11/11 complete",
			"  multi/f0.bin: complete",
			"  multi/f1.bin: complete",
			"  multi/f2.bin: complete",
			"  multi/f3.bin: complete",
			"  multi/f4.bin: complete",
		}, ""},
		{"multi-file damaged", multi, func(t *testing.T, data string) {
			flipByte(t, filepath.Join(data, "multi", "f1.bin"), 100) // piece 2, shared with f0
			if err := os.Remove(filepath.Join(data, "multi", "f2.bin")); err != nil {
				t.Fatal(err)
			}
		}, []string{
			"pieces: 7/11 complete",
			"  multi/f0.bin: incomplete (2 of 3 pieces)", // intact, but piece 2 is shared with f1
			"  multi/f1.bin: incomplete (0 of 2 pieces)",
			"  multi/f2.bin: missing",
			"  multi/f3.bin: incomplete (2 of 3 pieces)", // piece 5 is shared with f2
			"  multi/f4.bin: complete",
		}, "verify: 4 of 11 pieces incomplete"},
		{"multi-file short", multi, func(t *testing.T, data string) {
			if err := os.Truncate(filepath.Join(data, "multi", "f4.bin"), 30000); err != nil {
				t.Fatal(err)
			}
		}, []string{
			"pieces: 8/11 complete", // f4 now ends at 145000, inside piece 8: pieces 8-10 are cut
			"  multi/f0.bin: complete",
			"  multi/f1.bin: complete",
			"  multi/f2.bin: complete",
			"  multi/f3.bin: complete",
			"  multi/f4.bin: incomplete (1 of 4 pieces)",
		}, "verify: 3 of 11 pieces incomplete"},
		{"single-file complete", single, func(*testing.T, string) {}, []string{
			"pieces: 7/7 complete",
			"  single.bin: complete",
		}, ""},
		{"single-file missing", single, func(t *testing.T, data string) {
			if err := os.Remove(filepath.Join(data, "single.bin")); err != nil {
				t.Fatal(err)
			}
		}, []string{
			"pieces: 0/7 complete",
			"  single.bin: missing",
		}, "verify: 7 of 7 pieces incomplete"},
	}
	rate := regexp.MustCompile(`^recheck: [0-9.]+ MiB/s \(.* read in .*\)$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			torrent, data := writeTorrent(t, tt.tor)
			tt.damage(t, data)
			before := sizes(tt.tor, data)
			out, err := runVerifyCommand(t, "--data", data, torrent)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("verify error = %v, want %q", err, tt.wantErr)
			}
			lines := strings.Split(strings.TrimSuffix(filepath.ToSlash(out), "\n"), "\n")
			if len(lines) != len(tt.want)+1 {
				t.Fatalf("verify printed\n%s\nwant\n%s\nand a rate line", out, strings.Join(tt.want, "\n"))
			}
			for i, want := range tt.want {
				if lines[i] != want {
					t.Errorf("line %d = %q, want %q", i, lines[i], want)
				}
			}
			if last := lines[len(lines)-1]; !rate.MatchString(last) {
				t.Errorf("last line = %q, want the recheck rate", last)
			}
			// Verifying is read-only: a missing file stays missing, a short one short.
			if after := sizes(tt.tor, data); !slices.Equal(after, before) {
				t.Errorf("file sizes went from %v to %v", before, after)
			}
		})
	}
}

// sizes returns the size of each file of tor below data, -1 for a missing one.
func sizes(tor *stagetest.Torrent, data string) []int64 {
	var s []int64
	for _, f := range tor.Meta.Info.Files {
		st, err := os.Stat(filepath.Join(append([]string{data}, f.Path...)...))
		if err != nil {
			s = append(s, -1)
			continue
		}
		s = append(s, st.Size())
	}
	return s
}

func TestVerifyCommandErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no torrent", nil, "verify: expected one .torrent file, got 0 arguments"},
		{"two torrents", []string{"a.torrent", "b.torrent"}, "verify: expected one .torrent file, got 2 arguments"},
		{"torrent not found", []string{filepath.Join(dir, "none.torrent")}, "metainfo: open "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runVerifyCommand(t, append([]string{"--data", dir}, tt.args...)...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("verify %v = %v, want an error starting %q", tt.args, err, tt.want)
			}
		})
	}
}

// flipByte inverts the byte at offset off of the file name.
func flipByte(t *testing.T, name string, off int64) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0xff
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
