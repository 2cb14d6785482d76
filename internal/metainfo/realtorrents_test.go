package metainfo_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// realTorrentsDir holds .torrent files from other projects' test data (see its SOURCES.md),
// beside the module root: ../shared/realtorrents. They are never copied into the project.
const realTorrentsDir = "../../../shared/realtorrents"

// ltParse prints one JSON line per .torrent named on the command line: what libtorrent
// (python3-libtorrent, the reference parser) makes of it.
const ltParse = `
import json, sys, libtorrent as lt
flags = (("p", 1), ("h", 2), ("x", 4), ("l", 8)) # file_storage.flag_pad_file, ...
for path in sys.argv[1:]:
    r = {"file": path.rsplit("/", 1)[-1]}
    try:
        ti = lt.torrent_info(path)
    except Exception as e:
        r["error"] = str(e) or type(e).__name__
        print(json.dumps(r)); continue
    fs, ih = ti.files(), ti.info_hashes()
    r.update(v1=str(ih.v1) if ih.has_v1() else "", name=ti.name(), total=ti.total_size(),
             pieces=ti.num_pieces(), piece_length=ti.piece_length(), files=[])
    for i in range(fs.num_files()):
        fl = int(fs.file_flags(i))
        f = {"path": fs.file_path(i), "size": fs.file_size(i),
             "attr": "".join(c for c, bit in flags if fl & bit), "pad": bool(fl & 1)}
        if fl & 8:
            f["symlink"] = fs.symlink(i)
        r["files"].append(f)
    print(json.dumps(r))
`

// parsed is what a parser makes of one .torrent, in the form ltParse prints.
type parsed struct {
	File        string       `json:"file"`
	Error       string       `json:"error,omitempty"`
	V1          string       `json:"v1,omitempty"`
	Name        string       `json:"name,omitempty"`
	Total       int64        `json:"total,omitempty"`
	Pieces      int          `json:"pieces,omitempty"`
	PieceLength int64        `json:"piece_length,omitempty"`
	Files       []parsedFile `json:"files,omitempty"`
}

type parsedFile struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	Attr    string `json:"attr"`
	Pad     bool   `json:"pad"`
	Symlink string `json:"symlink,omitempty"`
}

// deliberateDifferences lists the real torrents on which BitStorm deliberately disagrees
// with libtorrent, keyed by file name: libtorrent opens each of them and BitStorm refuses
// it with an error containing refusal, for the reason given. Anything else that differs
// fails TestRealTorrents.
var deliberateDifferences = map[string]struct{ refusal, reason string }{
	// BEP 52 v2-only torrents: BitStorm joins v1 swarms (hybrids included) and does not
	// hash v2's merkle trees yet.
	"anacrolix__bittorrent-v2-test.torrent": {"v2-only torrents are not supported yet", "v2-only"},
	"libtorrent__base-v2.torrent":           {"v2-only torrents are not supported yet", "v2-only"},
	"libtorrent__v2_only.torrent":           {"v2-only torrents are not supported yet", "v2-only"},
	"libtorrent__v2_symlinks.torrent":       {"v2-only torrents are not supported yet", "v2-only"},

	// Unsafe paths: libtorrent sanitises them into other paths (a '/' removed, ".."
	// dropped, a ".." name replaced by the info hash); BitStorm refuses a torrent whose
	// paths could leave the output directory (testdata/malicious holds more of them).
	"libtorrent__absolute_filename.torrent": {`info.files[1].path[0]: "/foobar" contains '/'`, "absolute path"},
	"libtorrent__parent_path.torrent":       {`info.files[0].path[0]: ".." is not allowed`, "parent directory in a path"},
	"libtorrent__slash_path3.torrent":       {`info.name: "temp/../../abc" contains '/'`, "separators and .. in the name"},
	"libtorrent__invalid_name2.torrent":     {`info.name: ".." is not allowed`, "name .."},

	// Paths that name no file, or one file twice: libtorrent invents names ("_" for an
	// empty component, "bar.1.txt" for a second "bar.txt"); BitStorm refuses, since the
	// creator's layout cannot be followed and two files at one path would corrupt each other.
	"libtorrent__empty_path_multi.torrent": {"info.files[1].path[0]: must not be empty", "empty path component"},
	"libtorrent__duplicate_files.torrent":  {"info.files[1].path: same path as info.files[0]", "two files at one path"},
	"libtorrent__duplicate_files2.torrent": {"info.files[1].path: same path as info.files[0]", "two files at one path"},
	"transmission__dup-files.torrent":      {"info.files[2].path: same path as info.files[0]", "two files at one path"},

	// A piece is assembled and hashed in memory: metainfo.MaxPieceLength (256 MiB) bounds it.
	"libtorrent__large_piece_size.torrent": {"info.piece length: 536854528 exceeds the limit", "512 MiB pieces"},
	// Two "pieces" keys in one dictionary: libtorrent reads the first, other decoders the
	// last, and the info hash covers both; internal/bencode refuses duplicate keys.
	"transmission__dup-pieces-key.torrent": {`duplicate dictionary key "pieces"`, "duplicate key"},
}

