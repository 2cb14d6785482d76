package pipeline_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// sessionLog records a session's events by torrent; until waits on it.
type sessionLog struct {
	mu      sync.Mutex
	by      map[*pipeline.Torrent][]stages.Event
	changed chan struct{}
}

func newSessionLog() *sessionLog {
	return &sessionLog{by: make(map[*pipeline.Torrent][]stages.Event), changed: make(chan struct{}, 1)}
}

func (l *sessionLog) add(t *pipeline.Torrent, e stages.Event) {
	l.mu.Lock()
	l.by[t] = append(l.by[t], e)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// count returns how many events of t (nil: of every torrent) match.
func (l *sessionLog) count(t *pipeline.Torrent, match func(stages.Event) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for tr, es := range l.by {
		if t != nil && tr != t {
			continue
		}
		for _, e := range es {
			if match(e) {
				n++
			}
		}
	}
	return n
}

// until waits for cond, checked after each event, within d.
func (l *sessionLog) until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

func isConnected(e stages.Event) bool { _, ok := e.(stages.PeerConnected); return ok }
func isDropped(e stages.Event) bool   { _, ok := e.(stages.PeerDropped); return ok }
func isSessionFull(e stages.Event) bool {
	d, ok := e.(stages.DialFailed)
	return ok && errors.Is(d.Err, stages.ErrSessionFull)
}

// capSwarm is a session of two torrents, each offered seeders fake peers that hold their
// unchoke until open is called.
type capSwarm struct {
	s     *pipeline.Session
	log   *sessionLog
	tors  []*stagetest.Torrent
	trs   []*pipeline.Torrent
	store []*stagetest.MemStorage
	open  func()
}

func newCapSwarm(t *testing.T, maxConns, seeders int) *capSwarm {
	t.Helper()
	log := newSessionLog()
	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0", MaxConns: maxConns, Events: log.add,
		Defaults: pipeline.Config{OutDir: t.TempDir(), NoPex: true, Dial: stages.DialConfig{RetryDelay: 50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	gate := make(chan struct{})
	cs := &capSwarm{s: s, log: log, open: sync.OnceFunc(func() { close(gate) })}
	t.Cleanup(cs.open)
	for i := range 2 {
		tor := stagetest.NewTorrent(t, uint64(91+i), "capped", 16<<10, 400_000)
		var peers stages.StaticPeers
		for range seeders {
			p := stagetest.NewFakePeer(t, tor, stagetest.Honest)
			p.Gate = gate
			peers = append(peers, p.Addr())
		}
		st := stagetest.NewMemStorage(tor.Meta.Info.Length)
		tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithStorage(st), pipeline.WithPeerSource(peers))
		if err != nil {
			t.Fatal(err)
		}
		cs.tors, cs.trs, cs.store = append(cs.tors, tor), append(cs.trs, tr), append(cs.store, st)
	}
	return cs
}

// TestSessionMaxConns: a session with MaxConns 3 runs two torrents of six seeders each.
// The session never holds more than 3 connections at once (the budget's high-water mark,
// taken as each connection registers), reaches them while the seeders hold back their
// data, and both torrents still complete: the second one's peers connect as the first
// one's connections end. After the runs end every slot is back, and each torrent saw a
// PeerDropped for each PeerConnected.
func TestSessionMaxConns(t *testing.T) {
	checkGoroutines(t)
	const maxConns = 3
	cs := newCapSwarm(t, maxConns, 6)
	cs.log.until(t, 20*time.Second, "3 connections", func() bool { return cs.log.count(nil, isConnected) >= maxConns })
	cs.open()
	w := waiter{60 * time.Second}
	for i, tr := range cs.trs {
		w.finished(t, tr)
		if !bytes.Equal(cs.store[i].Bytes(), cs.tors[i].Data) {
			t.Errorf("torrent %d: bytes differ from the payload", i)
		}
	}
	if peak := cs.s.PeakConns(); peak != maxConns {
		t.Errorf("most connections at once = %d, want %d (the cap, reached)", peak, maxConns)
	}
	if n := cs.s.Conns(); n != 0 {
		t.Errorf("Conns() = %d once every run ended, want 0: slots leaked", n)
	}
	for i, tr := range cs.trs {
		up, down := cs.log.count(tr, isConnected), cs.log.count(tr, isDropped)
		if up == 0 || up != down {
			t.Errorf("torrent %d: %d PeerConnected, %d PeerDropped; want as many, at least one", i, up, down)
		}
	}
	t.Logf("dials refused for the session's cap: %d", cs.log.count(nil, isSessionFull))
}

// TestSessionSetMaxConns: the same swarm under a cap of 2 stops at 2 connections while
// the seeders hold back their data; raised to 5 at run time, the dialers that waited are
// woken and reach 5 (so 2 was the cap's doing, not a want of peers); lowered to 1, no
// connection closes and none is added. Pause and Close give every slot back.
func TestSessionSetMaxConns(t *testing.T) {
	checkGoroutines(t)
	cs := newCapSwarm(t, 2, 6)
	conns := func(n int) func() bool {
		return func() bool {
			return cs.log.count(nil, isConnected)-cs.log.count(nil, isDropped) >= n && cs.s.Conns() == n
		}
	}
	cs.log.until(t, 20*time.Second, "2 connections", conns(2))
	cs.s.SetMaxConns(5)
	if got := cs.s.MaxConns(); got != 5 {
		t.Errorf("MaxConns() = %d after SetMaxConns(5)", got)
	}
	cs.log.until(t, 20*time.Second, "5 connections after SetMaxConns(5)", conns(5))
	if peak := cs.s.PeakConns(); peak != 5 {
		t.Errorf("most connections at once = %d, want 5", peak)
	}
	cs.s.SetMaxConns(1)
	if n := cs.s.Conns(); n != 5 {
		t.Errorf("Conns() = %d after lowering the cap, want the 5 open", n)
	}
	cs.trs[0].Pause() // torrent 1's connections stay: no data flows, and none is added
	if n, want := cs.s.Conns(), cs.log.count(cs.trs[1], isConnected)-cs.log.count(cs.trs[1], isDropped); n != want {
		t.Errorf("Conns() = %d after torrent 0's pause, want torrent 1's %d", n, want)
	}
	cs.s.Close()
	if n := cs.s.Conns(); n != 0 {
		t.Errorf("Conns() = %d after Close, want 0", n)
	}
	if peak := cs.s.PeakConns(); peak != 5 {
		t.Errorf("most connections at once = %d after lowering the cap, want still 5", peak)
	}
}

// TestSessionMaxConnsEveryEnd: under a cap of 3, every way a connection ends gives its
// slot back: peers banned for corrupt data (while the honest one holds back its data),
// a magnet link's connections, which wait at the metadata gate before the download goes
// on over them, a torrent removed while connected, and the ends of the runs. The session
// holds no connection afterwards, and never held more than 3.
func TestSessionMaxConnsEveryEnd(t *testing.T) {
	checkGoroutines(t)
	const maxConns = 3
	log := newSessionLog()
	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0", MaxConns: maxConns, Events: log.add,
		Defaults: pipeline.Config{OutDir: t.TempDir(), NoPex: true, Dial: stages.DialConfig{RetryDelay: 50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := waiter{60 * time.Second}

	// Bans: two corrupt peers serve while the honest one waits; once both are banned it
	// serves.
	tor := stagetest.NewTorrent(t, 151, "bans", 16<<10, 200_000)
	gate := make(chan struct{})
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	honest.Gate = gate
	peers := stages.StaticPeers{honest.Addr(), stagetest.NewFakePeer(t, tor, stagetest.Corrupt).Addr(), stagetest.NewFakePeer(t, tor, stagetest.Corrupt).Addr()}
	st := stagetest.NewMemStorage(tor.Meta.Info.Length)
	banned, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithStorage(st), pipeline.WithPeerSource(peers))
	if err != nil {
		t.Fatal(err)
	}
	isBan := func(e stages.Event) bool { _, ok := e.(stages.PeerBanned); return ok }
	log.until(t, 30*time.Second, "two bans", func() bool { return log.count(banned, isBan) == 2 })
	close(gate)
	w.finished(t, banned)
	if !bytes.Equal(st.Bytes(), tor.Data) {
		t.Error("bans: bytes differ from the payload")
	}
	if n := s.Conns(); n != 0 {
		t.Fatalf("Conns() = %d after the run with bans ended, want 0", n)
	}

	// A magnet link, from a seeding session.
	mtor := stagetest.NewTorrent(t, 152, "magnet", 16<<10, 150_000)
	seeder := newSession(t, pipeline.Config{OutDir: t.TempDir(), Seed: true, Recheck: true})
	if _, err := seeder.Add(pipeline.FromMetaInfo(mtor.Meta), false, pipeline.WithStorage(filled(t, mtor))); err != nil {
		t.Fatal(err)
	}
	var mst *stagetest.MemStorage
	uri := fmt.Sprintf("magnet:?xt=urn:btih:%x&x.pe=127.0.0.1:%d", mtor.Meta.InfoHash, seeder.Port())
	mag, err := s.Add(pipeline.FromMagnet(uri), false, pipeline.WithStorageFor(func(info *metainfo.Info) stages.Storage {
		mst = stagetest.NewMemStorage(info.Length)
		return mst
	}))
	if err != nil {
		t.Fatal(err)
	}
	w.finished(t, mag)
	if !bytes.Equal(mst.Bytes(), mtor.Data) {
		t.Error("magnet: bytes differ from the payload")
	}
	if n := s.Conns(); n != 0 {
		t.Fatalf("Conns() = %d after the magnet link's run ended, want 0", n)
	}

	// Removed while connected to three seeders holding back their data.
	rtor := stagetest.NewTorrent(t, 153, "removed", 16<<10, 150_000)
	rgate := make(chan struct{})
	defer close(rgate)
	var rpeers stages.StaticPeers
	for range 3 {
		p := stagetest.NewFakePeer(t, rtor, stagetest.Honest)
		p.Gate = rgate
		rpeers = append(rpeers, p.Addr())
	}
	removed, err := s.Add(pipeline.FromMetaInfo(rtor.Meta), false, pipeline.WithStorage(stagetest.NewMemStorage(rtor.Meta.Info.Length)), pipeline.WithPeerSource(rpeers))
	if err != nil {
		t.Fatal(err)
	}
	log.until(t, 30*time.Second, "three connections", func() bool { return s.Conns() == maxConns && log.count(removed, isConnected) >= maxConns })
	if err := removed.Remove(false); err != nil {
		t.Fatal(err)
	}
	if n := s.Conns(); n != 0 {
		t.Errorf("Conns() = %d after Remove, want 0", n)
	}
	if peak := s.PeakConns(); peak > maxConns {
		t.Errorf("most connections at once = %d, over the cap of %d", peak, maxConns)
	}
}
