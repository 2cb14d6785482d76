package pipeline

import (
	"context"
	"errors"
	"io"
	"maps"
	"testing"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// fakePriorities records the priorities the hub sets, as a Scheduler would hold them.
type fakePriorities struct {
	levels map[int]stages.Priority // other than normal only
	calls  int
}

func (f *fakePriorities) Priority(piece int) stages.Priority { return f.levels[piece] }

func (f *fakePriorities) SetPriority(piece int, p stages.Priority) {
	f.calls++
	if p == stages.PriorityNormal {
		delete(f.levels, piece)
	} else {
		f.levels[piece] = p
	}
}

// TestReaderPriorities: the piece under a Reader's position is wanted now and its
// readahead soon, within its file; Seek and SetReadahead move them, the most urgent of
// two Readers wins, and Close gives the pieces back.
func TestReaderPriorities(t *testing.T) {
	// Pieces of 100 bytes; file 1 is [250, 1250): pieces 2 to 12.
	m := &metainfo.MetaInfo{Info: metainfo.Info{PieceLength: 100, Length: 1300, Files: []metainfo.File{
		{Path: []string{"a"}, Length: 250}, {Path: []string{"b"}, Length: 1000, Offset: 250}, {Path: []string{"c"}, Length: 50, Offset: 1250}}}}
	h := newReaderHub(false)
	fake := &fakePriorities{levels: map[int]stages.Priority{11: stages.PrioritySkip, 12: stages.PriorityHigh}}
	h.prio = fake
	r, err := h.newReader(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	N, H, S := stages.PriorityNow, stages.PriorityHigh, stages.PrioritySkip
	check := func(step string, want map[int]stages.Priority) {
		t.Helper()
		if !maps.Equal(fake.levels, want) {
			t.Errorf("%s: priorities %v, want %v", step, fake.levels, want)
		}
	}
	// Piece 11 is skipped (its file is not selected, say) and 12 high, before any Reader.
	check("new", map[int]stages.Priority{11: S, 12: H}) // nothing before the first Read, Seek or SetReadahead
	r.Seek(0, io.SeekStart)
	// The default readahead runs past the file's end: the file's pieces, no more.
	check("seek 0", map[int]stages.Priority{2: N, 3: H, 4: H, 5: H, 6: H, 7: H, 8: H, 9: H, 10: H, 11: H, 12: H})
	r.SetReadahead(150)
	check("readahead 150", map[int]stages.Priority{2: N, 3: H, 11: S, 12: H})
	delete(fake.levels, 11)
	delete(fake.levels, 12)
	r.Seek(500, io.SeekStart) // torrent offset 750
	check("seek 500", map[int]stages.Priority{7: N, 8: H})
	r.SetReadahead(0)
	check("readahead 0", map[int]stages.Priority{7: N})
	r.Seek(-1, io.SeekEnd) // offset 1249, the file's last byte
	check("seek end", map[int]stages.Priority{12: N})
	r.Seek(0, io.SeekEnd)
	check("at the end", map[int]stages.Priority{})

	r.Seek(0, io.SeekStart)
	r.SetReadahead(250)
	r2, _ := h.newReader(m, 1)
	r2.SetReadahead(100)
	r2.Seek(100, io.SeekStart) // offset 350: 3 now, 4 soon
	check("two readers", map[int]stages.Priority{2: N, 3: N, 4: H})
	r.Close()
	check("first closed", map[int]stages.Priority{3: N, 4: H})
	calls := fake.calls
	r2.SetReadahead(100)
	r2.Seek(100, io.SeekStart)
	if fake.calls != calls {
		t.Errorf("%d priorities set again for the same window", fake.calls-calls)
	}
	r2.Close()
	check("both closed", map[int]stages.Priority{})
	r3, _ := h.newReader(m, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A new Reader's first Read wants its pieces before it waits (here, for nothing: the
	// context is done).
	if _, err := r3.ReadContext(ctx, make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadContext(cancelled) = %v", err)
	}
	check("first read", map[int]stages.Priority{0: N, 1: H, 2: H})
	r3.SetReadahead(0)
	check("third", map[int]stages.Priority{0: N})
	r3.Close()
}

// TestReaderWindow: the pieces a Reader wants, at the edges of pieces and files.
func TestReaderWindow(t *testing.T) {
	tor := stagetest.NewTorrent(t, 1, "w", 16<<10, 40_000, 10_000)
	h := newReaderHub(false)
	r, _ := h.newReader(tor.Meta, 1) // [40_000, 50_000): pieces 2 and 3
	for _, c := range []struct {
		name    string
		pos, ra int64
		want    window
	}{
		{"start", 0, 0, window{2, 3, 3}},
		{"start, readahead to the piece end", 0, 16384*3 - 40_000, window{2, 3, 3}},
		{"start, one byte more", 0, 16384*3 - 40_000 + 1, window{2, 3, 4}},
		{"readahead past the end", 0, 1 << 30, window{2, 3, 4}},
		{"last byte", 9_999, 1 << 20, window{3, 4, 4}},
		{"at the end", 10_000, 1 << 20, window{}},
		{"past the end", 20_000, 0, window{}},
	} {
		if got := r.window(c.pos, c.ra); got != c.want {
			t.Errorf("%s: window(%d, %d) = %v, want %v", c.name, c.pos, c.ra, got, c.want)
		}
	}
	r.Close()
}

// TestReaderBaseChanges: a piece a Reader holds keeps the Reader's priority when the files'
// choice for it changes (setBase), and gets the new choice, not the old one, once the
// Reader lets it go: a skipped file selected while a Reader read it is then fetched.
func TestReaderBaseChanges(t *testing.T) {
	m := &metainfo.MetaInfo{Info: metainfo.Info{PieceLength: 100, Length: 300, Files: []metainfo.File{
		{Path: []string{"a"}, Length: 300}}}}
	h := newReaderHub(false)
	fake := &fakePriorities{levels: map[int]stages.Priority{0: stages.PrioritySkip, 1: stages.PrioritySkip}}
	h.prio = fake
	r, err := h.newReader(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.SetReadahead(0)
	r.Seek(0, io.SeekStart)
	if got := fake.levels[0]; got != stages.PriorityNow {
		t.Fatalf("piece 0 under the Reader: %v, want now", got)
	}
	h.setBase(0, stages.PriorityNormal) // the file is selected while the Reader holds piece 0
	h.setBase(1, stages.PriorityNormal)
	if got := fake.levels[0]; got != stages.PriorityNow {
		t.Errorf("piece 0 after setBase: %v, want the Reader's now", got)
	}
	r.Close()
	if got, ok := fake.levels[0]; ok {
		t.Errorf("piece 0 after Close: %v, want normal (the new base), not the old skip", got)
	}
	if _, ok := fake.levels[1]; ok {
		t.Errorf("piece 1: %v, want normal", fake.levels[1])
	}
}
