package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reugn/go-streams"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// gatedPeers is a PeerSource that emits first at once and then, once gate is closed, the
// rest: the honest peers join only once the hostile one's drop is reported, so that the drop
// is sure to happen during the run, and the download then completes from them.
type gatedPeers struct {
	first, then []netip.AddrPort
	gate        <-chan struct{}
}

func (g gatedPeers) Open(ctx context.Context, _ *stages.Swarm) streams.Source {
	out := make(chan any, len(g.first)+len(g.then))
	for _, a := range g.first {
		out <- &stages.PeerAddr{Addr: a}
	}
	go func() {
		defer close(out)
		select {
		case <-g.gate:
			for _, a := range g.then {
				out <- &stages.PeerAddr{Addr: a} // buffered: never blocks
			}
			<-ctx.Done()
		case <-ctx.Done():
		}
	}()
	return stages.NewSource(out)
}

// hostileCase is one hostile peer among two honest ones.
type hostileCase struct {
	name     string
	greet    stagetest.Greeting // default: a right handshake
	script   stagetest.Script
	incoming bool // the hostile peer dials us as a leecher, and we hold the first half of the pieces
	slow     bool // short snub and silent timeouts
	// want lists the events of the hostile peer's that show its drop, in any order.
	want []eventWant
}

// eventWant is an event that shows what became of the hostile peer: match reports whether
// e is one, given whether an address is the hostile peer's (hostileWatch.isBad).
type eventWant struct {
	what  string
	match func(e stages.Event, isBad func(netip.AddrPort) bool) bool
}

// dropped: the hostile peer's session ended for a fault of its own, with a reason that
// wraps sentinel. Where stages keeps the sentinel unexported (a bad request, an unsolicited
// block, a silent peer, a ban), sentinel is nil and the fault alone is asserted.
func dropped(sentinel error) eventWant {
	return eventWant{fmt.Sprintf("PeerDropped{hostile, Fault, Reason wrapping %v}", sentinel),
		func(e stages.Event, isBad func(netip.AddrPort) bool) bool {
			d, ok := e.(stages.PeerDropped)
			return ok && isBad(d.Addr) && d.Fault && (sentinel == nil || errors.Is(d.Reason, sentinel))
		}}
}

// banned: the hostile peer is banned.
func banned() eventWant {
	return eventWant{"PeerBanned{hostile}", func(e stages.Event, isBad func(netip.AddrPort) bool) bool {
		b, ok := e.(stages.PeerBanned)
		return ok && isBad(b.Addr)
	}}
}

// snubbed: the hostile peer held our requests past the snub timeout.
func snubbed() eventWant {
	return eventWant{"PeerSnubbed{hostile}", func(e stages.Event, isBad func(netip.AddrPort) bool) bool {
		s, ok := e.(stages.PeerSnubbed)
		return ok && isBad(s.Addr)
	}}
}

// dialFailed: our dial of the hostile peer failed in the handshake, with an error that
// wraps sentinel.
func dialFailed(sentinel error) eventWant {
	return eventWant{fmt.Sprintf("DialFailed{hostile, Err wrapping %v}", sentinel),
		func(e stages.Event, isBad func(netip.AddrPort) bool) bool {
			d, ok := e.(stages.DialFailed)
			return ok && isBad(d.Addr) && errors.Is(d.Err, sentinel)
		}}
}

// handshakeFailed: the hostile peer's connection to our listener ended in the handshake,
// with an error that wraps sentinel.
func handshakeFailed(sentinel error) eventWant {
	return eventWant{fmt.Sprintf("HandshakeFailed{hostile, Err wrapping %v}", sentinel),
		func(e stages.Event, isBad func(netip.AddrPort) bool) bool {
			h, ok := e.(stages.HandshakeFailed)
			return ok && isBad(h.Addr) && errors.Is(h.Err, sentinel)
		}}
}

