package pipeline_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// queued is one torrent of a queue test: its payload, its gated seeder, where it is
// stored, and the session's Torrent.
type queuedTorrent struct {
	tor   *stagetest.Torrent
	peer  *stagetest.FakePeer
	store *stagetest.MemStorage
	tr    *pipeline.Torrent
	open  func() // lets its seeder send data
}

func newQueueSession(t *testing.T, downloads, seeds int, defaults pipeline.Config) *pipeline.Session {
	t.Helper()
	defaults.NoPex, defaults.OutDir = true, t.TempDir() // records and kept metadata go there
	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0", Defaults: defaults,
		MaxActiveDownloads: downloads, MaxActiveSeeds: seeds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addGated adds a torrent to s whose one seeder holds back its data until open.
func addGated(t *testing.T, s *pipeline.Session, seed uint64) *queuedTorrent {
	t.Helper()
	gate := make(chan struct{})
	q := &queuedTorrent{tor: stagetest.NewTorrent(t, seed, "queued", 16<<10, 200_000), open: sync.OnceFunc(func() { close(gate) })}
	t.Cleanup(q.open)
	q.peer = stagetest.NewFakePeer(t, q.tor, stagetest.Honest)
	q.peer.Gate = gate
	q.store = stagetest.NewMemStorage(q.tor.Meta.Info.Length)
	tr, err := s.Add(pipeline.FromMetaInfo(q.tor.Meta), false, pipeline.WithStorage(q.store), pipeline.WithPeerSource(stages.StaticPeers{q.peer.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	q.tr = tr
	return q
}

// wantQueue checks each torrent's state, and the position of the queued ones, in order.
func wantQueue(t *testing.T, step string, running *queuedTorrent, queued ...*queuedTorrent) {
	t.Helper()
	if running != nil {
		if st := running.tr.State(); st != pipeline.Running {
			t.Fatalf("%s: the torrent to run is %v, want running", step, st)
		}
		if pos := running.tr.QueuePosition(); pos != -1 {
			t.Errorf("%s: the running torrent's QueuePosition() = %d, want -1", step, pos)
		}
	}
	for i, q := range queued {
		if st, pos := q.tr.State(), q.tr.QueuePosition(); st != pipeline.Queued || pos != i {
			t.Fatalf("%s: torrent queued %d-th is %v at position %d, want queued at %d", step, i, st, pos, i)
		}
		if q.tr.QueuedToSeed() {
			t.Errorf("%s: a download is queued to seed", step)
		}
		if n := q.peer.Accepted.Load(); n != 0 {
			t.Errorf("%s: a queued torrent connected to its seeder %d times", step, n)
		}
	}
}

// finish lets q's seeder send, waits for q to finish and checks its bytes.
func (q *queuedTorrent) finish(t *testing.T) {
	t.Helper()
	done := q.tr.Done()
	q.open()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("torrent still %v after 60s", q.tr.State())
	}
	if st := q.tr.State(); st != pipeline.Finished {
		t.Fatalf("torrent %v (%v), want finished", st, q.tr.Err())
	}
	if !bytes.Equal(q.store.Bytes(), q.tor.Data) {
		t.Error("bytes differ from the payload")
	}
}

// TestSessionQueueDownloads: with MaxActiveDownloads 1, of three torrents added one runs
// and two are Queued, in the order added, without a connection to their seeders; as each
// completes, the next one in the queue starts (the start happens before the finished
// one's Done closes, so the states are checked without waiting).
func TestSessionQueueDownloads(t *testing.T) {
	checkGoroutines(t)
	s := newQueueSession(t, 1, 0, pipeline.Config{})
	a, b, c := addGated(t, s, 101), addGated(t, s, 102), addGated(t, s, 103)
	wantQueue(t, "added", a, b, c)
	if got := pipeline.Queued.String(); got != "queued" {
		t.Errorf("Queued.String() = %q", got)
	}
	waited := make(chan pipeline.State, 1) // Wait on the last one: through its turn and its run
	go func() { waited <- c.tr.Wait(context.Background()) }()
	a.finish(t)
	wantQueue(t, "first finished", b, c)
	b.finish(t)
	wantQueue(t, "second finished", c)
	select {
	case st := <-waited:
		t.Fatalf("Wait returned %v while the torrent was queued, then running", st)
	default:
	}
	c.finish(t)
	select {
	case st := <-waited:
		if st != pipeline.Finished {
			t.Errorf("Wait = %v, want finished", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return once the torrent finished")
	}
}

// TestSessionQueuePauseRemove: pausing the running download starts the next queued one,
// and so does removing it; a paused queued torrent leaves the queue and Resume puts it at
// the end; raising the limit starts every queued torrent at once.
func TestSessionQueuePauseRemove(t *testing.T) {
	checkGoroutines(t)
	s := newQueueSession(t, 1, 0, pipeline.Config{})
	a, b, c, d := addGated(t, s, 111), addGated(t, s, 112), addGated(t, s, 113), addGated(t, s, 114)
	wantQueue(t, "added", a, b, c, d)

	a.tr.Pause()
	if st := a.tr.State(); st != pipeline.Paused {
		t.Fatalf("paused running torrent: %v", st)
	}
	wantQueue(t, "running one paused", b, c, d)

	waited := make(chan pipeline.State, 1)
	go func() { waited <- c.tr.Wait(context.Background()) }()
	c.tr.Pause() // a queued one: it leaves the queue
	select {
	case st := <-waited:
		if st != pipeline.Paused {
			t.Errorf("Wait on a queued torrent paused = %v, want paused", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return once the queued torrent was paused")
	}
	if st, pos := c.tr.State(), c.tr.QueuePosition(); st != pipeline.Paused || pos != -1 {
		t.Fatalf("paused queued torrent: %v at %d, want paused, not queued", st, pos)
	}
	wantQueue(t, "queued one paused", b, d)
	if err := c.tr.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := a.tr.Resume(); err != nil {
		t.Fatal(err)
	}
	wantQueue(t, "both resumed", b, d, c)
	if st, pos := a.tr.State(), a.tr.QueuePosition(); st != pipeline.Queued || pos != 2 {
		t.Fatalf("the paused running torrent, resumed: %v at %d, want queued at 2", st, pos)
	}

	if err := b.tr.Remove(false); err != nil {
		t.Fatal(err)
	}
	wantQueue(t, "running one removed", d, c)

	s.SetQueueLimits(3, 0)
	if dl, sd := s.QueueLimits(); dl != 3 || sd != 0 {
		t.Errorf("QueueLimits() = %d, %d after SetQueueLimits(3, 0)", dl, sd)
	}
	for _, q := range []*queuedTorrent{d, c, a} {
		if st := q.tr.State(); st != pipeline.Running {
			t.Fatalf("after the limit rose: %v, want running", st)
		}
	}
	d.finish(t)
	c.finish(t)
	a.finish(t)
}

// TestSessionQueueMove: SetQueuePosition moves a queued torrent within the queue (past the
// end is the last place), and the queue starts the torrents in their new order; it moves
// nothing that is not queued.
func TestSessionQueueMove(t *testing.T) {
	checkGoroutines(t)
	s := newQueueSession(t, 1, 0, pipeline.Config{})
	a, b, c, d := addGated(t, s, 161), addGated(t, s, 162), addGated(t, s, 163), addGated(t, s, 164)
	wantQueue(t, "added", a, b, c, d)
	if !d.tr.SetQueuePosition(0) {
		t.Fatal("SetQueuePosition of a queued torrent = false")
	}
	wantQueue(t, "last moved first", a, d, b, c)
	if !d.tr.SetQueuePosition(99) || !c.tr.SetQueuePosition(-1) {
		t.Fatal("SetQueuePosition out of range = false")
	}
	wantQueue(t, "moved past both ends", a, c, b, d)
	if a.tr.SetQueuePosition(0) {
		t.Error("SetQueuePosition of a running torrent = true")
	}
	a.finish(t)
	wantQueue(t, "first finished", c, b, d)
	c.finish(t)
	b.finish(t)
	d.finish(t)
}

// TestSessionQueueResumeNow: ResumeNow starts a queued torrent, and a paused one, at once
// over the limit, as torrent-start-now does; the others stay queued until enough slots
// are back.
func TestSessionQueueResumeNow(t *testing.T) {
	checkGoroutines(t)
	s := newQueueSession(t, 1, 0, pipeline.Config{})
	a, b, c := addGated(t, s, 141), addGated(t, s, 142), addGated(t, s, 143)
	wantQueue(t, "added", a, b, c)
	if err := c.tr.ResumeNow(); err != nil {
		t.Fatal(err)
	}
	wantQueue(t, "the last queued started now", c, b)
	if st := a.tr.State(); st != pipeline.Running {
		t.Fatalf("the first torrent: %v, want still running", st)
	}
	a.finish(t) // two ran over a limit of one: the queued one still waits
	wantQueue(t, "one of two finished", c, b)
	c.finish(t)
	wantQueue(t, "both finished", b)

	b.tr.Pause()
	d := addGated(t, s, 144) // b holds the slot no more: d runs
	if err := b.tr.ResumeNow(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []*queuedTorrent{b, d} {
		if st := q.tr.State(); st != pipeline.Running {
			t.Fatalf("paused torrent started now, and the one running: %v, want running", st)
		}
	}
	b.finish(t)
	d.finish(t)
}

// TestSessionQueueSeeds: with MaxActiveSeeds 1 (and downloads unlimited), a complete
// torrent that seeds takes the one seed slot; a second one completes its check, finds no
// seed slot, stops and is Queued to seed; pausing the first starts it. A complete torrent
// that does not seed takes no slot: it runs, and finishes, while the seed slot is taken.
func TestSessionQueueSeeds(t *testing.T) {
	checkGoroutines(t)
	s := newQueueSession(t, 0, 1, pipeline.Config{Seed: true, Recheck: true})
	add := func(seed uint64, opts ...pipeline.Option) *pipeline.Torrent {
		tor := stagetest.NewTorrent(t, seed, "seed", 16<<10, 100_000)
		tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, append([]pipeline.Option{pipeline.WithStorage(filled(t, tor))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	first := add(121)
	firstDone := first.Done()
	second := add(122)
	secondDone := second.Done()
	// Both run as downloads until their checks complete them; whichever completes first
	// takes the seed slot, and the other's run ends.
	var seeding, waiting *pipeline.Torrent
	select {
	case <-firstDone:
		seeding, waiting = second, first
	case <-secondDone:
		seeding, waiting = first, second
	case <-time.After(30 * time.Second):
		t.Fatalf("seeds still %v and %v", first.State(), second.State())
	}
	if st := seeding.State(); st != pipeline.Running {
		t.Fatalf("seeding torrent: %v, want running", st)
	}
	if st, pos := waiting.State(), waiting.QueuePosition(); st != pipeline.Queued || pos != 0 || !waiting.QueuedToSeed() {
		t.Fatalf("second seed: %v at %d, queued to seed %v; want queued to seed at 0", st, pos, waiting.QueuedToSeed())
	}

	noSeed := add(123, pipeline.WithConfig(pipeline.Config{OutDir: t.TempDir(), Recheck: true, NoPex: true}), pipeline.WithPeerSource(stages.StaticPeers(nil)))
	select {
	case <-noSeed.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("complete torrent that does not seed still %v", noSeed.State())
	}
	if st := noSeed.State(); st != pipeline.Finished {
		t.Errorf("complete torrent that does not seed: %v (%v), want finished", st, noSeed.Err())
	}
	if st := waiting.State(); st != pipeline.Queued {
		t.Errorf("queued seed after a torrent without seeding finished: %v, want still queued", st)
	}

	seeding.Pause()
	if st := waiting.State(); st != pipeline.Running {
		t.Fatalf("queued seed after the seed paused: %v, want running", st)
	}
	if waiting.QueuedToSeed() || waiting.QueuePosition() != -1 {
		t.Error("the seed that started is still listed in the queue")
	}
	if err := seeding.Resume(); err != nil {
		t.Fatal(err)
	}
	if st, pos := seeding.State(), seeding.QueuePosition(); st != pipeline.Queued || pos != 0 || !seeding.QueuedToSeed() {
		t.Errorf("resumed seed with the slot taken: %v at %d, want queued to seed at 0", st, pos)
	}
}

// TestSessionQueueConcurrent: four goroutines pause, resume, start now and move six
// torrents, and change the limits, at once (a fixed number of operations each, seeded);
// then every torrent is paused and resumed in order under a limit of two. The queue is
// whole again: two run, and the four others wait in the order they were resumed. A slot
// leaked by a race would leave fewer running, a torrent left behind in the queue more.
func TestSessionQueueConcurrent(t *testing.T) {
	checkGoroutines(t)
	s := newQueueSession(t, 2, 0, pipeline.Config{})
	var qs []*queuedTorrent
	for i := range 6 {
		qs = append(qs, addGated(t, s, uint64(171+i)))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 50 {
				q := qs[rng.IntN(len(qs))]
				switch rng.IntN(5) {
				case 0:
					q.tr.Pause()
				case 1:
					q.tr.Resume()
				case 2:
					q.tr.ResumeNow()
				case 3:
					q.tr.SetQueuePosition(rng.IntN(4))
				case 4:
					s.SetQueueLimits(1+rng.IntN(3), 0)
				}
			}
		}()
	}
	wg.Wait()
	for _, q := range qs {
		q.tr.Pause()
	}
	s.SetQueueLimits(2, 0)
	for _, q := range qs {
		if err := q.tr.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	for i, q := range qs[:2] {
		if st := q.tr.State(); st != pipeline.Running {
			t.Errorf("torrent %d resumed first: %v, want running", i, st)
		}
	}
	for i, q := range qs[2:] {
		if st, pos := q.tr.State(), q.tr.QueuePosition(); st != pipeline.Queued || pos != i {
			t.Errorf("torrent %d: %v at %d, want queued at %d", i+2, st, pos, i)
		}
	}
}
