package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// gatedStorage is MemStorage whose writes wait until the test opens the gate: no piece is
// verified and written before, so a Read that needs one is known to wait.
type gatedStorage struct {
	*stagetest.MemStorage
	gate    chan struct{}
	open    sync.Once
	arrived chan struct{} // closed at the first write that waits
	first   sync.Once
}

func newGatedStorage(t *testing.T, size int64) *gatedStorage {
	g := &gatedStorage{MemStorage: stagetest.NewMemStorage(size), gate: make(chan struct{}), arrived: make(chan struct{})}
	t.Cleanup(g.release) // startSeeding releases it too, before it awaits the run's end
	return g
}

func (g *gatedStorage) WriteAt(b []byte, off int64) (int, error) {
	g.first.Do(func() { close(g.arrived) })
	<-g.gate
	return g.MemStorage.WriteAt(b, off)
}

func (g *gatedStorage) release() { g.open.Do(func() { close(g.gate) }) }

// waitProbe is a context that tells when a Read has started to wait on it: Read selects
// on Done only once the piece it needs is missing.
type waitProbe struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newWaitProbe(ctx context.Context) *waitProbe {
	return &waitProbe{Context: ctx, waiting: make(chan struct{})}
}

func (w *waitProbe) Done() <-chan struct{} {
	w.once.Do(func() { close(w.waiting) })
	return w.Context.Done()
}

// startSeeding runs a pipeline for tor from an honest fake peer into store, seeding after
// completion, so that it runs (and its Readers read) until the test ends.
func startSeeding(t *testing.T, tor *stagetest.Torrent, store stages.Storage, opts ...pipeline.Option) *pipeline.Pipeline {
	t.Helper()
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	opts = append([]pipeline.Option{pipeline.WithStorage(store),
		pipeline.WithPeerSource(stages.StaticPeers{peer.Addr()}),
		pipeline.WithConfig(pipeline.Config{NoListen: true, Seed: true})}, opts...)
	p, err := pipeline.New(tor.Meta, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		// Cleanups run last-registered first: a gated storage's own release would come
		// after this wait, and its blocked writes would hold the run forever.
		if g, ok := store.(*gatedStorage); ok {
			g.release()
		}
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v", err)
		}
	})
	return p
}

// readerTorrent has three files; the middle one starts and ends inside pieces.
func readerTorrent(t *testing.T) *stagetest.Torrent {
	return stagetest.NewTorrent(t, 12, "reader", 32<<10, 100_000, 300_001, 50_000)
}

// TestReaderMiddleBeforeDownload: a Read in the middle of a file waits while no piece is
// written, and returns the file's bytes once they are.
func TestReaderMiddleBeforeDownload(t *testing.T) {
	checkGoroutines(t)
	tor := readerTorrent(t)
	f := tor.Meta.Info.Files[1]
	store := newGatedStorage(t, tor.Meta.Info.Length)
	p := startSeeding(t, tor, store)
	r, err := p.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Length() != f.Length {
		t.Fatalf("Length() = %d, want %d", r.Length(), f.Length)
	}
	const at, n = 150_000, 40_000
	if pos, err := r.Seek(at, io.SeekStart); err != nil || pos != at {
		t.Fatalf("Seek(%d) = %d, %v", at, pos, err)
	}
	got := make([]byte, n)
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(r, got)
		read <- err
	}()
	<-store.arrived // a piece is verified; none can be written yet
	select {
	case err := <-read:
		t.Fatalf("ReadFull returned (%v) before any piece was written", err)
	default:
	}
	store.release()
	if err := <-read; err != nil {
		t.Fatalf("ReadFull() = %v", err)
	}
	if want := tor.Data[f.Offset+at : f.Offset+at+n]; !bytes.Equal(got, want) {
		t.Fatal("bytes read differ from the file's")
	}
}

// TestReaderSeek: seeks back and forth (from the start, the position and the end) while
// the file downloads; every read returns the file's bytes at the position.
func TestReaderSeek(t *testing.T) {
	checkGoroutines(t)
	tor := readerTorrent(t)
	f := tor.Meta.Info.Files[1]
	want := tor.Data[f.Offset : f.Offset+f.Length]
	p := startSeeding(t, tor, stagetest.NewMemStorage(tor.Meta.Info.Length))
	r, err := p.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetReadahead(64 << 10)
	rng := rand.New(rand.NewPCG(1, 2))
	steps := []struct {
		name   string
		off    int64
		whence int
		pos    int64 // where it lands
	}{
		{"end", -1000, io.SeekEnd, f.Length - 1000},
		{"start", 0, io.SeekStart, 0},
		{"middle", 200_000, io.SeekStart, 200_000},
		{"back", -150_000, io.SeekCurrent, 0}, // after reading 100 bytes from 200_000: 50_100
		{"forward", 123_457, io.SeekCurrent, 0},
		{"near end", -10, io.SeekEnd, f.Length - 10},
	}
	var pos int64
	for _, s := range steps {
		want1 := s.pos
		if s.whence == io.SeekCurrent {
			want1 = pos + s.off
		}
		got, err := r.Seek(s.off, s.whence)
		if err != nil || got != want1 {
			t.Fatalf("%s: Seek(%d, %d) = %d, %v; want %d", s.name, s.off, s.whence, got, err, want1)
		}
		n := min(int64(100+rng.IntN(5000)), f.Length-got)
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("%s: ReadFull(%d bytes at %d) = %v", s.name, n, got, err)
		}
		if !bytes.Equal(buf, want[got:got+n]) {
			t.Fatalf("%s: bytes at %d differ from the file's", s.name, got)
		}
		pos = got + n
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek(-1, SeekStart) succeeded")
	}
	// The whole file, from the start, in reads of odd sizes.
	r.Seek(0, io.SeekStart)
	all, err := io.ReadAll(io.LimitReader(r, f.Length+1))
	if err != nil || !bytes.Equal(all, want) {
		t.Fatalf("ReadAll() = %d bytes, %v; want the file's %d", len(all), err, f.Length)
	}
}