func hostileCases(numPieces, pieceLen uint32) []hostileCase {
	none := func(hc *stagetest.HostileConn) error { return nil }
	return []hostileCase{
		{name: "length prefix 2^32-1 on a piece", script: stagetest.HugeLength(wire.Piece),
			want: []eventWant{dropped(wire.ErrMessageTooLong)}},
		{name: "length prefix 2^32-1 on a bitfield", script: stagetest.HugeLength(wire.BitfieldID),
			want: []eventWant{dropped(wire.ErrMessageTooLong)}},
		{name: "length prefix 2^32-1 on an extended message", script: stagetest.HugeLength(20),
			want: []eventWant{dropped(wire.ErrMessageTooLong)}},
		{name: "length prefix 2^32-1 on a have", script: stagetest.HugeLength(wire.Have),
			want: []eventWant{dropped(wire.ErrBadLength)}},
		{name: "bitfield one byte short", script: stagetest.BitfieldLength(-1),
			want: []eventWant{dropped(wire.ErrBadBitfield)}},
		{name: "bitfield one byte long", script: stagetest.BitfieldLength(1),
			want: []eventWant{dropped(wire.ErrMessageTooLong)}},
		{name: "bitfield with spare bits set", script: stagetest.SpareBits,
			want: []eventWant{dropped(wire.ErrBadBitfield)}},
		{name: "have for the piece count", script: stagetest.HaveIndex(numPieces),
			want: []eventWant{dropped(wire.ErrBadIndex)}},
		{name: "have for 2^32-1", script: stagetest.HaveIndex(1<<32 - 1),
			want: []eventWant{dropped(wire.ErrBadIndex)}},
		{name: "piece never requested", script: stagetest.PieceNeverRequested,
			want: []eventWant{dropped(nil)}}, // stages' errUnsolicited
		{name: "piece out of range", script: stagetest.PieceOutOfRange,
			want: []eventWant{dropped(wire.ErrBadIndex)}},
		{name: "data that fails its hash", script: stagetest.CorruptData,
			want: []eventWant{banned(), dropped(nil)}}, // stages' errBanned
		{name: "handshake with another info hash", greet: stagetest.WrongInfoHash, script: none,
			want: []eventWant{dialFailed(wire.ErrInfoHashMismatch)}},
		{name: "handshake dripped one byte a second", greet: stagetest.DripHandshake(time.Second), script: none,
			want: []eventWant{dialFailed(os.ErrDeadlineExceeded)}},
		{name: "block dripped one byte a second", script: stagetest.DripBlock(time.Second), slow: true,
			want: []eventWant{snubbed(), dropped(nil)}}, // stages' errSilent
		{name: "stall after unchoke", script: stagetest.StallAfterUnchoke, slow: true,
			want: []eventWant{snubbed(), dropped(nil)}}, // stages' errSilent
		{name: "request out of range", incoming: true, script: stagetest.Request(numPieces, 0, wire.BlockSize),
			want: []eventWant{dropped(wire.ErrBadIndex)}},
		{name: "request past the end of its piece", incoming: true, script: stagetest.Request(0, pieceLen-100, wire.BlockSize),
			want: []eventWant{dropped(nil)}}, // stages' errBadRequest
		{name: "request longer than 16 KiB", incoming: true, script: stagetest.Request(0, 0, 4*wire.BlockSize),
			want: []eventWant{dropped(nil)}}, // stages' errBadRequest
		{name: "request longer than 128 KiB", incoming: true, script: stagetest.Request(0, 0, 1<<20),
			want: []eventWant{dropped(wire.ErrMessageTooLong)}},
		{name: "request for a piece we lack", incoming: true, script: stagetest.Request(numPieces-2, 0, wire.BlockSize),
			want: []eventWant{dropped(nil)}}, // stages' errBadRequest
		{name: "incoming handshake with another info hash", incoming: true, greet: stagetest.WrongInfoHash, script: none,
			want: []eventWant{handshakeFailed(wire.ErrInfoHashMismatch)}},
		{name: "incoming handshake dripped one byte a second", incoming: true, greet: stagetest.DripHandshake(time.Second), script: none,
			want: []eventWant{handshakeFailed(os.ErrDeadlineExceeded)}},
	}
}

// hostileWatch records a run's events and closes done once, for every entry of want, an
// event of the hostile peer's has matched. The hostile peer is the one at bad, the address
// we dial; when it dials us instead (bad unset), it is whoever reached our listener: we
// dial the honest peers, and they never dial us.
type hostileWatch struct {
	eventLog
	bad netip.AddrPort

	mu       sync.Mutex
	incoming map[netip.AddrPort]bool
	want     []eventWant
	seen     []bool
	left     int
	done     chan struct{}
}

func watchHostile(bad netip.AddrPort, want []eventWant) *hostileWatch {
	w := &hostileWatch{bad: bad, incoming: make(map[netip.AddrPort]bool), want: want,
		seen: make([]bool, len(want)), left: len(want), done: make(chan struct{})}
	if w.left == 0 {
		close(w.done)
	}
	return w
}

