package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// selectTorrent has four files over pieces of 32 KiB:
//
//	f0 [0, 100000)       pieces 0-3   (3 shared with f1)
//	f1 [100000, 150000)  pieces 3-4   (4 shared with f2)
//	f2 [150000, 220001)  pieces 4-6   (6 shared with f3)
//	f3 [220001, 250001)  pieces 6-7
func selectTorrent(t *testing.T) *stagetest.Torrent {
	return stagetest.NewTorrent(t, 120, "sel", 32<<10, 100_000, 50_000, 70_001, 30_000)
}

// only wants the files listed, by index from 0.
func only(files ...int) pipeline.Option {
	return pipeline.WithFilePriorities(func(i int, _ metainfo.File) pipeline.FilePriority {
		if slices.Contains(files, i) {
			return pipeline.FileNormal
		}
		return pipeline.FileSkip
	})
}

// blocksOf is the number of 16 KiB blocks of the pieces listed.
func blocksOf(info *metainfo.Info, pieces ...int) int64 {
	var n int64
	for _, i := range pieces {
		n += (info.PieceSize(i) + 16<<10 - 1) / (16 << 10)
	}
	return n
}

// checkFiles checks that the files listed are on disk with their bytes and the others
// are not there at all.
func checkFiles(t *testing.T, dir string, tor *stagetest.Torrent, onDisk ...int) {
	t.Helper()
	for i, f := range tor.Meta.Info.Files {
		b, err := os.ReadFile(filepath.Join(append([]string{dir}, f.Path...)...))
		switch {
		case !slices.Contains(onDisk, i):
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file %d (not selected): %d bytes, %v; want it absent", i, len(b), err)
			}
		case err != nil || !bytes.Equal(b, tor.Data[f.Offset:f.Offset+f.Length]):
			t.Errorf("file %d: %d bytes, %v; want its %d bytes", i, len(b), err, f.Length)
		}
	}
}

// verified returns the pieces of the PieceVerified events in l, in order.
func verified(l *eventLog) []int {
	var out []int
	for _, e := range l.all() {
		if v, ok := e.(stages.PieceVerified); ok {
			out = append(out, v.Piece)
		}
	}
	slices.Sort(out)
	return out
}

// checkServed checks that peer served, since it had served base blocks, the blocks of the
// pieces fetched, and not those of the pieces that must not have been (give or take a
// block sent twice). The peer counts a block once sent: the count may lag a moment.
func checkServed(t *testing.T, info *metainfo.Info, peer *stagetest.FakePeer, base int64, fetched, notFetched []int) {
	t.Helper()
	lo, hi := blocksOf(info, fetched...), blocksOf(info, fetched...)+blocksOf(info, notFetched...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	peer.WaitServed(ctx, base+lo)
	served := peer.Served.Load() - base
	if served < lo || served >= hi {
		t.Errorf("the peer served %d blocks, want %d (those of pieces %v), and fewer than %d (had pieces %v been fetched too)",
			served, lo, fetched, hi, notFetched)
	}
}

// TestSelectDownload: with files 1 and 3 selected, only their pieces are fetched (3, 4,
// 6, 7), files 0 and 2 are not created, and the bytes of theirs that the shared pieces 3,
// 4 and 6 hold are in the part file at their offsets. A second run with every file
// selected fetches only pieces 0, 1, 2 and 5: the rest comes from the part file.
func TestSelectDownload(t *testing.T) {
	checkGoroutines(t)
	tor := selectTorrent(t)
	info := &tor.Meta.Info
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	dir := t.TempDir()
	cfg := withConfig(pipeline.Config{OutDir: dir})

	events := &eventLog{}
	err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(peer)), cfg, only(1, 3), pipeline.WithEvents(events.add))
	if err != nil {
		t.Fatalf("Run() with files 1 and 3 = %v", err)
	}
	if got := verified(events); !slices.Equal(got, []int{3, 4, 6, 7}) {
		t.Errorf("pieces verified: %v, want 3, 4, 6, 7", got)
	}
	checkServed(t, info, peer, 0, []int{3, 4, 6, 7}, []int{0, 1, 2, 5})
	checkFiles(t, dir, tor, 1, 3)
	part, err := os.ReadFile(resume.PartPath(dir, tor.Meta.InfoHash))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{3 * 32 << 10, 100_000}, {150_000, 5 * 32 << 10}, {6 * 32 << 10, 220_001}} {
		if int64(len(part)) < r[1] || !bytes.Equal(part[r[0]:r[1]], tor.Data[r[0]:r[1]]) {
			t.Errorf("part file (%d bytes) lacks the torrent's bytes [%d, %d)", len(part), r[0], r[1])
		}
	}

	served := peer.Served.Load() // may lag, but only within the pieces of the first run
	events = &eventLog{}
	err, _ = run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(peer)), cfg, only(0, 1, 2, 3), pipeline.WithEvents(events.add))
	if err != nil {
		t.Fatalf("Run() with every file = %v", err)
	}
	if got := verified(events); !slices.Equal(got, []int{0, 1, 2, 5}) {
		t.Errorf("second run: pieces verified: %v, want 0, 1, 2, 5 (the shared ones from the part file)", got)
	}
	checkServed(t, info, peer, served, []int{0, 1, 2, 5}, []int{3, 4, 6})
	checkFiles(t, dir, tor, 0, 1, 2, 3)
	if _, err := os.Stat(resume.PartPath(dir, tor.Meta.InfoHash)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("part file once every file is on disk: %v, want it gone", err)
	}
}

