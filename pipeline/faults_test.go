package pipeline_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackpal/bencode-go"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/storage"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// ---- Tracker faults ----

// compactPeerList is the "peers" string of a BEP 23 reply listing addrs (IPv4).
func compactPeerList(addrs ...netip.AddrPort) string {
	b := make([]byte, 0, 6*len(addrs))
	for _, a := range addrs {
		ip := a.Addr().As4()
		b = append(b, ip[:]...)
		b = append(b, byte(a.Port()>>8), byte(a.Port()))
	}
	return string(b)
}

// announceReply is a bencoded tracker reply with peers and a long interval.
func announceReply(t *testing.T, peers string) []byte {
	var buf bytes.Buffer
	if err := bencode.Marshal(&buf, map[string]any{"interval": 1800, "peers": peers}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// scriptedTracker is an HTTP tracker on 127.0.0.1 that answers the n-th announce (from 0)
// with answer(n, w, r), and records the event of each announce.
type scriptedTracker struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []string
	times  []time.Time
}

func newScriptedTracker(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *scriptedTracker {
	st := &scriptedTracker{}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		n := len(st.events)
		st.events = append(st.events, r.URL.Query().Get("event"))
		st.times = append(st.times, time.Now())
		st.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(st.srv.Close)
	return st
}

func (st *scriptedTracker) URL() string { return st.srv.URL + "/announce" }

func (st *scriptedTracker) Events() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.events...)
}

// Gaps returns the time between one announce and the next.
func (st *scriptedTracker) Gaps() []time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(st.times); i++ {
		gaps = append(gaps, st.times[i].Sub(st.times[i-1]).Round(time.Millisecond))
	}
	return gaps
}