// isBad reports whether a is the hostile peer's address; w.mu is held.
func (w *hostileWatch) isBad(a netip.AddrPort) bool {
	if w.bad.IsValid() {
		return a == w.bad
	}
	return w.incoming[a]
}

// add is the run's event function: a session's PeerConnected comes before its other
// events, from the same goroutine.
func (w *hostileWatch) add(e stages.Event) {
	w.eventLog.add(e)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch e := e.(type) {
	case stages.PeerConnected:
		if e.Incoming {
			w.incoming[e.Addr] = true
		}
	case stages.HandshakeFailed:
		w.incoming[e.Addr] = true
	}
	for i, want := range w.want {
		if !w.seen[i] && want.match(e, w.isBad) {
			w.seen[i] = true
			if w.left--; w.left == 0 {
				close(w.done)
			}
		}
	}
}

// missing lists the wanted events not seen.
func (w *hostileWatch) missing() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for i, want := range w.want {
		if !w.seen[i] {
			out = append(out, want.what)
		}
	}
	return out
}

// TestHostilePeers: whatever one hostile peer sends, it is dropped (or banned), and the
// download then completes from two honest peers with the right bytes, leaving no goroutine.
// The honest peers join only once the events that show the drop have come, so that a run
// that never drops the hostile peer cannot complete.
func TestHostilePeers(t *testing.T) {
	const pieceLen = 32 << 10
	for _, tc := range hostileCases(10, pieceLen) {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			// 10 pieces: not a multiple of 8, so the bitfield has spare bits.
			tor := stagetest.NewTorrent(t, 40, "hostile", pieceLen, 300_001)
			if n := tor.Meta.Info.NumPieces(); n != 10 {
				t.Fatalf("torrent has %d pieces, want 10", n)
			}
			greet := tc.greet
			if greet == nil {
				greet = stagetest.RightHandshake
			}
			bad := stagetest.NewHostilePeer(t, tor, greet, tc.script)
			honest := addrs(stagetest.NewFakePeer(t, tor, stagetest.Honest), stagetest.NewFakePeer(t, tor, stagetest.Honest))
			store := stagetest.NewMemStorage(tor.Meta.Info.Length)
			cfg := pipeline.Config{
				Dial: stages.DialConfig{HandshakeTimeout: time.Second, RetryDelay: time.Hour},
			}
			if tc.slow {
				cfg.Request = stages.RequestConfig{SnubTimeout: 300 * time.Millisecond,
					SilentTimeout: time.Second, Tick: 20 * time.Millisecond}
			}
			var watch *hostileWatch
			if tc.incoming {
				watch = watchHostile(netip.AddrPort{}, tc.want)
			} else {
				watch = watchHostile(bad.Addr(), tc.want)
			}
			src := gatedPeers{then: honest, gate: watch.done}
			if tc.incoming {
				listen := freeAddr(t)
				cfg.ListenAddr = listen.String()
				half := tor.Meta.Info.PieceOffset(tor.Meta.Info.NumPieces() / 2)
				if _, err := store.WriteAt(tor.Data[:half], 0); err != nil {
					t.Fatal(err)
				}
				cfg.Recheck = true
				bad.Dial(t.Context(), listen)
			} else {
				src.first = []netip.AddrPort{bad.Addr()}
			}
			err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(src), pipeline.WithStorage(store),
				withConfig(cfg), pipeline.WithEvents(watch.add))
			if err != nil {
				t.Fatalf("Run() = %v, want nil; events not seen: %q; hostile peer's errors: %v; events:%s",
					err, watch.missing(), bad.Errs(), peerEvents(&watch.eventLog))
			}
			if !bytes.Equal(store.Bytes(), tor.Data) {
				t.Fatal("downloaded bytes differ from the payload")
			}
			select {
			case <-bad.Dropped():
			case <-time.After(10 * time.Second):
				t.Errorf("the hostile peer never saw its connection closed; its errors: %v", bad.Errs())
			}
			// Dropped or banned peers are not called again within the run.
			if n := bad.Accepted.Load(); n > 1 {
				t.Errorf("hostile peer was connected %d times, want at most 1", n)
			}
			if tc.incoming && tc.greet != nil && strings.Contains(tc.name, "another info hash") {
				// We never answered the handshake of another torrent: the peer read nothing.
				if errs := bad.Errs(); len(errs) == 0 || !errors.Is(errs[0], io.EOF) || errors.Is(errs[0], io.ErrUnexpectedEOF) {
					t.Errorf("hostile peer's read of our handshake ended with %v, want a clean EOF", errs)
				}
			}
		})
	}
}

