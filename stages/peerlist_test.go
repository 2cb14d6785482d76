package stages

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// clock is a PeerList clock that moves only when told.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func newTestList(t *testing.T, cfg PeerListConfig, self string) (*PeerList, *clock) {
	t.Helper()
	clk := &clock{now: time.Unix(1_000_000, 0)}
	cfg.Now = clk.Now
	var id [20]byte
	copy(id[:], self)
	return NewPeerList(cfg, NewBans(), id, nil), clk
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func addrsOf(cs []Candidate) []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range cs {
		out = append(out, c.Addr)
	}
	return out
}

// pipeConn returns a Conn from addr with the peer id id over an in-memory pipe, and the
// pipe's far end, which reads io.EOF once the Conn is closed.
func pipeConn(t *testing.T, addr, id string) (*Conn, net.Conn) {
	t.Helper()
	near, far := net.Pipe()
	t.Cleanup(func() { near.Close(); far.Close() })
	c := &Conn{Conn: near, Addr: ap(addr)}
	copy(c.PeerID[:], id)
	return c, far
}

// closedFar reports whether the near end of far is closed. Close is synchronous on a pipe,
// so a short deadline only bounds the wait for an answer that is no.
func closedFar(far net.Conn) bool {
	far.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := far.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}

// connect takes a from the list and registers an outgoing connection to it.
func connect(t *testing.T, pl *PeerList, addr, id string) (*Conn, net.Conn) {
	t.Helper()
	if got, _ := pl.Take(1); len(got) != 1 || got[0].Addr != ap(addr) {
		t.Fatalf("Take(1) = %v, want %s", got, addr)
	}
	c, far := pipeConn(t, addr, id)
	if err := pl.Connected(c, true); err != nil {
		t.Fatalf("Connected(%s) = %v", addr, err)
	}
	return c, far
}

// TestPeerListBackoff: a peer that fails waits 5 s, then 10 s, and after MaxFails (3)
// failures, never having worked, is forgotten; a source that lists it again brings it back.
func TestPeerListBackoff(t *testing.T) {
	pl, clk := newTestList(t, PeerListConfig{}, "self")
	a := ap("10.0.0.1:6881")
	pl.Add(a, FromSource)
	pl.Add(a, FromSource)
	if n := pl.Len(); n != 1 {
		t.Fatalf("Add twice: %d entries, want 1", n)
	}
	for i, wantWait := range []time.Duration{5 * time.Second, 10 * time.Second} {
		if got, _ := pl.Take(10); !slices.Equal(addrsOf(got), []netip.AddrPort{a}) {
			t.Fatalf("attempt %d: Take = %v, want %v", i+1, got, a)
		}
		if got, wait := pl.Take(10); len(got) != 0 || wait != -1 {
			t.Fatalf("Take while dialling = %v, %v; want nothing", got, wait)
		}
		pl.Failed(a, true)
		if got, wait := pl.Take(10); len(got) != 0 || wait != wantWait {
			t.Fatalf("after failure %d: Take = %v, wait %v; want nothing for %v", i+1, got, wait, wantWait)
		}
		clk.advance(wantWait - time.Millisecond)
		if got, _ := pl.Take(10); len(got) != 0 {
			t.Fatalf("after failure %d: Take = %v a millisecond early", i+1, got)
		}
		clk.advance(time.Millisecond)
	}
	pl.Take(10)
	pl.Failed(a, true)
	if info, ok := pl.Peer(a); ok {
		t.Fatalf("after 3 failures: %+v, want it forgotten", info)
	}
	pl.Add(a, FromSource)
	if got, _ := pl.Take(10); !slices.Equal(addrsOf(got), []netip.AddrPort{a}) {
		t.Fatalf("listed again: Take = %v, want %v at once", got, a)
	}
}