// TestRealTorrents parses every torrent of realTorrentsDir with metainfo.Load and with
// libtorrent and compares the two: both refuse it, or both accept it with the same v1
// info hash, name, total size, piece count, piece length and files (path, size, BEP 47
// attributes, padding flag and symlink target). A disagreement must be listed in
// deliberateDifferences. Run with -v for the summary line.
func TestRealTorrents(t *testing.T) {
	dir := realTorrentsDir
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI has a copy of shared/ beside the clone", dir)
		}
		t.Skipf("%s is missing", dir)
	}
	torrents, err := filepath.Glob(filepath.Join(dir, "*.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if len(torrents) == 0 {
		t.Fatalf("no .torrent in %s", dir)
	}
	swarmtest.Require(t, swarmtest.Libtorrent)
	ref := libtorrentParse(t, torrents)

	var agree, differ, refuse, listed int
	for _, path := range torrents {
		name := filepath.Base(path)
		lt, ok := ref[name]
		if !ok {
			t.Errorf("%s: libtorrent printed nothing", name)
			continue
		}
		bs := bitstormParse(path)
		dd, isListed := deliberateDifferences[name]
		switch {
		case lt.Error != "" && bs.Error != "":
			agree++
		case lt.Error == "" && bs.Error != "":
			refuse++
			if isListed && strings.Contains(bs.Error, dd.refusal) {
				listed++
				continue
			}
			t.Errorf("%s: libtorrent opens it, BitStorm refuses it: %s", name, bs.Error)
		case lt.Error != "" && bs.Error == "":
			differ++
			t.Errorf("%s: libtorrent refuses it (%s), BitStorm opens it", name, lt.Error)
		default:
			if diff := compareParsed(bs, lt); diff != "" {
				differ++
				t.Errorf("%s: BitStorm and libtorrent differ:\n%s", name, diff)
				continue
			}
			agree++
		}
		if isListed {
			t.Errorf("%s: listed in deliberateDifferences (%s), but the parsers do not differ that way", name, dd.reason)
		}
	}
	t.Logf("real torrents vs libtorrent: %d files: %d agree, %d differ, %d refuse (%d of them deliberate)",
		len(torrents), agree, differ, refuse, listed)
	for name := range deliberateDifferences {
		if !slices.ContainsFunc(torrents, func(p string) bool { return filepath.Base(p) == name }) {
			t.Errorf("deliberateDifferences lists %s, which is not in %s", name, dir)
		}
	}
}

// libtorrentParse runs ltParse on torrents and returns its verdicts by file name.
func libtorrentParse(t *testing.T, torrents []string) map[string]parsed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, swarmtest.Python, append([]string{"-I", "-c", ltParse}, torrents...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("libtorrent: %v\n%s", err, stderr.String())
	}
	res := make(map[string]parsed)
	for line := range strings.Lines(string(out)) {
		var p parsed
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("libtorrent: %v in %q", err, line)
		}
		res[p.File] = p
	}
	return res
}

// bitstormParse is what metainfo.Load makes of the torrent at path, in ltParse's form.
func bitstormParse(path string) parsed {
	p := parsed{File: filepath.Base(path)}
	m, err := metainfo.Load(path)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	in := &m.Info
	p.V1 = hex.EncodeToString(m.InfoHash[:])
	p.Name, p.Total, p.Pieces, p.PieceLength = in.Name, in.Length, in.NumPieces(), in.PieceLength
	for _, f := range in.Files {
		p.Files = append(p.Files, parsedFile{
			Path: strings.Join(f.Path, "/"), Size: f.Length, Attr: f.Attr.String(), Pad: f.IsPad(),
			Symlink: strings.Join(f.SymlinkPath, "/"),
		})
	}
	return p
}

// compareParsed describes how BitStorm's parse bs differs from libtorrent's lt, or
// returns "" when they agree.
func compareParsed(bs, lt parsed) string {
	var d strings.Builder
	field := func(name string, got, want any) {
		if got != want {
			fmt.Fprintf(&d, "  %s: BitStorm %v, libtorrent %v\n", name, got, want)
		}
	}
	field("info hash v1", bs.V1, lt.V1)
	field("name", bs.Name, lt.Name)
	field("total size", bs.Total, lt.Total)
	field("pieces", bs.Pieces, lt.Pieces)
	field("piece length", bs.PieceLength, lt.PieceLength)
	field("files", len(bs.Files), len(lt.Files))
	for i := range min(len(bs.Files), len(lt.Files)) {
		b, l := bs.Files[i], lt.Files[i]
		if b.Pad && l.Pad {
			// Padding never reaches the disk, and libtorrent renames it after the v2
			// layout in a hybrid torrent (.pad/N): its path does not matter.
			b.Path = l.Path
		}
		if b != l {
			fmt.Fprintf(&d, "  files[%d]: BitStorm %+v, libtorrent %+v\n", i, bs.Files[i], lt.Files[i])
		}
	}
	return d.String()
}