// TestUploadRequestFlood: a leecher that sends 4096 requests and reads none of the blocks
// is held back by TCP once MaxUploadQueue of them are queued at us, and the download from
// honest peers completes meanwhile with a bounded heap.
func TestUploadRequestFlood(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 42, "reqflood", 32<<10, 300_001)
	sent := make(chan struct{})
	bad := stagetest.NewHostilePeer(t, tor, stagetest.RightHandshake, stagetest.RequestFlood(4096, sent))
	honest := addrs(stagetest.NewFakePeer(t, tor, stagetest.Honest), stagetest.NewFakePeer(t, tor, stagetest.Honest))
	listen := freeAddr(t)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	half := tor.Meta.Info.PieceOffset(tor.Meta.Info.NumPieces() / 2)
	if _, err := store.WriteAt(tor.Data[:half], 0); err != nil {
		t.Fatal(err)
	}
	peaks := sampleMemory(t)
	bad.Dial(t.Context(), listen)
	ev := &eventLog{}
	p, err := pipeline.New(tor.Meta, pipeline.WithEvents(ev.add), pipeline.WithStorage(store),
		pipeline.WithPeerSource(gatedPeers{then: honest, gate: sent}),
		pipeline.WithConfig(pipeline.Config{ListenAddr: listen.String(), Recheck: true}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil; events:%s", err, peerEvents(ev))
	}
	heap, _ := peaks()
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	t.Logf("uploaded %d KiB to the flooding leecher; peak heap in use %.1f MiB", p.Stats().Uploaded>>10, float64(heap)/(1<<20))
	if heap > 64<<20 {
		t.Errorf("peak heap in use %.1f MiB, want under 64 MiB", float64(heap)/(1<<20))
	}
}