// TestPeerListOrder: candidates come best first: peers that worked, then fewest failures,
// then the oldest known.
func TestPeerListOrder(t *testing.T) {
	pl, clk := newTestList(t, PeerListConfig{}, "self")
	failed, worked, older, newer := ap("10.0.0.1:1"), ap("10.0.0.2:2"), ap("10.0.0.3:3"), ap("10.0.0.4:4")
	pl.Add(failed, FromSource)
	pl.Take(1)
	pl.Failed(failed, true)
	pl.Add(worked, FromSource)
	c, _ := connect(t, pl, worked.String(), "peer")
	c.Close()
	pl.Add(older, FromSource)
	pl.Add(newer, FromSource)
	clk.advance(time.Minute)
	got, wait := pl.Take(3)
	if want := []netip.AddrPort{worked, older, newer}; !slices.Equal(addrsOf(got), want) {
		t.Fatalf("Take(3) = %v, want %v", addrsOf(got), want)
	}
	if !got[0].Worked || got[1].Worked {
		t.Errorf("Take(3) = %+v: only the first worked", got)
	}
	if wait != -1 {
		t.Errorf("Take(3) wait = %v, want -1", wait)
	}
	if got, _ := pl.Take(3); !slices.Equal(addrsOf(got), []netip.AddrPort{failed}) {
		t.Fatalf("Take(3) again = %v, want %v", addrsOf(got), failed)
	}
}

// TestPeerListReconnect: a peer that worked and disconnects is tried again after
// ReconnectDelay, doubled while its connections stay short, and after the first wait again
// once a connection lasted StableAfter; one dropped for a fault backs off as a failure.
func TestPeerListReconnect(t *testing.T) {
	pl, clk := newTestList(t, PeerListConfig{}, "self")
	a := ap("10.0.0.1:6881")
	pl.Add(a, FromSource)
	for _, tc := range []struct {
		name  string
		lasts time.Duration
		fault bool
		want  time.Duration
	}{
		{"first drop", time.Second, false, 3 * time.Second},
		{"dropped again soon", time.Second, false, 6 * time.Second},
		{"third short connection", time.Second, false, 12 * time.Second},
		{"after a stable connection", time.Minute, false, 3 * time.Second},
		{"dropped for a fault", time.Second, true, 5 * time.Second},
	} {
		c, _ := connect(t, pl, a.String(), "peer")
		if info, _ := pl.Peer(a); !info.Connected || !info.Worked || info.Fails != 0 {
			t.Fatalf("%s: connected peer %+v", tc.name, info)
		}
		clk.advance(tc.lasts)
		if tc.fault {
			pl.Fault(c)
		}
		c.Close()
		c.Close() // a second Close reports nothing more
		_, wait := pl.Take(1)
		if wait != tc.want {
			t.Errorf("%s: next try in %v, want %v", tc.name, wait, tc.want)
		}
		clk.advance(wait)
	}
}

// TestPeerListNeverAgain: a peer of another torrent, or ourselves, is never offered again,
// even when a source lists it again; a banned address is refused and dropped.
func TestPeerListNeverAgain(t *testing.T) {
	pl, clk := newTestList(t, PeerListConfig{}, "self")
	other, banned := ap("10.0.0.1:1"), ap("10.0.0.2:2")
	pl.Add(other, FromSource)
	pl.Add(banned, FromSource)
	pl.Take(1)
	pl.Failed(other, false)
	pl.Add(other, FromSource)
	pl.bans.Add(banned)
	clk.advance(time.Hour)
	if got, wait := pl.Take(10); len(got) != 0 || wait != -1 {
		t.Fatalf("Take = %v, %v; want nothing, ever", got, wait)
	}
	if _, ok := pl.Peer(banned); ok {
		t.Error("banned peer still listed")
	}
	if pl.Add(banned, FromSource) {
		t.Error("Add(banned) = true")
	}
}

