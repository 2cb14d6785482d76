package stages_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// serveFiles writes tor's files (flipped when corrupt) in a directory and serves it over
// HTTP on 127.0.0.1 until the test ends; it returns the server's URL.
func serveFiles(t *testing.T, tor *stagetest.Torrent, corrupt bool) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range tor.Meta.Info.Files {
		if !f.OnDisk() {
			continue
		}
		data := bytes.Clone(tor.Data[f.Offset : f.Offset+f.Length])
		for i := range data {
			if corrupt {
				data[i] ^= 0xA5
			}
		}
		name := filepath.Join(append([]string{dir}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// events records a swarm's events.
type events struct {
	mu  sync.Mutex
	all []stages.Event
}

func (e *events) add(ev stages.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) count(match func(stages.Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if match(ev) {
			n++
		}
	}
	return n
}

// runWebSeeds runs WebSeeds, Assemble and Verify over tor, and plays the Write sink: it
// keeps the verified pieces and tells the Scheduler. It returns the bytes verified and the
// source, once the source has ended on its own (the download complete, or every web seed
// dropped).
func runWebSeeds(t *testing.T, tor *stagetest.Torrent, ev *events, cfg stages.WebSeedConfig) ([]byte, *stages.WebSeedSource) {
	t.Helper()
	info := &tor.Meta.Info
	sw := stages.NewSwarm(tor.Meta.InfoHash, [20]byte{}, 0, slog.New(slog.DiscardHandler), nil)
	sw.Events = ev.add
	e := &stages.Env{Swarm: sw, Info: info, Sched: stages.NewScheduler(info, stages.NewRarest(info.NumPieces(), 1), 16)}
	pool := bufpool.New(wire.BlockSize, 64)
	cfg.Blocks = pool
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := stages.WebSeeds(ctx, e, cfg)
	got := make([]byte, info.Length)
	for el := range src.Via(stages.Assemble(e, pool)).Via(stages.Verify(info, 2)).Out() {
		p := el.(*stages.Piece)
		if p.Err != nil {
			e.Sched.PieceFailed(p.Index, p.Peers)
		} else {
			copy(got[info.PieceOffset(p.Index):], p.Bytes())
			e.Sched.PieceDone(p.Index)
		}
		for _, b := range p.Blocks {
			pool.Put(b)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the web seeds did not end on their own")
	}
	return got, src
}

// TestWebSeedStage downloads a multi-file torrent whose name needs escaping from a web
// seed alone: every byte arrives, through Range requests per file.
func TestWebSeedStage(t *testing.T) {
	tor := stagetest.NewTorrent(t, 70, "web seed #1 ü%", 32<<10, 50_000, 1, 100_000, 16<<10)
	url := serveFiles(t, tor, false)
	var ev events
	got, src := runWebSeeds(t, tor, &ev, stages.WebSeedConfig{URLs: []string{url + "/"}, RequestBytes: 64 << 10})
	if !bytes.Equal(got, tor.Data) {
		t.Fatal("the web seed's bytes differ from the payload")
	}
	st := src.Stats()
	if len(st) != 1 || st[0].Bytes != tor.Meta.Info.Length || st[0].Requests == 0 || st[0].Dropped != nil {
		t.Errorf("Stats() = %+v, want %d bytes, requests, not dropped", st, tor.Meta.Info.Length)
	}
}

// TestWebSeedStageCorrupt: a web seed whose bytes are wrong is blamed for the pieces that
// fail, banned by the Scheduler's strikes, and dropped.
func TestWebSeedStageCorrupt(t *testing.T) {
	tor := stagetest.NewTorrent(t, 71, "bad", 16<<10, 20*16<<10)
	url := serveFiles(t, tor, true)
	var ev events
	_, src := runWebSeeds(t, tor, &ev, stages.WebSeedConfig{URLs: []string{url + "/"}, RequestBytes: 16 << 10})
	st := src.Stats()[0]
	if st.Bytes == 0 || !errors.Is(st.Dropped, stages.ErrWebSeedBanned) {
		t.Errorf("Stats() = %+v, want bytes sent and dropped as banned", st)
	}
	if n := ev.count(func(e stages.Event) bool { d, ok := e.(stages.WebSeedDropped); return ok && d.Addr == st.Addr }); n != 1 {
		t.Errorf("%d WebSeedDropped events, want 1", n)
	}
}

// TestWebSeedStageBackoff: a web seed that answers 404 fails MaxFailures times in a row,
// backing off between, and is dropped having delivered nothing.
func TestWebSeedStageBackoff(t *testing.T) {
	tor := stagetest.NewTorrent(t, 72, "gone", 16<<10, 100_000)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	var ev events
	_, src := runWebSeeds(t, tor, &ev, stages.WebSeedConfig{URLs: []string{srv.URL + "/"},
		MaxFailures: 3, Backoff: time.Millisecond, Requests: 1})
	st := src.Stats()[0]
	if st.Bytes != 0 || st.Failures != 3 || st.Dropped == nil {
		t.Errorf("Stats() = %+v, want no bytes, 3 failures, dropped", st)
	}
	if n := ev.count(func(e stages.Event) bool { _, ok := e.(stages.WebSeedFailed); return ok }); n != 3 {
		t.Errorf("%d WebSeedFailed events, want 3", n)
	}
}