// TestSelectResume: a run without a selection goes on with the last one; a run with
// another applies it.
func TestSelectResume(t *testing.T) {
	checkGoroutines(t)
	tor := selectTorrent(t)
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	dir := t.TempDir()
	cfg := withConfig(pipeline.Config{OutDir: dir})
	if err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(peer)), cfg, only(0)); err != nil {
		t.Fatal(err)
	}
	served := peer.Served.Load()
	p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(peer)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []pipeline.FilePriority{pipeline.FileNormal, pipeline.FileSkip, pipeline.FileSkip, pipeline.FileSkip}
	if got := p.FilePriorities(); !slices.Equal(got, want) {
		t.Fatalf("FilePriorities() of a run without a selection = %v, want the saved %v", got, want)
	}
	if err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(peer)), cfg); err != nil {
		t.Fatal(err)
	}
	if n := peer.Served.Load() - served; n != 0 {
		t.Errorf("a run with the saved selection, complete already, fetched %d blocks", n)
	}
	checkFiles(t, dir, tor, 0)
	if err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(peer)), cfg, only(2)); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, tor, 0, 2)
}

// TestSelectError: a selection that does not fit is Run's error, and nothing is created.
func TestSelectError(t *testing.T) {
	tor := selectTorrent(t)
	dir := t.TempDir()
	bad := errors.New("--select 9: no file 9")
	err, _ := run(t, tor, 10*time.Second, withConfig(pipeline.Config{OutDir: dir}), pipeline.WithPeerSource(addrs()),
		pipeline.WithFileSelection(func(*metainfo.Info) ([]pipeline.FilePriority, error) { return nil, bad }))
	if !errors.Is(err, bad) {
		t.Fatalf("Run() = %v, want the selection's error", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("the output directory holds %d entries, want none", len(names))
	}
}

// TestSelectSession: a Session's torrent downloads its selected files and, seeding, gets
// the others once they are selected while it runs; the choice survives a pause.
func TestSelectSession(t *testing.T) {
	checkGoroutines(t)
	tor := selectTorrent(t)
	info := &tor.Meta.Info
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	dir := t.TempDir()
	s := newSession(t, pipeline.Config{OutDir: dir, Seed: true})
	tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithPeerSource(addrs(peer)), only(1))
	if err != nil {
		t.Fatal(err)
	}
	waitStats(t, tr, func(st statsView) bool { return st.Left == 0 && st.Wanted > 0 })
	if st := tr.Stats(); st.Wanted != info.PieceSize(3)+info.PieceSize(4) || st.Pieces != 2 {
		t.Fatalf("with file 1: wanted %d bytes, %d pieces done; want pieces 3 and 4", st.Wanted, st.Pieces)
	}
	checkFiles(t, dir, tor, 1)
	if err := tr.SetFilePriority(0, pipeline.FileNormal); err != nil {
		t.Fatal(err)
	}
	if err := tr.SetFilePriority(3, pipeline.FileHigh); err != nil {
		t.Fatal(err)
	}
	waitStats(t, tr, func(st statsView) bool { return st.Left == 0 && st.Pieces == 7 })
	checkFiles(t, dir, tor, 0, 1, 3)
	checkServed(t, info, peer, 0, []int{0, 1, 2, 3, 4, 6, 7}, []int{5})
	served := peer.Served.Load()
	tr.Pause()
	prios, err := tr.FilePriorities()
	want := []pipeline.FilePriority{pipeline.FileNormal, pipeline.FileNormal, pipeline.FileSkip, pipeline.FileHigh}
	if err != nil || !slices.Equal(prios, want) {
		t.Fatalf("FilePriorities() of the paused torrent = %v, %v; want %v", prios, err, want)
	}
	// Paused, file 2 selected: the next run fetches it (piece 5 only), and finds the rest.
	if err := tr.SetFilePriority(2, pipeline.FileNormal); err != nil {
		t.Fatal(err)
	}
	if err := tr.Resume(); err != nil {
		t.Fatal(err)
	}
	waitStats(t, tr, func(st statsView) bool { return st.Left == 0 && st.Pieces == 8 })
	checkFiles(t, dir, tor, 0, 1, 2, 3)
	checkServed(t, info, peer, served, []int{5}, []int{4, 6})
}

type statsView struct {
	Left, Wanted int64
	Pieces       int
}

func waitStats(t *testing.T, tr *pipeline.Torrent, ok func(statsView) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := tr.Stats()
		v := statsView{Left: st.Left(), Wanted: st.Wanted, Pieces: st.Pieces}
		if ok(v) && tr.State() == pipeline.Running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("torrent %v, %v: stats %+v", tr.State(), tr.Err(), v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