// TestPeerListBound: beyond MaxEntries, a new address takes the place of a peer that
// failed and never worked, or is dropped when none is that bad; a connected peer stays.
func TestPeerListBound(t *testing.T) {
	pl, _ := newTestList(t, PeerListConfig{MaxEntries: 3}, "self")
	a, b, c, d, e := ap("10.0.0.1:1"), ap("10.0.0.2:2"), ap("10.0.0.3:3"), ap("10.0.0.4:4"), ap("10.0.0.5:5")
	for _, x := range []netip.AddrPort{a, b, c} {
		pl.Add(x, FromSource)
	}
	if pl.Add(d, FromSource) {
		t.Fatal("Add past the bound with nothing worse known = true")
	}
	connect(t, pl, a.String(), "peer")
	pl.Take(1) // b
	pl.Failed(b, true)
	if !pl.Add(d, FromSource) {
		t.Fatal("Add(d) = false, want b, failed, evicted")
	}
	if _, ok := pl.Peer(b); ok {
		t.Error("b, failed and never worked, is still listed")
	}
	if pl.Add(e, FromSource) {
		t.Fatal("Add(e) = true: nothing left is worse than it")
	}
	pl.Add(c, FromSource) // known already: not dropped
	if n := pl.Discarded(); n != 2 {
		t.Errorf("Discarded() = %d, want 2 (d at first, then e)", n)
	}
	if info, ok := pl.Peer(a); !ok || !info.Connected {
		t.Errorf("connected a: %+v, %v", info, ok)
	}
}

// TestPeerListConnLimit: one limit holds for incoming and outgoing connections. A peer
// that handshakes with every slot taken is offered again later, with no failure counted;
// an incoming peer is forgotten when it leaves (its address is not where it listens).
func TestPeerListConnLimit(t *testing.T) {
	pl, clk := newTestList(t, PeerListConfig{}, "self")
	pl.LimitConns(2)
	pl.LimitConns(5) // Listen's bound and Dial's: the lower holds
	// Fakes on loopback share a peer id: both stay.
	in1, _ := pipeConn(t, "127.0.0.1:40001", "fake")
	in2, _ := pipeConn(t, "127.0.0.1:40002", "fake")
	for _, c := range []*Conn{in1, in2} {
		if err := pl.Connected(c, false); err != nil {
			t.Fatalf("incoming %v: %v", c.Addr, err)
		}
	}
	out := ap("10.0.0.1:6881")
	pl.Add(out, FromSource)
	pl.Take(1)
	c, _ := pipeConn(t, out.String(), "peer")
	if err := pl.Connected(c, true); !errors.Is(err, errFull) {
		t.Fatalf("third connection: %v, want errFull", err)
	}
	if info, _ := pl.Peer(out); info.Fails != 0 || !info.Worked || info.Connected {
		t.Errorf("refused for the limit: %+v, want idle, worked, no failure", info)
	}
	in1.Close()
	if _, ok := pl.Peer(in1.Addr); ok {
		t.Error("incoming peer still listed after it left")
	}
	clk.advance(time.Minute)
	connect(t, pl, out.String(), "peer")
	if n := pl.Conns(); n != 2 {
		t.Errorf("Conns() = %d, want 2", n)
	}
}

