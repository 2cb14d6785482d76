package main

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackpal/bencode-go"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/malicious from the table in malicious_test.go")

// corpusDir holds torrents crafted to write outside the output directory, or to make a
// client allocate without bound, each beside a .want file: what the error must say. The
// error names the field at fault (metainfo's own tests cover its rules one by one).
const corpusDir = "../../testdata/malicious"

// maliciousCorpus is the source of the files in corpusDir (go test ./cmd/bitstorm -run
// TestMaliciousTorrentCorpus -update-corpus writes them again).
func maliciousCorpus() map[string]struct {
	info map[string]any
	want string
} {
	hashes := strings.Repeat("01234567890123456789", 1)
	single := func(name string) map[string]any {
		return map[string]any{"name": name, "piece length": 16384, "pieces": hashes, "length": 100}
	}
	multi := func(files ...any) map[string]any {
		return map[string]any{"name": "t", "piece length": 16384, "pieces": hashes, "files": files}
	}
	file := func(length int64, path ...any) map[string]any { return map[string]any{"length": length, "path": path} }
	type entry = struct {
		info map[string]any
		want string
	}
	return map[string]entry{
		"name-dotdot-slash":   {single("../evil"), `info.name: "../evil" contains '/'`},
		"name-absolute":       {single("/etc/passwd"), `info.name: "/etc/passwd" contains '/'`},
		"name-backslashes":    {single(`..\..\evil`), `info.name: "..\\..\\evil" contains '\'`},
		"name-nul":            {single("evil\x00.txt"), `info.name: "evil\x00.txt" contains NUL`},
		"path-dotdot":         {multi(file(100, "..", "..", "etc", "passwd")), `info.files[0].path[0]: ".." is not allowed`},
		"path-dotdot-deeper":  {multi(file(50, "ok"), file(50, "sub", "..", "..", "x")), `info.files[1].path[1]: ".." is not allowed`},
		"path-absolute":       {multi(file(100, "/etc/passwd")), `info.files[0].path[0]: "/etc/passwd" contains '/'`},
		"path-separator":      {multi(file(100, "sub/../../x")), `info.files[0].path[0]: "sub/../../x" contains '/'`},
		"path-empty-part":     {multi(file(100, "", "x")), "info.files[0].path[0]: must not be empty"},
		"path-duplicate":      {multi(file(50, "a", "b"), file(50, "a", "b")), "info.files[1].path: same path as info.files[0]"},
		"path-file-over-dir":  {multi(file(50, "a", "b"), file(50, "a")), `info.files[1].path: "a" is a directory of info.files[0]`},
		"pieces-enormous":     {map[string]any{"name": "big", "piece length": 1, "pieces": hashes, "length": int64(1) << 40}, "more than 4000000"},
		"piece-length-zero":   {map[string]any{"name": "p", "piece length": 0, "pieces": hashes, "length": 100}, "info.piece length: must be > 0"},
		"pieces-not-20-bytes": {map[string]any{"name": "odd", "piece length": 16384, "pieces": hashes[:19], "length": 100}, "info.pieces: length 19 is not a multiple of 20"},
		"name-dotdot":         {single(".."), `info.name: ".." is not allowed`},
		"name-dot":            {single("."), `info.name: "." is not allowed`},
		"name-empty":          {single(""), "info.name: must not be empty"},
		"path-backslash":      {multi(file(100, `C:\Windows`)), `info.files[0].path[0]: "C:\\Windows" contains '\'`},
		"path-nul":            {multi(file(100, "a\x00b")), `info.files[0].path[0]: "a\x00b" contains NUL`},
		"path-dot":            {multi(file(100, ".", "x")), `info.files[0].path[0]: "." is not allowed`},
		"path-empty":          {multi(file(100)), "info.files[0].path: must not be empty"},
		"path-dir-over-file":  {multi(file(50, "a"), file(50, "a", "b")), `info.files[1].path: "a" is a file, info.files[0]`},
		"length-negative":     {multi(file(-1, "a")), "info.files[0].length: must be >= 0"},
		"length-overflow":     {multi(file(math.MaxInt64, "a"), file(1, "b")), "info.files[1].length: total length overflows int64"},
		"length-zero-single":  {map[string]any{"name": "z", "piece length": 16384, "pieces": "", "length": 0}, "info.length: must be > 0"},
		"length-zero-files":   {multi(file(0, "a"), file(0, "b")), "info.files: total length must be > 0"},
		"pieces-too-few":      {map[string]any{"name": "few", "piece length": 16384, "pieces": hashes, "length": 16385}, "info.pieces: 1 hashes, want 2"},
		"piece-length-1tib":   {map[string]any{"name": "p", "piece length": int64(1) << 40, "pieces": hashes, "length": 100}, "info.piece length: 1099511627776 exceeds the limit"},
	}
}

func writeCorpus(t *testing.T) {
	for name, e := range maliciousCorpus() {
		var buf bytes.Buffer
		if err := bencode.Marshal(&buf, map[string]any{"announce": "http://127.0.0.1:1/announce", "info": e.info}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(corpusDir, name+".torrent"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(corpusDir, name+".want"), []byte(e.want+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaliciousTorrentCorpus runs `bitstorm info` and `bitstorm download` on every torrent
// of testdata/malicious: each exits 1 with a one-line error that says what is wrong, and
// the download creates nothing, inside its output directory or out of it.
func TestMaliciousTorrentCorpus(t *testing.T) {
	if *updateCorpus {
		writeCorpus(t)
	}
	torrents, err := filepath.Glob(filepath.Join(corpusDir, "*.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if len(torrents) != len(maliciousCorpus()) {
		t.Fatalf("%d torrents in %s, want %d (run with -update-corpus)", len(torrents), corpusDir, len(maliciousCorpus()))
	}
	bin := buildBinary(t)
	for _, torrent := range torrents {
		name := strings.TrimSuffix(filepath.Base(torrent), ".torrent")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(strings.TrimSuffix(torrent, ".torrent") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSuffix(string(b), "\n")
			root := t.TempDir()
			out := filepath.Join(root, "jail", "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"info", torrent},
				{"download", "--no-dht", "--out", out, "--listen", "127.0.0.1", "--port", "0", torrent},
			} {
				cmd := exec.Command(bin, args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 1 {
					t.Fatalf("bitstorm %s: exit = %v, want status 1; stderr:\n%s", args[0], err, stderr.String())
				}
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				if last := lines[len(lines)-1]; !strings.HasPrefix(last, "bitstorm: ") || !strings.Contains(last, want) {
					t.Errorf("bitstorm %s: last stderr line = %q, want a bitstorm: line containing %q", args[0], last, want)
				}
			}
			var made []string
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if rel, _ := filepath.Rel(root, path); rel != "." {
					made = append(made, rel)
				}
				return err
			})
			if want := []string{"jail", filepath.Join("jail", "out")}; !slices.Equal(made, want) {
				t.Errorf("after the download the sandbox holds %q, want only %q", made, want)
			}
		})
	}
}
