package metainfo

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "regenerate testdata/*.torrent with mktorrent, and their golden JSON")

const (
	mktorrent = "/usr/bin/mktorrent"
	python3   = "/usr/bin/python3"
)

// fixture is a torrent made by mktorrent from a seeded payload, so the payload can be
// rebuilt byte for byte to check the piece hashes.
type fixture struct {
	name     string // testdata/<name>.torrent and testdata/<name>.golden.json
	target   string // the file or directory mktorrent hashes; it names the torrent
	files    []payloadFile
	args     []string   // mktorrent flags besides -d, -o and the target
	trackers [][]string // the tiers the -a flags make
}

type payloadFile struct {
	path string // below target, '/'-separated; "" for a single-file torrent
	size int
}

var fixtures = []fixture{
	{
		name:     "single",
		target:   "single.bin",
		files:    []payloadFile{{"", 100_000}},
		args:     []string{"-l", "15", "-a", "http://127.0.0.1:6969/announce", "-c", "bitstorm golden fixture"},
		trackers: [][]string{{"http://127.0.0.1:6969/announce"}},
	},
	{
		name:   "multi",
		target: "multi",
		files: []payloadFile{
			{"a.bin", 70_000}, {"sub/b.bin", 33_333}, {"sub/deeper/c.txt", 1}, {"sub/empty", 0},
		},
		// -s adds an unknown "source" key to the info dictionary: it must be hashed too.
		args: []string{"-l", "15", "-p", "-s", "bitstorm",
			"-a", "http://127.0.0.1:6969/announce,http://127.0.0.1:6970/announce",
			"-a", "http://127.0.0.1:6971/announce", "-w", "http://127.0.0.1:8080/seed/"},
		trackers: [][]string{
			{"http://127.0.0.1:6969/announce", "http://127.0.0.1:6970/announce"},
			{"http://127.0.0.1:6971/announce"},
		},
	},
}

// writePayload writes fx's files below dir from a fixed seed and returns the target.
func writePayload(t *testing.T, dir string, fx fixture) string {
	t.Helper()
	target := filepath.Join(dir, fx.target)
	for i, f := range fx.files {
		data := make([]byte, f.size)
		r := rand.New(rand.NewPCG(uint64(len(fx.name)), uint64(i)))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		path := filepath.Join(target, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return target
}

// needTool skips the test when path is missing, unless CI=true, where it fails.
func needTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required when CI=true: %v", path, err)
		}
		t.Skipf("%s not installed: %v", path, err)
	}
}

func runMktorrent(t *testing.T, out, target string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	args = append(slices.Clone(args), "-o", out, target)
	if b, err := exec.CommandContext(ctx, mktorrent, args...).CombinedOutput(); err != nil {
		t.Fatalf("mktorrent %q: %v\n%s", args, err, b)
	}
}

// libtorrentHash returns the v1 info hash of the .torrent at path as libtorrent computes
// it, or "" when python3 with libtorrent is not available (the check is optional).
func libtorrentHash(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(python3); err != nil {
		return ""
	}
	const script = "import sys\ntry:\n import libtorrent as lt\nexcept ImportError:\n sys.exit(3)\n" +
		"print(str(lt.torrent_info(sys.argv[1]).info_hashes().v1))"
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python3, "-I", "-c", script, path)
	out, err := cmd.Output()
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
		return ""
	}
	if err != nil {
		t.Fatalf("libtorrent on %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// checkPieces reads the files of info below root, in torrent order, and checks the
// layout and every piece hash against the data: an independent check of Files,
// Offset, PieceSize, PieceOffset and PieceHash.
func checkPieces(t *testing.T, info *Info, root string) {
	t.Helper()
	var all []byte
	for i, f := range info.Files {
		data, err := os.ReadFile(filepath.Join(root, filepath.Join(f.Path...)))
		if err != nil {
			t.Fatalf("files[%d]: %v", i, err)
		}
		if int64(len(data)) != f.Length || f.Offset != int64(len(all)) {
			t.Fatalf("files[%d] %q: length %d offset %d, want %d and %d", i, f.Path, f.Length, f.Offset, len(data), len(all))
		}
		all = append(all, data...)
	}
	if int64(len(all)) != info.Length {
		t.Fatalf("Length = %d, want %d", info.Length, len(all))
	}
	if want := (len(all) + int(info.PieceLength) - 1) / int(info.PieceLength); info.NumPieces() != want {
		t.Fatalf("NumPieces() = %d, want %d", info.NumPieces(), want)
	}
	for i := range info.NumPieces() {
		off, size := info.PieceOffset(i), info.PieceSize(i)
		if sha1.Sum(all[off:off+size]) != info.PieceHash(i) {
			t.Errorf("piece %d [%d, %d): hash mismatch", i, off, off+size)
		}
	}
}

// goldenView is what the golden JSON records of a parsed torrent.
type goldenView struct {
	InfoHash    string     `json:"info_hash"`
	Name        string     `json:"name"`
	PieceLength int64      `json:"piece_length"`
	NumPieces   int        `json:"num_pieces"`
	Length      int64      `json:"length"`
	MultiFile   bool       `json:"multi_file"`
	Private     bool       `json:"private"`
	Files       []fileView `json:"files"`
	PieceHashes []string   `json:"piece_hashes"`
	Trackers    [][]string `json:"trackers"`
	Comment     string     `json:"comment"`
	CreatedBy   string     `json:"created_by"`
	URLList     []string   `json:"url_list"`
}

type fileView struct {
	Path    []string `json:"path"`
	Length  int64    `json:"length"`
	Offset  int64    `json:"offset"`
	Attr    string   `json:"attr,omitempty"`
	Symlink []string `json:"symlink,omitempty"`
}

func view(m *MetaInfo) []byte {
	v := goldenView{
		InfoHash: m.HexHash(), Name: m.Info.Name, PieceLength: m.Info.PieceLength,
		NumPieces: m.Info.NumPieces(), Length: m.Info.Length, MultiFile: m.Info.MultiFile,
		Private: m.Info.Private, Trackers: m.Trackers(),
		Comment: m.Comment, CreatedBy: m.CreatedBy, URLList: m.URLList,
	}
	for _, f := range m.Info.Files {
		v.Files = append(v.Files, fileView{f.Path, f.Length, f.Offset, f.Attr.String(), f.SymlinkPath})
	}
	for i := range m.Info.NumPieces() {
		h := m.Info.PieceHash(i)
		v.PieceHashes = append(v.PieceHashes, hex.EncodeToString(h[:]))
	}
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// TestGolden parses the mktorrent-made fixtures in testdata and compares them with their
// golden JSON. With -update it first remakes the fixtures with mktorrent (creation date
// left out, so they are reproducible) and checks the info hash against libtorrent.
func TestGolden(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			torrentPath := filepath.Join("testdata", fx.name+".torrent")
			goldenPath := filepath.Join("testdata", fx.name+".golden.json")
			payload := t.TempDir()
			writePayload(t, payload, fx)
			if *update {
				needTool(t, mktorrent)
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				os.Remove(torrentPath) // mktorrent will not overwrite it
				runMktorrent(t, torrentPath, filepath.Join(payload, fx.target), append([]string{"-d"}, fx.args...)...)
			}
			m, err := Load(torrentPath)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				switch lt := libtorrentHash(t, torrentPath); lt {
				case "":
					t.Log("libtorrent not available; info hash not cross-checked")
				case m.HexHash():
					t.Logf("info hash %s, as libtorrent says", lt)
				default:
					t.Fatalf("info hash %s, libtorrent says %s", m.HexHash(), lt)
				}
				if err := os.WriteFile(goldenPath, view(m), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatal(err)
			}
			if got := view(m); !bytes.Equal(got, want) {
				t.Errorf("%s parses to\n%s\nwant (%s)\n%s", torrentPath, got, goldenPath, want)
			}
			checkPieces(t, &m.Info, payload)
		})
	}
}