// hangAnnounce answers nothing until the client gives up (its timeout) or the server closes.
func hangAnnounce(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// TestTrackerFaults: a tracker that times out, fails with HTTP 500, answers garbage or
// redirects is retried with backoff; the download completes once an answer comes, and the
// run fails with ErrTrackerUnreachable, saying why, when none ever does.
func TestTrackerFaults(t *testing.T) {
	garbage := [][]byte{
		[]byte("<html><body>502 Bad Gateway</body></html>"),
		[]byte("d8:intervali1800e5:peers"), // truncated
		[]byte("li1ei2ee"),                 // a list, not a dictionary
		[]byte("d5:peers3:abce"),           // no interval, peers not a multiple of 6
		[]byte("d14:failure reason11:not allowede"),
		{0xde, 0xad, 0xbe, 0xef, 0x00, 0xff},
	}
	tests := []struct {
		name     string
		failures int // failed announces before the good one; -1: never good
		fail     func(n int, w http.ResponseWriter, r *http.Request)
		redirect bool          // the good answer comes through a redirect
		wantErr  string        // when failures is -1
		timeout  time.Duration // the HTTP client's (default 10s)
	}{
		{name: "timeouts then an answer", failures: 2, timeout: 200 * time.Millisecond,
			fail: func(_ int, w http.ResponseWriter, r *http.Request) { hangAnnounce(w, r) }},
		{name: "always times out", failures: -1, timeout: 200 * time.Millisecond,
			fail:    func(_ int, w http.ResponseWriter, r *http.Request) { hangAnnounce(w, r) },
			wantErr: "Client.Timeout exceeded"},
		{name: "HTTP 500 then an answer", failures: 3, fail: func(_ int, w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "internal error", http.StatusInternalServerError)
		}},
		{name: "always HTTP 500", failures: -1, fail: func(_ int, w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "internal error", http.StatusInternalServerError)
		}, wantErr: "http status 500"},
		{name: "garbage then an answer", failures: len(garbage), fail: func(n int, w http.ResponseWriter, _ *http.Request) {
			w.Write(garbage[n])
		}},
		{name: "always garbage", failures: -1, fail: func(n int, w http.ResponseWriter, _ *http.Request) {
			w.Write(garbage[n%3])
		}, wantErr: "bad response"},
		{name: "body larger than 4 MiB", failures: -1, fail: func(n int, w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("d8:intervali1800e5:peers5000000:"))
			w.Write(make([]byte, 5_000_000))
		}, wantErr: "larger than"},
		{name: "redirect to a working tracker", failures: 0, redirect: true},
		{name: "redirect loop", failures: -1, fail: func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}, wantErr: "redirects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			tor := stagetest.NewTorrent(t, 50, "tracked", 32<<10, 200_000)
			honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
			good := announceReply(t, compactPeerList(honest.Addr()))
			target := stagetest.NewFakeTracker(t, honest.Addr())
			tr := newScriptedTracker(t, func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case tc.failures >= 0 && n >= tc.failures && tc.redirect:
					http.Redirect(w, r, target.URL()+"?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
				case tc.failures >= 0 && n >= tc.failures:
					w.Write(good)
				default:
					tc.fail(n, w, r)
				}
			})
			src := &stages.Tracker{Tiers: [][]string{{tr.URL()}}, Client: &http.Client{Timeout: cmp.Or(tc.timeout, 10*time.Second)},
				MaxFailures: max(tc.failures+1, 3), Backoff: 10 * time.Millisecond, StopTimeout: 200 * time.Millisecond}
			store := stagetest.NewMemStorage(tor.Meta.Info.Length)
			err, rec := run(t, tor, 30*time.Second, pipeline.WithPeerSource(src), pipeline.WithStorage(store))
			events := tr.Events()
			t.Logf("Run() = %v after %d announces %q, %v apart (backoff from %v, doubling)", err, len(events), events, tr.Gaps(), src.Backoff)
			if tc.failures < 0 {
				if !errors.Is(err, stages.ErrTrackerUnreachable) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Run() = %v, want %v mentioning %q", err, stages.ErrTrackerUnreachable, tc.wantErr)
				}
				if len(events) < src.MaxFailures {
					t.Errorf("tracker heard %d announces, want at least %d (one per attempt)", len(events), src.MaxFailures)
				}
				if failed := trackerFailures(rec, tr.URL()); failed != src.MaxFailures {
					t.Errorf("%d TrackerFailed events, want %d (one per attempt)", failed, src.MaxFailures)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run() = %v, want nil", err)
			}
			if !bytes.Equal(store.Bytes(), tor.Data) {
				t.Fatal("downloaded bytes differ from the payload")
			}
			// Every attempt until the first answer is a "started" announce.
			for i := 0; i <= tc.failures && i < len(events); i++ {
				if events[i] != "started" {
					t.Errorf("announce %d had event %q, want started (events %q)", i, events[i], events)
				}
			}
			if failed := trackerFailures(rec, tr.URL()); failed != tc.failures {
				t.Errorf("%d TrackerFailed events, want %d (one per failed announce)", failed, tc.failures)
			}
			if replies := eventsOf(&rec.eventLog, func(stages.TrackerReply) bool { return true }); len(replies) == 0 || replies[0].Peers != 1 {
				t.Errorf("tracker replies %+v, want the first with the one honest peer", replies)
			}
			if tc.redirect {
				if got := target.Events(); len(got) == 0 || got[0] != "started" {
					t.Errorf("redirect target heard %q, want a started announce first", got)
				}
			}
		})
	}
}

// trackerFailures counts rec's TrackerFailed events of url, tier 0, with an error.
func trackerFailures(rec *runLog, url string) int {
	return len(eventsOf(&rec.eventLog, func(e stages.TrackerFailed) bool { return e.URL == url && e.Tier == 0 && e.Err != nil }))
}