// TestReaderClose: a Read waiting for a piece returns os.ErrClosed once the Reader is
// closed, and a cancelled ReadContext returns the context's error and leaves the Reader
// usable.
func TestReaderClose(t *testing.T) {
	checkGoroutines(t)
	tor := readerTorrent(t)
	store := newGatedStorage(t, tor.Meta.Info.Length)
	p := startSeeding(t, tor, store)
	r, err := p.NewReader(2)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)

	ctx, cancel := context.WithCancel(context.Background())
	probe := newWaitProbe(ctx)
	read := make(chan error, 1)
	go func() {
		_, err := r.ReadContext(probe, buf)
		read <- err
	}()
	<-probe.waiting
	cancel()
	if err := <-read; !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadContext after cancel = %v, want context.Canceled", err)
	}

	probe = newWaitProbe(context.Background())
	go func() {
		_, err := r.ReadContext(probe, buf)
		read <- err
	}()
	<-probe.waiting
	r.Close()
	if err := <-read; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read waiting at Close = %v, want os.ErrClosed", err)
	}
	if _, err := r.Read(buf); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close = %v, want os.ErrClosed", err)
	}
	if _, err := r.Seek(0, io.SeekStart); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Seek after Close = %v, want os.ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
}

// TestReaderEOF: reads at and past the end of a file return io.EOF, the last bytes
// first; a read after the run has ended fails.
func TestReaderEOF(t *testing.T) {
	checkGoroutines(t)
	tor := readerTorrent(t)
	f := tor.Meta.Info.Files[0]
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		pipeline.WithPeerSource(stages.StaticPeers{peer.Addr()}),
		pipeline.WithConfig(pipeline.Config{NoListen: true, Seed: true}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	r, err := p.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 100)
	r.Seek(-30, io.SeekEnd)
	if n, err := r.Read(buf); n != 30 || err != nil || !bytes.Equal(buf[:n], tor.Data[f.Length-30:f.Length]) {
		t.Fatalf("Read of the last 30 bytes = %d, %v", n, err)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, io.EOF", n, err)
	}
	r.Seek(f.Length+100, io.SeekStart)
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read past the end = %d, %v; want 0, io.EOF", n, err)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v", err)
	}
	r.Seek(0, io.SeekStart)
	if _, err := r.Read(buf); !errors.Is(err, pipeline.ErrRunEnded) {
		t.Fatalf("Read after Run returned = %v, want ErrRunEnded", err)
	}
	if _, err := p.NewReader(3); err == nil {
		t.Fatal("NewReader(3) of a torrent of 3 files succeeded")
	}
}

// TestReaderTorrent: a Session's Torrent's Reader waits while the torrent is paused and
// reads once it runs; its reads fail once the torrent is removed.
func TestReaderTorrent(t *testing.T) {
	checkGoroutines(t)
	tor := readerTorrent(t)
	f := tor.Meta.Info.Files[1]
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	s := newSession(t, pipeline.Config{Seed: true})
	tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), true, pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		pipeline.WithPeerSource(stages.StaticPeers{peer.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := tr.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	readAt := func(at int64) (chan error, []byte) {
		r.Seek(at, io.SeekStart)
		buf := make([]byte, 5000)
		probe := newWaitProbe(context.Background())
		read := make(chan error, 1)
		go func() {
			_, err := io.ReadFull(readerContext{r, probe}, buf)
			read <- err
		}()
		<-probe.waiting
		return read, buf
	}
	read, buf := readAt(100_000)
	if err := tr.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil || !bytes.Equal(buf, tor.Data[f.Offset+100_000:f.Offset+105_000]) {
		t.Fatalf("read after Resume: %v, or bytes differ", err)
	}
	tr.Pause()
	read, _ = readAt(0) // its piece may be done, but nothing is open to read it from
	if err := tr.Remove(false); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err == nil {
		t.Fatal("read waiting at Remove succeeded")
	}
}

// readerContext reads from r with ctx.
type readerContext struct {
	r   *pipeline.Reader
	ctx context.Context
}

func (rc readerContext) Read(b []byte) (int, error) { return rc.r.ReadContext(rc.ctx, b) }

// TestReaderPullsForward: a Reader at a file's last piece has it fetched first, before
// the sequential picker's first piece: from a peer that leaves after serving one block,
// the Read gets its bytes, and nothing else is downloaded.
func TestReaderPullsForward(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 13, "forward", 16<<10, 64<<14) // 64 pieces of one block
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	peer.LeaveAfter.Store(1)
	n := tor.Meta.Info.NumPieces()
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(stagetest.NewMemStorage(tor.Meta.Info.Length)),
		pipeline.WithPeerSource(stages.StaticPeers{peer.Addr()}),
		pipeline.WithPicker(stages.NewSequential(n)),
		pipeline.WithConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetReadahead(0)
	at := tor.Meta.Info.PieceOffset(n-1) + 100
	r.Seek(at, io.SeekStart) // before the run: its first request is for this piece
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(readerContext{r, ctx}, buf); err != nil {
		t.Fatalf("ReadFull at the last piece = %v", err)
	}
	if !bytes.Equal(buf, tor.Data[at:at+1000]) {
		t.Fatal("bytes read differ from the file's")
	}
	<-peer.Left()
	if have := p.Have(); have.Count() != 1 || !have.Has(n-1) {
		t.Errorf("pieces verified: %d (the last: %v), want the last alone", have.Count(), have.Has(n-1))
	}
	cancel()
	<-done
}