// TestMktorrent makes fresh torrents with mktorrent and checks what Parse reads from them
// against what was hashed, and the info hash against libtorrent's when it is installed.
func TestMktorrent(t *testing.T) {
	needTool(t, mktorrent)
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := t.TempDir()
			target := writePayload(t, dir, fx)
			out := filepath.Join(dir, fx.name+".torrent")
			before := time.Now().Add(-time.Minute).Truncate(time.Second)
			runMktorrent(t, out, target, fx.args...)
			m, err := Load(out)
			if err != nil {
				t.Fatal(err)
			}

			var wantFiles, gotFiles []string
			for _, f := range fx.files {
				wantFiles = append(wantFiles, strings.TrimSuffix(fx.target+"/"+f.path, "/")+" "+strconv.Itoa(f.size))
			}
			for _, f := range m.Info.Files {
				gotFiles = append(gotFiles, strings.Join(f.Path, "/")+" "+strconv.FormatInt(f.Length, 10))
			}
			slices.Sort(wantFiles)
			slices.Sort(gotFiles)
			if !reflect.DeepEqual(gotFiles, wantFiles) {
				t.Errorf("files = %q, want %q", gotFiles, wantFiles)
			}
			if m.Info.Name != fx.target || m.Info.MultiFile != (fx.files[0].path != "") {
				t.Errorf("Name = %q, MultiFile = %v", m.Info.Name, m.Info.MultiFile)
			}
			if got, want := m.Info.Private, slices.Contains(fx.args, "-p"); got != want {
				t.Errorf("Private = %v, want %v", got, want)
			}
			if got := m.Trackers(); !reflect.DeepEqual(got, fx.trackers) {
				t.Errorf("Trackers() = %q, want %q", got, fx.trackers)
			}
			if m.CreationDate.Before(before) || m.CreationDate.After(time.Now().Add(time.Minute)) {
				t.Errorf("CreationDate = %v, want about now", m.CreationDate)
			}
			checkPieces(t, &m.Info, dir)

			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			// mktorrent sorts its keys: "info" comes last but for "url-list", so the
			// info dictionary ends there or at the final 'e'. An independent hash:
			start := bytes.Index(data, []byte("4:infod")) + len("4:info")
			end := len(data) - 1
			if j := bytes.LastIndex(data, []byte("8:url-list")); j > start {
				end = j
			}
			if sha1.Sum(data[start:end]) != m.InfoHash {
				t.Errorf("InfoHash = %s, want sha1 of bytes [%d, %d) of the file", m.HexHash(), start, end)
			}
			if lt := libtorrentHash(t, out); lt == "" {
				t.Log("libtorrent not available; info hash not cross-checked")
			} else if lt != m.HexHash() {
				t.Errorf("InfoHash = %s, libtorrent says %s", m.HexHash(), lt)
			}
		})
	}
}
