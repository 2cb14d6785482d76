package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// runCreateCommand runs "bitstorm create args..." in-process and returns what it printed.
// The app holds only createCommand, as main.go's newApp does not register it yet.
func runCreateCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{
		Name:           "bitstorm",
		Writer:         &out,
		ErrWriter:      &out,
		Commands:       []*cli.Command{createCommand()},
		ExitErrHandler: func(*cli.Context, error) {}, // never os.Exit in a test
	}
	err := app.Run(append([]string{"bitstorm", "create"}, args...))
	return out.String(), err
}

// writeDir writes a small directory of seeded random files below parent and returns it.
func writeDir(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "payload")
	r := rand.New(rand.NewPCG(7, 7))
	for i, name := range []string{"a.bin", "sub/b.bin", "sub/deeper/c.txt"} {
		data := make([]byte, 50_000+i*33_333)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCreateCommand(t *testing.T) {
	tmp := t.TempDir()
	src := writeDir(t, tmp)
	out := filepath.Join(tmp, "out.torrent")
	printed, err := runCreateCommand(t,
		"--out", out, "--piece-length", "32K",
		"--tracker", "http://127.0.0.1:6969/announce,http://127.0.0.1:6970/announce", "--tracker", "udp://127.0.0.1:6971",
		"--private", "--comment", "made by a test",
		"--web-seed", "http://127.0.0.1:8080/", "--web-seed", "http://127.0.0.1:8081/,http://127.0.0.1:8082/",
		src)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, printed)
	}
	m, err := metainfo.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "info hash: " + m.HexHash() + "\nwrote:     " + out + "\n"; printed != want {
		t.Errorf("printed %q, want %q", printed, want)
	}
	wantTiers := [][]string{
		{"http://127.0.0.1:6969/announce", "http://127.0.0.1:6970/announce"},
		{"udp://127.0.0.1:6971"},
	}
	if got := m.Trackers(); !reflect.DeepEqual(got, wantTiers) {
		t.Errorf("Trackers() = %q, want %q", got, wantTiers)
	}
	wantSeeds := []string{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/", "http://127.0.0.1:8082/"}
	if !slices.Equal(m.URLList, wantSeeds) {
		t.Errorf("URLList = %q, want %q", m.URLList, wantSeeds)
	}
	in := &m.Info
	if in.Name != "payload" || in.PieceLength != 32<<10 || !in.Private || len(in.Files) != 3 || m.Comment != "made by a test" {
		t.Errorf("got name %q, piece length %d, private %v, %d files, comment %q",
			in.Name, in.PieceLength, in.Private, len(in.Files), m.Comment)
	}
}

// TestCreateCommandOut checks the default output path and that an existing file is
// refused, and left alone, unless --force.
func TestCreateCommandOut(t *testing.T) {
	tmp := t.TempDir()
	src := writeDir(t, tmp)
	cwd := filepath.Join(tmp, "cwd")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	const out = "payload.torrent" // in the current directory, named after src
	if _, err := runCreateCommand(t, "--comment", "first", src); err != nil {
		t.Fatalf("create: %v", err)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	printed, err := runCreateCommand(t, "--comment", "second", src)
	if err == nil || !strings.Contains(err.Error(), "payload.torrent already exists (--force overwrites it)") {
		t.Fatalf("create over an existing file = %v, %q; want a refusal", err, printed)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, first) {
		t.Errorf("refused create changed %s", out)
	}

	if _, err := runCreateCommand(t, "--force", "--comment", "second", src); err != nil {
		t.Fatalf("create --force: %v", err)
	}
	m, err := metainfo.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Comment != "second" {
		t.Errorf("after --force, comment = %q, want %q", m.Comment, "second")
	}
	if left, _ := filepath.Glob(filepath.Join(cwd, ".*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

func TestCreateCommandErrors(t *testing.T) {
	tmp := t.TempDir()
	src := writeDir(t, tmp)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no path", nil, "expected one file or directory, got 0 arguments"},
		{"two paths", []string{src, src}, "got 2 arguments"},
		{"missing path", []string{filepath.Join(tmp, "nope")}, "no such file or directory"},
		{"piece length not a power of two", []string{"-l", "1000", src}, "piece length 1000: must be a power of two"},
		{"piece length unreadable", []string{"-l", "12Q", src}, `--piece-length "12Q": want a positive number`},
		{"piece length too large", []string{"-l", "9999999999999G", src}, "too large"},
		{"empty tracker in a tier", []string{"--tracker", "http://a/,,http://b/", src}, "empty URL"},
		{"relative tracker", []string{"--tracker", "announce", src}, `"announce": not an absolute URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.torrent")
			printed, err := runCreateCommand(t, append([]string{"--out", out}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create %q = %v, %q; want an error with %q", tc.args, err, printed, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("failed create wrote %s", out)
			}
		})
	}
}

func TestParsePieceLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true},
		{"auto", 0, true},
		{"262144", 262144, true},
		{"16384B", 16384, true},
		{"256K", 256 << 10, true},
		{"256k", 256 << 10, true},
		{"256KiB", 256 << 10, true},
		{"256KB", 256 << 10, true},
		{"1M", 1 << 20, true},
		{"16MiB", 16 << 20, true},
		{"1G", 1 << 30, true}, // parsed here, refused by create.Build
		{"K", 0, false},
		{"-1", 0, false},
		{"0", 0, false},
		{"1.5M", 0, false},
		{"12Q", 0, false},
		{"9999999999999G", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parsePieceLength(tc.in)
			if got != tc.want || (err == nil) != tc.ok {
				t.Errorf("parsePieceLength(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}
