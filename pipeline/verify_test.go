package pipeline_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// writePayload puts tor's files, holding its payload, under dir.
func writePayload(t *testing.T, dir string, tor *stagetest.Torrent) {
	t.Helper()
	for _, f := range tor.Meta.Info.Files {
		path := filepath.Join(append([]string{dir}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, tor.Data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// corruptPiece flips a byte in the middle of piece i on disk, and returns the count of
// pieces left intact.
func corruptPiece(t *testing.T, dir string, tor *stagetest.Torrent, i int) int {
	t.Helper()
	info := &tor.Meta.Info
	off := info.PieceOffset(i) + info.PieceSize(i)/2
	for _, f := range info.Files {
		if off >= f.Offset && off < f.Offset+f.Length {
			path := filepath.Join(append([]string{dir}, f.Path...)...)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[off-f.Offset] ^= 0xff
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return info.NumPieces() - 1
		}
	}
	t.Fatalf("piece %d lies in no file", i)
	return 0
}

func wantPieces(t *testing.T, what string, st stages.Stats, pieces int) {
	t.Helper()
	if st.Pieces != pieces || st.NumPieces == 0 || st.Total == 0 {
		t.Fatalf("%s: Stats = %+v, want %d pieces verified", what, st, pieces)
	}
}

// TestTorrentVerifyPaused: a paused torrent's Stats come from its resume record, before
// any run; Verify reads its files, counts a piece changed on disk as missing, and saves
// what it found, which a new session trusts without a run; resumed, the torrent fetches
// only that piece and the files end up holding the payload.
func TestTorrentVerifyPaused(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 91, "verify", 16<<10, 100_000, 60_001)
	n := tor.Meta.Info.NumPieces()
	dir := t.TempDir()
	writePayload(t, dir, tor)
	seeder := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	s := newSession(t, pipeline.Config{OutDir: dir})
	tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), true, pipeline.WithPeerSource(addrs(seeder)))
	if err != nil {
		t.Fatal(err)
	}
	wantPieces(t, "paused, no record", tr.Stats(), 0)
	if err := tr.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if st := tr.State(); st != pipeline.Paused {
		t.Fatalf("after Verify: %v, want paused", st)
	}
	wantPieces(t, "after Verify", tr.Stats(), n)
	if st := tr.Stats(); st.WantedDone != tor.Meta.Info.Length || st.Left() != 0 {
		t.Fatalf("after Verify: %+v, want every byte verified", st)
	}

	intact := corruptPiece(t, dir, tor, 3)
	if err := tr.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	wantPieces(t, "after Verify of a changed piece", tr.Stats(), intact)
	if err := tr.Remove(false); err != nil {
		t.Fatal(err)
	}

	// A new session trusts the record Verify saved.
	s2 := newSession(t, pipeline.Config{OutDir: dir})
	tr2, err := s2.Add(pipeline.FromMetaInfo(tor.Meta), true, pipeline.WithPeerSource(addrs(seeder)))
	if err != nil {
		t.Fatal(err)
	}
	wantPieces(t, "record in a new session", tr2.Stats(), intact)
	if err := tr2.Resume(); err != nil {
		t.Fatal(err)
	}
	waiter{60 * time.Second}.finished(t, tr2)
	wantRefetched(t, tr2, dir, tor, 3)
}

// wantRefetched fails unless dir holds tor's payload and tr downloaded piece alone.
func wantRefetched(t *testing.T, tr *pipeline.Torrent, dir string, tor *stagetest.Torrent, piece int) {
	t.Helper()
	checkPayloadFiles(t, dir, tor)
	if got, want := tr.Stats().Downloaded, tor.Meta.Info.PieceSize(piece); got != want {
		t.Errorf("downloaded %d bytes, want only piece %d's %d", got, piece, want)
	}
}

// TestTorrentVerifyRunning: Verify on a seeding torrent stops its run for the check and
// resumes it; a piece that went bad on disk is fetched again from a peer, and the run
// seeds on (Running) with every piece verified.
func TestTorrentVerifyRunning(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 92, "verify-run", 16<<10, 200_000)
	dir := t.TempDir()
	writePayload(t, dir, tor)
	seeder := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	completed := make(chan struct{}, 4)
	s := newSession(t, pipeline.Config{OutDir: dir, Seed: true})
	tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithPeerSource(addrs(seeder)),
		pipeline.WithEvents(func(e stages.Event) {
			if _, ok := e.(stages.Completed); ok {
				completed <- struct{}{}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string) {
		t.Helper()
		select {
		case <-completed:
		case <-ctx.Done():
			t.Fatalf("%s: no Completed event; %v, %+v", what, tr.State(), tr.Stats())
		}
	}
	wait("the first run (data on disk)")
	corruptPiece(t, dir, tor, 5)
	if err := tr.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if st := tr.State(); st != pipeline.Running {
		t.Fatalf("after Verify of a running torrent: %v, want running", st)
	}
	wait("the run after Verify")
	wantPieces(t, "seeding after Verify", tr.Stats(), tor.Meta.Info.NumPieces())
	wantRefetched(t, tr, dir, tor, 5)
}

// TestTorrentVerifyBadInput: Verify refuses a torrent whose storage is the caller's, and
// one whose metadata is unknown; Pause during a check ends it.
func TestTorrentVerifyBadInput(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 93, "verify-bad", 16<<10, 50_000)
	s := newSession(t, pipeline.Config{OutDir: t.TempDir()})
	tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), true, pipeline.WithStorage(filled(t, tor)), pipeline.WithPeerSource(stages.StaticPeers{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Verify(context.Background()); !errors.Is(err, pipeline.ErrVerifyStorage) {
		t.Errorf("Verify with a caller's storage = %v, want ErrVerifyStorage", err)
	}
	mt, err := s.Add(pipeline.FromMagnet("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe=127.0.0.1:1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := mt.Verify(context.Background()); !errors.Is(err, pipeline.ErrNoInfo) {
		t.Errorf("Verify before the metadata = %v, want ErrNoInfo", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	writePayload(t, dir, tor)
	s2 := newSession(t, pipeline.Config{OutDir: dir})
	tr2, err := s2.Add(pipeline.FromMetaInfo(tor.Meta), true, pipeline.WithPeerSource(stages.StaticPeers{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Verify(ctx); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with an ended context = %v, want it interrupted", err)
	}
	if st := tr2.State(); st != pipeline.Paused {
		t.Errorf("after an interrupted Verify: %v, want paused", st)
	}
}

// TestTorrentVerifyQueued: Verify of a torrent queued behind a running download checks
// its files and puts it back in the queue, where it waits its turn with what the check
// found; the running torrent keeps its slot. Once that one finishes, the checked torrent
// runs and fetches only the piece that went bad.
func TestTorrentVerifyQueued(t *testing.T) {
	checkGoroutines(t)
	s := newQueueSession(t, 1, 0, pipeline.Config{})
	a := addGated(t, s, 121)
	tor := stagetest.NewTorrent(t, 122, "verify-queued", 16<<10, 100_000)
	dir := t.TempDir()
	writePayload(t, dir, tor)
	intact := corruptPiece(t, dir, tor, 2)
	seeder := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	b, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithConfig(pipeline.Config{OutDir: dir, NoPex: true}),
		pipeline.WithPeerSource(addrs(seeder)))
	if err != nil {
		t.Fatal(err)
	}
	if st := b.State(); st != pipeline.Queued {
		t.Fatalf("the second download is %v, want queued", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if st, pos := b.State(), b.QueuePosition(); st != pipeline.Queued || pos != 0 {
		t.Fatalf("after Verify: %v at position %d, want queued at 0", st, pos)
	}
	wantPieces(t, "queued after Verify", b.Stats(), intact)
	if st := a.tr.State(); st != pipeline.Running {
		t.Fatalf("the running download is %v after the other's Verify, want running", st)
	}
	a.finish(t)
	waiter{60 * time.Second}.finished(t, b)
	wantRefetched(t, b, dir, tor, 2)
}

// TestTorrentFile: Torrent.File gives a file's place in the torrent and sets and reads its
// priority, as SetFilePriority and FilePriorities do; out of range and before the
// metadata it says what is wrong.
func TestTorrentFile(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 95, "files", 16<<10, 40_000, 30_000, 20_000)
	s := newSession(t, pipeline.Config{OutDir: t.TempDir()})
	tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), true, pipeline.WithPeerSource(stages.StaticPeers{}))
	if err != nil {
		t.Fatal(err)
	}
	f, err := tr.File(1)
	if err != nil {
		t.Fatal(err)
	}
	if want := tor.Meta.Info.Files[1]; f.Index() != 1 || f.Length != want.Length || f.Offset != want.Offset || f.Path[len(f.Path)-1] != want.Path[len(want.Path)-1] {
		t.Errorf("File(1) = %+v, want the torrent's second file %+v", f.File, want)
	}
	if err := f.SetPriority(pipeline.FileSkip); err != nil {
		t.Fatal(err)
	}
	if fp, err := f.Priority(); err != nil || fp != pipeline.FileSkip {
		t.Errorf("Priority() = %v, %v; want skip", fp, err)
	}
	if prios, err := tr.FilePriorities(); err != nil || prios[1] != pipeline.FileSkip || prios[0] != pipeline.FileNormal {
		t.Errorf("FilePriorities() = %v, %v; want file 1 skipped only", prios, err)
	}
	if _, err := tr.File(3); err == nil || !strings.Contains(err.Error(), "out of range (3 files)") {
		t.Errorf("File(3) = %v, want out of range", err)
	}
	mt, err := s.Add(pipeline.FromMagnet("magnet:?xt=urn:btih:1123456789abcdef0123456789abcdef01234567&x.pe=127.0.0.1:1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mt.File(0); !errors.Is(err, pipeline.ErrNoInfo) {
		t.Errorf("File(0) before the metadata = %v, want ErrNoInfo", err)
	}
}
