package create

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// entry is one thing in a generated tree: a file of size seeded-random bytes, an empty
// directory (dir), or a symbolic link (link is its target).
type entry struct {
	path string // '/'-separated, below the root
	size int
	dir  bool
	link string
}

// tree is the directory the tests share with mktorrent_test.go: nested directories,
// odd sizes, names whose bytewise order differs from a per-directory walk, a hidden
// file, an empty file, an empty directory, and symlinks to a file and to a directory.
// 4.5 MB in all, so pieces of 32 KiB to 1 MiB span files.
var tree = []entry{
	{path: ".hidden", size: 7},
	{path: "B/upper.bin", size: 40_000},
	{path: "a-b", size: 100_001},
	{path: "a.txt", size: 1_234}, // smaller than any piece
	{path: "a/sub/deep/x.bin", size: 1_500_000},
	{path: "a/sub/y.bin", size: 777_777},
	{path: "a/z", size: 0},
	{path: "b/c/d/e.dat", size: 1_000_003},
	{path: "c-link", link: "b/c"},
	{path: "empty", dir: true},
	{path: "link", link: "a.txt"},
	{path: "zlast", size: 65_537},
}

// treeOrder is the torrent order of tree, the one mktorrent writes.
var treeOrder = []string{
	".hidden", "B/upper.bin", "a-b", "a.txt", "a/sub/deep/x.bin", "a/sub/y.bin", "a/z",
	"b/c/d/e.dat", "c-link/d/e.dat", "link", "zlast",
}

// writeTree creates entries below root, file contents from a seed per file.
func writeTree(t testing.TB, root string, entries []entry) {
	t.Helper()
	for i, e := range entries {
		p := filepath.Join(root, filepath.FromSlash(e.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case e.dir:
			err = os.MkdirAll(p, 0o755)
		case e.link != "":
			err = os.Symlink(filepath.FromSlash(e.link), p)
		default:
			err = os.WriteFile(p, payload(uint64(i), e.size), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// payload returns n seeded random bytes.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func build(t *testing.T, path string, opt Options) *metainfo.MetaInfo {
	t.Helper()
	data, err := Build(t.Context(), path, opt)
	if err != nil {
		t.Fatalf("Build(%s): %v", path, err)
	}
	m, err := metainfo.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("metainfo.Parse(Build(%s)): %v", path, err)
	}
	return m
}

// checkPieces reads the files of info below dir, in torrent order, and checks every
// piece hash against the data.
func checkPieces(t *testing.T, info *metainfo.Info, dir string) {
	t.Helper()
	var all []byte
	for _, f := range info.Files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.Join(f.Path...)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
	}
	if int64(len(all)) != info.Length {
		t.Fatalf("Length = %d, files hold %d bytes", info.Length, len(all))
	}
	for i := range info.NumPieces() {
		off, size := info.PieceOffset(i), info.PieceSize(i)
		if sha1.Sum(all[off:off+size]) != info.PieceHash(i) {
			t.Errorf("piece %d [%d, %d): hash mismatch", i, off, off+size)
		}
	}
}

func TestBuildRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "tree"), tree)
	if err := os.WriteFile(filepath.Join(dir, "single.bin"), payload(99, 2_345_679), 0o644); err != nil {
		t.Fatal(err)
	}
	tiers := [][]string{{"http://127.0.0.1:6969/announce", "udp://127.0.0.1:6970"}, {"https://tracker.example/a?k=v"}}
	for _, tc := range []struct {
		name      string
		path      string
		opt       Options
		files     []string // paths below the name, in order; nil for single-file
		trackers  [][]string
		hasList   bool // announce-list written
		createdBy string
	}{
		{
			name: "tree, tiers, private, web seeds",
			path: "tree",
			opt: Options{PieceLength: 32 << 10, Trackers: tiers, Private: true, Comment: "généré",
				WebSeeds: []string{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/x"}, CreatedBy: "test"},
			files: treeOrder, trackers: tiers, hasList: true, createdBy: "test",
		},
		{
			name:  "tree, auto piece length, one tracker, one web seed",
			path:  "tree",
			opt:   Options{Trackers: [][]string{{"http://t/announce"}}, WebSeeds: []string{"http://w/"}},
			files: treeOrder, trackers: [][]string{{"http://t/announce"}}, createdBy: DefaultCreatedBy,
		},
		{
			name:     "single file, one tier of two, piece larger than the file",
			path:     "single.bin",
			opt:      Options{PieceLength: 4 << 20, Trackers: [][]string{{"http://a/", "http://b/"}}},
			trackers: [][]string{{"http://a/", "http://b/"}}, hasList: true, createdBy: DefaultCreatedBy,
		},
		{
			name:      "single file, trackerless",
			path:      "single.bin",
			opt:       Options{PieceLength: MinPieceLength, NoDate: true, Workers: 3},
			createdBy: DefaultCreatedBy,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second).Truncate(time.Second)
			m := build(t, filepath.Join(dir, tc.path), tc.opt)
			in := &m.Info
			if in.Name != tc.path {
				t.Errorf("Name = %q, want %q", in.Name, tc.path)
			}
			wantPL := tc.opt.PieceLength
			if wantPL == 0 {
				wantPL = AutoPieceLength(in.Length)
			}
			if in.PieceLength != wantPL {
				t.Errorf("PieceLength = %d, want %d", in.PieceLength, wantPL)
			}
			if in.MultiFile != (tc.files != nil) {
				t.Errorf("MultiFile = %v, want %v", in.MultiFile, tc.files != nil)
			}
			if tc.files != nil {
				var got []string
				for _, f := range in.Files {
					got = append(got, strings.Join(f.Path[1:], "/"))
				}
				if !slices.Equal(got, tc.files) {
					t.Errorf("files = %q, want %q", got, tc.files)
				}
			}
			if in.Private != tc.opt.Private {
				t.Errorf("Private = %v, want %v", in.Private, tc.opt.Private)
			}
			if got := m.Trackers(); !reflect.DeepEqual(got, tc.trackers) {
				t.Errorf("Trackers() = %q, want %q", got, tc.trackers)
			}
			if (m.AnnounceList != nil) != tc.hasList {
				t.Errorf("AnnounceList = %q, want one: %v", m.AnnounceList, tc.hasList)
			}
			if len(tc.trackers) > 0 && m.Announce != tc.trackers[0][0] {
				t.Errorf("Announce = %q, want %q", m.Announce, tc.trackers[0][0])
			}
			if m.Comment != tc.opt.Comment || m.CreatedBy != tc.createdBy {
				t.Errorf("Comment, CreatedBy = %q, %q, want %q, %q", m.Comment, m.CreatedBy, tc.opt.Comment, tc.createdBy)
			}
			if !slices.Equal(m.URLList, tc.opt.WebSeeds) {
				t.Errorf("URLList = %q, want %q", m.URLList, tc.opt.WebSeeds)
			}
			if tc.opt.NoDate != m.CreationDate.IsZero() || !tc.opt.NoDate && m.CreationDate.Before(before) {
				t.Errorf("CreationDate = %v, NoDate = %v, built after %v", m.CreationDate, tc.opt.NoDate, before)
			}
			checkPieces(t, in, filepath.Dir(filepath.Join(dir, tc.path)))
		})
	}
}