// TestTrackerHundredThousandPeers: a tracker answers with 100,000 compact peers, all on
// loopback and refusing connections but one honest peer. At most tracker.MaxPeers are kept,
// the dial queue holds at most DialConfig.MaxQueue and drops the rest, the heap stays
// bounded, and the download completes from the honest peer, which serves only once the
// whole reply has gone to the dialer.
func TestTrackerHundredThousandPeers(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 51, "crowded", 32<<10, 500_000)
	// The honest peer serves once the tracker's reply, cut to tracker.MaxPeers, has gone
	// to the dialer: the announce stage reports it after the last address.
	rec := &runLog{}
	announced := make(chan struct{})
	var once sync.Once
	events := func(e stages.Event) {
		rec.add(e)
		if r, ok := e.(stages.TrackerReply); ok && r.Peers == 20_000 {
			once.Do(func() { close(announced) })
		}
	}
	honest := stagetest.NewHostilePeer(t, tor, stagetest.RightHandshake, stagetest.After(announced, stagetest.Seed))
	// Holding 127.0.0.1:port keeps anyone else from listening on it for all of 127/8
	// (0.0.0.0:port would clash), so dials to 127.x.y.z:port are refused at once.
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	port := uint16(hold.Addr().(*net.TCPAddr).Port)
	const n = 100_000
	peers := make([]netip.AddrPort, 0, n)
	for i := range n - 1 {
		if i == 100 {
			peers = append(peers, honest.Addr())
		}
		ip := netip.AddrFrom4([4]byte{127, byte(1 + i>>16), byte(i >> 8), byte(i)})
		peers = append(peers, netip.AddrPortFrom(ip, port))
	}
	body := announceReply(t, compactPeerList(peers...))
	tr := newScriptedTracker(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	const maxQueue = 500
	src := &stages.Tracker{Tiers: [][]string{{tr.URL()}}, StopTimeout: 200 * time.Millisecond}
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	peaks := sampleMemory(t)
	err, _ = run(t, tor, 30*time.Second, pipeline.WithPeerSource(src), pipeline.WithStorage(store),
		withConfig(pipeline.Config{Dial: stages.DialConfig{MaxQueue: maxQueue, MaxHalfOpen: 8}}),
		pipeline.WithEvents(events))
	heap, _ := peaks()
	if err != nil {
		t.Fatalf("Run() = %v, want nil; tracker replies %+v, honest peer's errors %v",
			err, eventsOf(&rec.eventLog, func(stages.TrackerReply) bool { return true }), honest.Errs())
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	dropped := 0
	for _, e := range eventsOf(&rec.eventLog, func(stages.PeerListFull) bool { return true }) {
		dropped += e.Discarded
	}
	dialed := make(map[netip.AddrPort]bool)
	for _, e := range eventsOf(&rec.eventLog, func(stages.DialFailed) bool { return true }) {
		dialed[e.Addr] = true
	}
	t.Logf("reply of %d KiB with %d peers: %d addresses dropped at the full dial queue, %d dialed; peak heap %.1f MiB",
		len(body)>>10, n, dropped, len(dialed), float64(heap)/(1<<20))
	if dropped == 0 {
		t.Errorf("no address was dropped: the dial queue bound (%d) did not act", maxQueue)
	}
	if len(dialed)+dropped > 20_000 {
		t.Errorf("%d addresses dialed or dropped, want at most the %d a reply may carry", len(dialed)+dropped, 20_000)
	}
	if heap > 256<<20 {
		t.Errorf("peak heap %.1f MiB, want under 256 MiB", float64(heap)/(1<<20))
	}
}

// ---- Malicious torrents ----

// TestZeroLengthFiles: zero-length files first, between others, last, and alone in a
// directory are created empty, and the rest downloads around them.
func TestZeroLengthFiles(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 52, "zeros", 16<<10, 0, 40_000, 0, 0, 25_000, 0)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	dir := t.TempDir()
	err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(honest)), withConfig(pipeline.Config{OutDir: dir}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	checkPayloadFiles(t, dir, tor)
}

// dirSnapshot lists every file below dir with its contents, to show that nothing changed.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			out[rel] = "-> " + target
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			st, _ := d.Info()
			out[rel] = fmt.Sprintf("%q mtime %d", b, st.ModTime().UnixNano())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameDirSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPlantedSymlinks: a symbolic link planted in the output directory where a file or