// TestHugeLengthPrefixAllocatesNothing: a length prefix of 2^32-1 is refused from the five
// bytes of prefix and id, before anything is read or allocated on its account.
func TestHugeLengthPrefixAllocatesNothing(t *testing.T) {
	for _, id := range []wire.ID{wire.Piece, wire.BitfieldID, wire.Request, 20, 255} {
		srcs := make([]*countingReader, 100)
		decs := make([]*wire.Decoder, len(srcs))
		for i := range srcs {
			// The prefix and id, then what a peer would stream behind them.
			srcs[i] = &countingReader{r: io.MultiReader(bytes.NewReader([]byte{0xFF, 0xFF, 0xFF, 0xFF, byte(id)}), zeros{})}
			decs[i] = wire.NewDecoder(srcs[i], 10)
		}
		var errs []error
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, d := range decs {
			if _, err := d.Next(); !errors.Is(err, wire.ErrMessageTooLong) && !errors.Is(err, wire.ErrBadLength) {
				errs = append(errs, err)
			}
		}
		runtime.ReadMemStats(&after)
		if len(errs) > 0 {
			t.Errorf("%v: Next() = %v, want ErrMessageTooLong or ErrBadLength", id, errs[0])
		}
		// Only the error is allocated (its text names the lengths), never the 4 GiB promised.
		if per := (after.TotalAlloc - before.TotalAlloc) / uint64(len(decs)); per > 1024 {
			t.Errorf("%v: %d bytes allocated per Next, want at most 1 KiB", id, per)
		}
		for _, s := range srcs {
			if s.n > 5 {
				t.Errorf("%v: the decoder read %d bytes, want 5 (prefix and id)", id, s.n)
				break
			}
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestFlood: 1000 connections reach our listener at once (silent, garbage, handshakes of
// another torrent, right handshakes followed by a 2^32-1 length prefix) while we download
// from an honest peer. The download completes, every flood connection is closed by us, and
// the peak heap and RSS are logged.
func TestFlood(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 41, "flood", 64<<10, 4<<20)
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	listen := freeAddr(t)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	floodGate := make(chan struct{})
	ev := &eventLog{}
	p, err := pipeline.New(tor.Meta, pipeline.WithEvents(ev.add), pipeline.WithStorage(store),
		pipeline.WithPeerSource(gatedPeers{then: addrs(honest), gate: floodGate}),
		pipeline.WithConfig(pipeline.Config{ListenAddr: listen.String(),
			Dial: stages.DialConfig{HandshakeTimeout: 2 * time.Second}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	peaks := sampleMemory(t)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitListening(t, listen, done)

	const n = 1000
	kinds := []stagetest.FloodKind{stagetest.FloodSilent, stagetest.FloodGarbage, stagetest.FloodWrongHash, stagetest.FloodHugeLength}
	flood := stagetest.StartFlood(t, tor, listen, n, 30*time.Second, func(i int) stagetest.FloodKind { return kinds[i%len(kinds)] })
	<-flood.Dialed()
	close(floodGate) // the honest peer joins while the flood is being dealt with
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	res := flood.Wait()
	heap, rss := peaks()
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if res.Connected+res.Failed != n || res.Held != 0 {
		t.Errorf("flood: %+v; want all %d connections closed by us", res, n)
	}
	hugeDropped := eventsOf(ev, func(e stages.PeerDropped) bool { return e.Fault && errors.Is(e.Reason, wire.ErrMessageTooLong) })
	t.Logf("flood of %d: %+v; huge-length sessions dropped: %d", n, res, len(hugeDropped))
	t.Logf("peak heap in use %.1f MiB, peak RSS %s (the flood's own %d connections included)",
		float64(heap)/(1<<20), rss, n)
}

// waitListening waits until addr accepts connections, or the run ends.
func waitListening(t *testing.T, addr netip.AddrPort, done <-chan error) {
	t.Helper()
	for {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-done:
			t.Fatalf("Run() ended before listening: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// sampleMemory samples the heap in use every 5 ms until the returned function is called,
// which reports the peak heap and the peak RSS since the call (VmHWM, reset first through
// /proc/self/clear_refs where allowed; otherwise the process's lifetime peak, said so).
func sampleMemory(t *testing.T) func() (heap uint64, rss string) {
	runtime.GC()
	resetNote := ""
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		resetNote = " (process lifetime peak: could not reset)"
	}
	var mu sync.Mutex
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stopAll := func() { once.Do(func() { close(stop); wg.Wait() }) }
	t.Cleanup(stopAll)
	return func() (uint64, string) {
		stopAll()
		rss := "unknown"
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					rss = strings.TrimSpace(v) + resetNote
				}
			}
		}
		return peak, rss
	}
}

// TestIncomingSlowloris: three times as many connections as we have slots reach our
// listener and never send a byte, with a handshake timeout of an hour; a seeder that
// connects after them still gets in, the download completes, and every silent connection
// is closed by us (the oldest waiting handshakes make room for new ones).
func TestIncomingSlowloris(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 43, "slowloris", 64<<10, 1<<20)
	listen := freeAddr(t)
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	const slots = 8
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(store),
		pipeline.WithPeerSource(gatedPeers{}), // nobody to dial: peers come to us
		pipeline.WithConfig(pipeline.Config{ListenAddr: listen.String(),
			Dial: stages.DialConfig{MaxPeers: slots, HandshakeTimeout: time.Hour}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitListening(t, listen, done)

	silent := make([]net.Conn, 3*slots)
	for i := range silent {
		c, err := net.Dial("tcp", listen.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent[i] = c
	}
	seeder := stagetest.NewHostilePeer(t, tor, stagetest.RightHandshake, stagetest.Seed)
	seeder.Dial(ctx, listen)
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v, want nil: the seeder could not get past the silent connections", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	for i, c := range silent {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("silent connection %d: Read = %d, %v; want it closed by us", i, n, err)
		}
	}
	seeder.Close()
}

// TestRespectsPeerReqq: a seeder says in its extended handshake (BEP 10) that it queues
// three requests, fewer than the four we start with; we never have more outstanding at it,
// we send our own extended handshake first, and the download completes.
func TestRespectsPeerReqq(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 44, "reqq", 64<<10, 512<<10+1000)
	seeder := stagetest.NewHostilePeer(t, tor, stagetest.ExtendedHandshake, stagetest.SeedWithReqq(3))
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(store),
		pipeline.WithPeerSource(stages.StaticPeers{seeder.Addr()}),
		pipeline.WithConfig(pipeline.Config{NoListen: true,
			Request: stages.RequestConfig{InitialQueue: 4, Tick: 20 * time.Millisecond}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil; the seeder's script ended with %v", err, seeder.Errs())
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	seeder.Close()
	for _, err := range seeder.Errs() {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the seeder's script failed: %v", err)
		}
	}
}