// TestBuildWorkers checks that the output does not depend on the number of workers,
// nor on how pieces fall into read chunks (16 KiB pieces: 64 per chunk).
func TestBuildWorkers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir, tree)
	for _, pl := range []int64{MinPieceLength, 1 << 20, 8 << 20} {
		var want []byte
		for _, workers := range []int{1, 2, 7} {
			opt := Options{PieceLength: pl, NoDate: true, Workers: workers}
			got, err := Build(t.Context(), dir, opt)
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = got
			} else if !bytes.Equal(got, want) {
				t.Errorf("Build(%+v) differs from Build with 1 worker", opt)
			}
		}
	}
}

func TestAutoPieceLength(t *testing.T) {
	const (
		KiB = int64(1) << 10
		MiB = KiB << 10
		GiB = MiB << 10
	)
	for _, tc := range []struct {
		total, want int64
	}{
		{1, 16 * KiB},
		{2000 * 16 * KiB, 16 * KiB}, // 2000 pieces: the most at one size
		{2000*16*KiB + 1, 32 * KiB}, // 2001 would be too many: 1001 of 32 KiB
		{64 * MiB, 64 * KiB},        // 1024 pieces
		{700 * MiB, 512 * KiB},      // 1400
		{4 * GiB, 4 * MiB},          // 1024
		{2000 * 16 * MiB, 16 * MiB},
		{1 << 40, 16 * MiB}, // capped: 65536 pieces
	} {
		t.Run(strconv.FormatInt(tc.total, 10), func(t *testing.T) {
			got := AutoPieceLength(tc.total)
			if got != tc.want {
				t.Errorf("AutoPieceLength(%d) = %d, want %d", tc.total, got, tc.want)
			}
			if n := numPieces(tc.total, got); got > MinPieceLength && got < autoMaxPieceLength && (n <= 1000 || n > 2000) {
				t.Errorf("AutoPieceLength(%d) = %d: %d pieces, want 1001-2000", tc.total, got, n)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, []entry{
		{path: "file", size: 100},
		{path: "emptydir", dir: true},
		{path: "hollow/a/b", dir: true},
		{path: "hollow/zero", size: 0},
		{path: "zero", size: 0},
		{path: "dangling/x", size: 1},
		{path: "dangling/to-nothing", link: "nothing"},
		{path: "loop/d/f", size: 1},
		{path: "loop/d/up", link: ".."},
		{path: "names/ok", size: 1},
		{path: `names/back\slash`, size: 1},
	})
	file := filepath.Join(dir, "file")
	for _, tc := range []struct {
		name string
		path string
		opt  Options
		want string // in the error
	}{
		{"missing", filepath.Join(dir, "nope"), Options{}, "no such file"},
		{"empty dir", filepath.Join(dir, "emptydir"), Options{}, "total length is 0"},
		{"only empty files and dirs", filepath.Join(dir, "hollow"), Options{}, "total length is 0"},
		{"empty file", filepath.Join(dir, "zero"), Options{}, "total length is 0"},
		{"dangling symlink", filepath.Join(dir, "dangling"), Options{}, "to-nothing: no such file"},
		{"symlink loop", filepath.Join(dir, "loop"), Options{}, "symbolic link loop"},
		{"backslash in a name", filepath.Join(dir, "names"), Options{}, `names/back\slash: name contains '\\'`},
		{"piece length not a power of two", file, Options{PieceLength: 48 << 10}, "piece length 49152: must be a power of two"},
		{"piece length too small", file, Options{PieceLength: 8 << 10}, "piece length 8192"},
		{"piece length negative", file, Options{PieceLength: -1}, "piece length -1"},
		{"piece length too large", file, Options{PieceLength: 512 << 20}, "piece length 536870912"},
		{"tracker does not parse", file, Options{Trackers: [][]string{{"http://a/"}, {"http://[::1"}}}, "trackers[1][0]: parse"},
		{"tracker relative", file, Options{Trackers: [][]string{{"http://a/", "tracker"}}}, `trackers[0][1]: "tracker": not an absolute URL`},
		{"tracker empty", file, Options{Trackers: [][]string{{""}}}, `trackers[0][0]: "": not an absolute URL`},
		{"empty tier", file, Options{Trackers: [][]string{{"http://a/"}, {}}}, "trackers[1]: empty tier"},
		{"web seed", file, Options{WebSeeds: []string{"http://w/", "/seed"}}, `web seeds[1]: "/seed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Build(t.Context(), tc.path, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "create: ") {
				t.Fatalf("Build(%s, %+v) = %d bytes, %v; want an error with %q", tc.path, tc.opt, len(data), err, tc.want)
			}
		})
	}
	if _, err := Build(t.Context(), filepath.Join(dir, "hollow"), Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("Build(hollow) = %v, want ErrEmpty", err)
	}
}

// TestBuildSkipsSpecialFiles checks that a FIFO, which would block a reader forever, is
// left out, as mktorrent does.
func TestBuildSkipsSpecialFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	writeTree(t, dir, []entry{{path: "a", size: 10}, {path: "z", size: 5}})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	m := build(t, dir, Options{})
	if got := len(m.Info.Files); got != 2 || m.Info.Length != 15 {
		t.Errorf("Files = %+v, want a and z, 15 bytes", m.Info.Files)
	}
}

// TestHashChangedFile checks that a file that is not the size it was listed with is an
// error, whether it shrank or grew.
func TestHashChangedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, payload(1, 50_000), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		listed int64
		want   string
	}{
		{"shrank", 60_000, "file shrank while hashing"},
		{"grew", 40_000, "file size changed while hashing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := []file{{osPath: p, length: tc.listed}}
			_, err := hashPieces(t.Context(), files, tc.listed, MinPieceLength, 2)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("hashPieces = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBuildCanceled(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir, tree)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Build(ctx, dir, Options{Workers: 4}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Build(canceled) = %v, want context.Canceled", err)
	}
	// Canceled in the middle of hashing, or not at all: the workers must be gone.
	ctx, cancel = context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if _, err := Build(ctx, dir, Options{PieceLength: MinPieceLength, Workers: 4}); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Build(canceled midway) = %v, want nil or context.DeadlineExceeded", err)
	}
	// A worker still counts for a moment after wg.Wait has seen it done.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines: %d before, %d after", before, after)
	}
}

// BenchmarkBuild hashes a 64 MiB file, read from the page cache after the first round,
// with the automatic piece length (64 KiB), by one worker and by GOMAXPROCS workers.
func BenchmarkBuild(b *testing.B) {
	const size = 64 << 20
	p := filepath.Join(b.TempDir(), "payload.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(64, 0x5eed))
	var word [8]byte
	for range size / 8 {
		v := r.Uint64()
		for i := range word {
			word[i] = byte(v >> (8 * i))
		}
		w.Write(word[:])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			var start syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &start)
			b.SetBytes(size)
			for b.Loop() {
				if _, err := Build(b.Context(), p, Options{NoDate: true, Workers: workers}); err != nil {
					b.Fatal(err)
				}
			}
			var end syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &end)
			mib := float64(b.N) * size / (1 << 20)
			cpu := time.Duration(end.Utime.Nano() + end.Stime.Nano() - start.Utime.Nano() - start.Stime.Nano())
			b.ReportMetric(mib/b.Elapsed().Seconds(), "MiB/s") // SetBytes' MB/s is 10^6 bytes
			b.ReportMetric(cpu.Seconds()/(mib/1024), "CPU-s/GiB")
			b.ReportMetric(float64(end.Maxrss)/1024, "peak-RSS-MiB") // Linux: Maxrss is in KiB
		})
	}
}