// directory of the torrent goes, or where the resume record goes, and pointing outside it,
// is refused with storage.ErrUnsafePath, and nothing outside the output directory changes.
func TestPlantedSymlinks(t *testing.T) {
	single := stagetest.NewTorrent(t, 53, "single.bin", 16<<10, 50_000)
	multi := stagetest.NewTorrent(t, 54, "multi", 16<<10, 30_000, 20_000)
	tests := []struct {
		name  string
		tor   *stagetest.Torrent
		plant func(t *testing.T, out, outside string) // plants links in out, toward outside
	}{
		{"the single file, to an existing file", single, func(t *testing.T, out, outside string) {
			plantLink(t, filepath.Join(outside, "precious"), filepath.Join(out, "single.bin"))
		}},
		{"the single file, to a file that does not exist", single, func(t *testing.T, out, outside string) {
			plantLink(t, filepath.Join(outside, "created"), filepath.Join(out, "single.bin"))
		}},
		{"the torrent's directory", multi, func(t *testing.T, out, outside string) {
			plantLink(t, outside, filepath.Join(out, "multi"))
		}},
		{"a file inside the torrent's directory", multi, func(t *testing.T, out, outside string) {
			if err := os.Mkdir(filepath.Join(out, "multi"), 0o755); err != nil {
				t.Fatal(err)
			}
			plantLink(t, filepath.Join(outside, "precious"), filepath.Join(out, "multi", "f1.bin"))
		}},
		{"relative link up and out", multi, func(t *testing.T, out, outside string) {
			rel, err := filepath.Rel(out, outside)
			if err != nil {
				t.Fatal(err)
			}
			plantLink(t, rel, filepath.Join(out, "multi"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			base := t.TempDir()
			out, outside := filepath.Join(base, "out"), filepath.Join(base, "outside")
			for _, d := range []string{out, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(outside, "precious"), []byte("do not touch"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, out, outside)
			before := dirSnapshot(t, outside)

			if s, err := storage.Open(out, &tc.tor.Meta.Info); !errors.Is(err, storage.ErrUnsafePath) {
				if s != nil {
					s.Close()
				}
				t.Errorf("storage.Open() = %v, want %v", err, storage.ErrUnsafePath)
			}
			honest := stagetest.NewFakePeer(t, tc.tor, stagetest.Honest)
			err, _ := run(t, tc.tor, 30*time.Second, pipeline.WithPeerSource(addrs(honest)), withConfig(pipeline.Config{OutDir: out}))
			if !errors.Is(err, storage.ErrUnsafePath) {
				t.Errorf("Run() = %v, want %v", err, storage.ErrUnsafePath)
			}
			if after := dirSnapshot(t, outside); !sameDirSnapshot(before, after) {
				t.Errorf("the directory outside changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestPlantedResumeDirSymlink: the resume record's directory, .bitstorm in the output
// directory, planted as a link to a directory outside, is not written through.
func TestPlantedResumeDirSymlink(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 55, "resumed", 16<<10, 300_000)
	base := t.TempDir()
	out, outside := filepath.Join(base, "out"), filepath.Join(base, "outside")
	for _, d := range []string{out, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	plantLink(t, outside, filepath.Join(out, ".bitstorm"))
	before := dirSnapshot(t, outside)
	interruptedRun(t, tor, out, time.Millisecond) // the record is saved many times over
	if after := dirSnapshot(t, outside); !sameDirSnapshot(before, after) {
		t.Errorf("the directory outside changed:\nbefore %q\nafter  %q", before, after)
	}
}

// interruptedRun downloads tor into dir from a slow honest peer, saving the resume record
// every recordInterval, and cancels the run once it has verified a third of the pieces
// (as Ctrl-C would). It returns the run's final stats.
func interruptedRun(t *testing.T, tor *stagetest.Torrent, dir string, recordInterval time.Duration) stages.Stats {
	t.Helper()
	slow := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	slow.Delay = 3 * time.Millisecond
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(slow)),
		pipeline.WithConfig(pipeline.Config{OutDir: dir, ListenAddr: "127.0.0.1:0", RecordInterval: recordInterval}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for p.Stats().Pieces < p.Stats().NumPieces/3 {
		select {
		case err := <-done:
			t.Fatalf("interrupted Run() ended early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Run() = %v, want context.Canceled", err)
	}
	return p.Stats()
}

func plantLink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// ---- Disk faults ----

// needMount skips a test that mounts file systems unless it runs as root (CI must).
func needMount(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting a tmpfs needs root, and CI=true")
		}
		t.Skip("mounting a tmpfs needs root")
	}
}

// mountTmpfs mounts a tmpfs with opts (size=...) on a fresh directory; it is unmounted when
// the test ends.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	needMount(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

func remountTmpfs(t *testing.T, dir string, flags uintptr, opts string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|flags, opts); err != nil {
		t.Fatalf("remount %s %q: %v", dir, opts, err)
	}
}

// recheckDir hashes what the files of info under dir hold, reading them only: a missing or
// short file reads as zeros there.
func recheckDir(t *testing.T, dir string, info *metainfo.Info) wire.Bitfield {
	t.Helper()
	all := make([]byte, info.Length)
	for _, f := range info.Files {
		b, err := os.ReadFile(filepath.Join(append([]string{dir}, f.Path...)...))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		copy(all[f.Offset:f.Offset+f.Length], b)
	}
	have, err := resume.Recheck(context.Background(), info, bytes.NewReader(all), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	return have
}

// checkResumeRecord rechecks the files under dir and fails when the resume record there
// would be trusted (its file stamps match the files) and lists a piece that is not on disk.
// It returns the pieces on disk, and how many the record lists.
func checkResumeRecord(t *testing.T, dir string, tor *stagetest.Torrent) (disk wire.Bitfield, recorded int) {
	t.Helper()
	info := &tor.Meta.Info
	stamps, err := resume.Stamp(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	disk = recheckDir(t, dir, info)
	rec, err := resume.Load(resume.Path(dir, tor.Meta.InfoHash), info, tor.Meta.InfoHash)
	if errors.Is(err, fs.ErrNotExist) {
		return disk, 0
	}
	if err != nil {
		t.Fatalf("resume record: %v", err)
	}
	if !rec.Matches(stamps) {
		return disk, rec.Pieces.Count() // stale: the next run rechecks instead of trusting it
	}
	for i := range info.NumPieces() {
		if rec.Pieces.Has(i) && !disk.Has(i) {
			t.Errorf("the resume record, which matches the files, lists piece %d, which is not on disk", i)
		}
	}
	return disk, rec.Pieces.Count()
}

// checkPayloadFiles fails unless every file of tor under dir holds its payload.
func checkPayloadFiles(t *testing.T, dir string, tor *stagetest.Torrent) {
	t.Helper()
	for _, f := range tor.Meta.Info.Files {
		got, err := os.ReadFile(filepath.Join(append([]string{dir}, f.Path...)...))
		if err != nil {
			t.Fatal(err)
		}
		if want := tor.Data[f.Offset : f.Offset+f.Length]; !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes on disk differ from the %d-byte payload", filepath.Join(f.Path...), len(got), len(want))
		}
	}
}

func missingBytes(info *metainfo.Info, have wire.Bitfield) int64 {
	var n int64
	for i := range info.NumPieces() {
		if !have.Has(i) {
			n += info.PieceSize(i)
		}
	}
	return n
}

// runInDir runs a download of tor into dir from peers and returns Run's error, the pipeline
// and what the run reported.
func runInDir(t *testing.T, tor *stagetest.Torrent, dir string, peers ...*stagetest.FakePeer) (error, *pipeline.Pipeline, *runLog) {
	t.Helper()
	rec := &runLog{}
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(peers...)), pipeline.WithEvents(rec.add),
		pipeline.WithConfig(pipeline.Config{OutDir: dir, ListenAddr: "127.0.0.1:0", RecordInterval: 20 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Run(ctx), p, rec
}

// TestDiskFull: the output directory is a 1 MiB tmpfs for a 3.3 MiB torrent. The run fails
// with a disk error, the resume record lists only pieces verified on disk, and once the
// file system is grown a new run resumes and completes.
func TestDiskFull(t *testing.T) {
	checkGoroutines(t)
	dir := mountTmpfs(t, "size=1m")
	tor := stagetest.NewTorrent(t, 56, "full", 64<<10, 1<<20, 0, 2<<20, 300_001)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	honest.Delay = time.Millisecond // slow enough for records to be saved before the disk fills

	err, p1, _ := runInDir(t, tor, dir, honest)
	if err == nil || !strings.Contains(err.Error(), "disk error") || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Run() on a full disk = %v, want a disk error wrapping ENOSPC", err)
	}
	t.Logf("first run: %v", err)
	disk, recorded := checkResumeRecord(t, dir, tor)
	have := p1.Have()
	for i := range tor.Meta.Info.NumPieces() {
		if have.Has(i) && !disk.Has(i) {
			t.Errorf("the run counted piece %d as verified and written, but it is not on disk", i)
		}
	}
	t.Logf("full disk: %d pieces on disk, %d in the run's bitfield, %d in the resume record, of %d",
		disk.Count(), have.Count(), recorded, tor.Meta.Info.NumPieces())

	remountTmpfs(t, dir, 0, "size=16m")
	err, p2, _ := runInDir(t, tor, dir, honest)
	if err != nil {
		t.Fatalf("Run() after growing the disk = %v, want nil", err)
	}
	checkPayloadFiles(t, dir, tor)
	if got, want := p2.Stats().Downloaded, missingBytes(&tor.Meta.Info, disk); got > want {
		t.Errorf("the second run downloaded %d bytes, want at most the %d missing", got, want)
	}
}

// TestReadOnlyOutputDir: a download interrupted midway, then its output directory made
// read-only (a read-only tmpfs as root, since root ignores permission bits; mode 0555
// otherwise): the next run fails with a clear error and leaves the record as it was; once
// writable again, a run resumes and completes.
func TestReadOnlyOutputDir(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 57, "ro", 32<<10, 1<<20, 333_333)
	var dir string
	var readOnly, writable func()
	if os.Geteuid() == 0 {
		dir = mountTmpfs(t, "size=16m")
		readOnly = func() { remountTmpfs(t, dir, syscall.MS_RDONLY, "") }
		writable = func() { remountTmpfs(t, dir, 0, "") }
	} else {
		dir = t.TempDir()
		readOnly = func() { chmodAll(t, dir, 0o555) }
		writable = func() { chmodAll(t, dir, 0o755) }
		t.Cleanup(writable)
	}
	interruptedRun(t, tor, dir, 20*time.Millisecond)
	recPath := resume.Path(dir, tor.Meta.InfoHash)
	recBefore, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatalf("no resume record after the interrupt: %v", err)
	}

	readOnly()
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	err, _, _ = runInDir(t, tor, dir, honest)
	if err == nil || !(errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES)) {
		t.Fatalf("Run() on a read-only directory = %v, want a read-only or permission error", err)
	}
	t.Logf("read-only run: %v", err)
	if recAfter, _ := os.ReadFile(recPath); !bytes.Equal(recAfter, recBefore) {
		t.Error("the resume record changed on the read-only directory")
	}

	writable()
	disk, _ := checkResumeRecord(t, dir, tor)
	err, p3, _ := runInDir(t, tor, dir, honest)
	if err != nil {
		t.Fatalf("Run() once writable = %v, want nil", err)
	}
	checkPayloadFiles(t, dir, tor)
	if got, want := p3.Stats().Downloaded, missingBytes(&tor.Meta.Info, disk); got > want {
		t.Errorf("the resumed run downloaded %d bytes, want at most the %d missing", got, want)
	}
}

func chmodAll(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(path, mode)
		}
		return nil
	})
}

// TestFileDeletedDuringDownload: a file of the torrent is deleted while the download
// writes to it, and the run goes on to the end or is interrupted. The run must not claim a
// download complete that is not on disk: either it fails saying so, or every file holds its
// payload; a resume record that the next run would trust never lists a piece that is not on
// disk; and the next run completes with the right bytes.
func TestFileDeletedDuringDownload(t *testing.T) {
	for _, interrupt := range []bool{false, true} {
		name := map[bool]string{false: "run goes on", true: "run interrupted"}[interrupt]
		t.Run(name, func(t *testing.T) {
			checkGoroutines(t)
			tor := stagetest.NewTorrent(t, 58, "deleted", 32<<10, 512<<10, 1<<20)
			dir := t.TempDir()
			slow := stagetest.NewFakePeer(t, tor, stagetest.Honest)
			slow.Delay = 2 * time.Millisecond
			p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(slow)),
				pipeline.WithPicker(stages.NewSequential(tor.Meta.Info.NumPieces())),
				pipeline.WithConfig(pipeline.Config{OutDir: dir, ListenAddr: "127.0.0.1:0", RecordInterval: 10 * time.Millisecond}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			// Sequential: once piece 16 is verified, the first file (pieces 0-15) is written.
			first := filepath.Join(dir, "deleted", "f0.bin")
			waitPiece := func(i int) {
				for !p.Have().Has(i) {
					select {
					case err := <-done:
						t.Fatalf("Run() ended before piece %d: %v", i, err)
					case <-time.After(2 * time.Millisecond):
					}
				}
			}
			waitPiece(16)
			if err := os.Remove(first); err != nil {
				t.Fatal(err)
			}
			if interrupt {
				waitPiece(24) // a few more pieces, and records, after the deletion
				cancel()
			}
			err = <-done
			t.Logf("Run() after deleting %s = %v", filepath.Base(first), err)
			if _, statErr := os.Stat(first); err == nil && statErr != nil {
				t.Errorf("Run() = nil, claiming the download complete, but %s is gone", first)
			}
			disk, recorded := checkResumeRecord(t, dir, tor)
			t.Logf("%d pieces on disk, %d in the resume record", disk.Count(), recorded)

			// The next run refetches what is missing.
			honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
			err, _, _ = runInDir(t, tor, dir, honest)
			if err != nil {
				t.Fatalf("next Run() = %v, want nil", err)
			}
			checkPayloadFiles(t, dir, tor)
		})
	}
}