// TestPeerListDuplicates: a second connection to one peer is refused or replaces the
// first, the same way on both sides: by the listening address, and off loopback by IP
// address and peer id together.
func TestPeerListDuplicates(t *testing.T) {
	const low, high = "-AA-lower-id", "-ZZ-higher-id" // our ids, either side of "-MM-peer"
	tests := []struct {
		name     string
		self     string
		outAddr  string // we dialled it
		inAddr   string // it connected to us
		inID     string
		port     uint16 // its BEP 10 "p", 0 if none
		wantOut  bool   // our outgoing connection stays
		wantIn   bool   // the incoming one stays
		wantDial string // the address offered once both closed
	}{
		{"listen port tells, our id lower: our outgoing stays", low,
			"127.0.0.1:6881", "127.0.0.1:50000", "-MM-peer", 6881, true, false, "127.0.0.1:6881"},
		{"listen port tells, our id higher: its outgoing stays", high,
			"127.0.0.1:6881", "127.0.0.1:50000", "-MM-peer", 6881, false, true, "127.0.0.1:6881"},
		{"same IP and id off loopback, our id lower", low,
			"10.0.0.5:6881", "10.0.0.5:50000", "-MM-peer", 0, true, false, "10.0.0.5:6881"},
		{"same IP and id off loopback, our id higher", high,
			"10.0.0.5:6881", "10.0.0.5:50000", "-MM-peer", 0, false, true, "10.0.0.5:6881"},
		{"same id on loopback, other port: two fakes", low,
			"127.0.0.1:6881", "127.0.0.1:50000", "-MM-peer", 0, true, true, "127.0.0.1:6881"},
		{"same id, other IP", low,
			"10.0.0.5:6881", "10.0.0.6:50000", "-MM-peer", 0, true, true, "10.0.0.5:6881"},
		{"same IP off loopback, other id", low,
			"10.0.0.5:6881", "10.0.0.5:50000", "-MM-other", 0, true, true, "10.0.0.5:6881"},
		{"listen port of a peer not yet known", low,
			"10.0.0.5:6881", "10.0.0.6:50000", "-MM-peer", 7000, true, true, "10.0.0.6:7000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, clk := newTestList(t, PeerListConfig{}, tc.self)
			budget := NewConnBudget(0) // counts: each connection kept holds one slot
			pl.UseBudget(budget)
			pl.Add(ap(tc.outAddr), FromSource)
			out, outFar := connect(t, pl, tc.outAddr, "-MM-peer")
			in, inFar := pipeConn(t, tc.inAddr, tc.inID)
			err := pl.Connected(in, false)
			inStays := err == nil
			if err != nil && !errors.Is(err, errDuplicate) {
				t.Fatalf("Connected(incoming) = %v", err)
			}
			if inStays && tc.port != 0 && pl.ListenPort(in, tc.port) {
				inStays = false
			}
			if !inStays {
				in.Close() // the caller's part
			}
			if inStays != tc.wantIn {
				t.Errorf("incoming connection stays = %v, want %v", inStays, tc.wantIn)
			}
			if outClosed := closedFar(outFar); outClosed == tc.wantOut {
				t.Errorf("outgoing connection closed = %v, want %v", outClosed, !tc.wantOut)
			}
			if inClosed := closedFar(inFar); inClosed == tc.wantIn {
				t.Errorf("incoming connection closed = %v, want %v", inClosed, !tc.wantIn)
			}
			if want := btoi(tc.wantIn) + btoi(tc.wantOut); pl.Conns() != want || budget.InUse() != want {
				t.Errorf("Conns(), budget's InUse() = %d, %d, want %d", pl.Conns(), budget.InUse(), want)
			}
			out.Close()
			in.Close()
			if n := budget.InUse(); n != 0 {
				t.Errorf("budget's InUse() = %d once both closed, want 0", n)
			}
			clk.advance(time.Minute)
			got, _ := pl.Take(10)
			if want := []netip.AddrPort{ap(tc.wantDial)}; !slices.Contains(addrsOf(got), want[0]) {
				t.Errorf("once both closed, Take = %v, want it to hold %v", addrsOf(got), want)
			}
			if slices.Contains(addrsOf(got), ap(tc.inAddr)) {
				t.Errorf("Take = %v offers the incoming peer's source port", addrsOf(got))
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestDialShortTimeoutForNewPeers: a peer never reached gets FirstHandshakeTimeout, not
// HandshakeTimeout: a listener that accepts and never speaks fails the dial although the
// handshake timeout is an hour.
func TestDialShortTimeoutForNewPeers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sw := NewSwarm([20]byte{1}, [20]byte{2}, 0, slog.New(slog.DiscardHandler), nil)
	d := Dial(ctx, sw, DialConfig{HandshakeTimeout: time.Hour, FirstHandshakeTimeout: 20 * time.Millisecond,
		Peers: PeerListConfig{FailBackoff: time.Hour}})
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	d.In() <- &PeerAddr{Addr: a}
	for {
		if info, _ := sw.Peers.Peer(a); info.Fails == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the silent peer's handshake did not time out")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	close(d.In())
	for range d.Out() {
	}
}
