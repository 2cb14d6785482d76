package stages

import (
	"errors"
	"testing"
	"time"
)

// woken reports whether pl's Wake has a signal waiting, and takes it.
func woken(pl *PeerList) bool {
	select {
	case <-pl.Wake():
		return true
	default:
		return false
	}
}

// TestConnBudgetShared: two lists drawing from one budget of 2 hold at most 2 connections
// together. A third is refused with ErrSessionFull (a no-slot error: the peer is tried
// again later, no failure counted) while the list's own limit is far; the list reports
// Full, so its dialer starts nothing. A close gives the slot back and wakes the list that
// waited for one (not a list that wanted none), whose peer then connects; SetMax grows
// and shrinks the budget at run time.
func TestConnBudgetShared(t *testing.T) {
	b := NewConnBudget(2)
	a, _ := newTestList(t, PeerListConfig{}, "self")
	c, clk := newTestList(t, PeerListConfig{}, "self")
	idle, _ := newTestList(t, PeerListConfig{}, "self") // draws from b, never asks for a slot
	a.UseBudget(b)
	c.UseBudget(b)
	idle.UseBudget(b)
	a.LimitConns(50)
	c.LimitConns(50)
	a.Add(ap("10.0.0.1:6881"), FromSource)
	a.Add(ap("10.0.0.2:6881"), FromSource)
	a1, _ := connect(t, a, "10.0.0.1:6881", "peer1")
	connect(t, a, "10.0.0.2:6881", "peer2")
	if got := b.InUse(); got != 2 {
		t.Fatalf("InUse() = %d after two connections, want 2", got)
	}
	if !c.Full() || !a.Full() {
		t.Errorf("Full() = %v, %v with the budget spent, want true for both lists", a.Full(), c.Full())
	}
	woken(c) // its Add's signal

	peer := ap("10.0.0.3:6881")
	c.Add(peer, FromSource)
	woken(c)
	c.Take(1)
	refused, _ := pipeConn(t, peer.String(), "peer3")
	err := c.Connected(refused, true)
	if !errors.Is(err, ErrSessionFull) || !errors.Is(err, errFull) {
		t.Fatalf("Connected with the budget spent = %v, want ErrSessionFull (an errFull)", err)
	}
	if info, _ := c.Peer(peer); info.Fails != 0 || info.Connected {
		t.Errorf("refused for the budget: %+v, want idle with no failure", info)
	}
	in, _ := pipeConn(t, "10.0.0.9:50000", "incoming")
	if err := c.Connected(in, false); !errors.Is(err, ErrSessionFull) {
		t.Errorf("incoming Connected with the budget spent = %v, want ErrSessionFull", err)
	}

	a1.Close()
	if !woken(c) {
		t.Error("a slot came back to a spent budget: the list waiting for one was not woken")
	}
	if woken(idle) {
		t.Error("a list that wanted no slot was woken")
	}
	if c.Full() {
		t.Error("Full() with a slot free")
	}
	clk.advance(time.Minute) // past the refused peer's reconnect delay
	connect(t, c, peer.String(), "peer3")
	if got := b.InUse(); got != 2 {
		t.Errorf("InUse() = %d, want 2", got)
	}

	woken(a)
	if !a.Full() || !c.Full() { // both find it spent: they wait
		t.Fatal("Full() = false with the budget spent")
	}
	b.SetMax(3)
	if !woken(a) || !woken(c) {
		t.Error("a budget that grew did not wake the lists waiting")
	}
	more, _ := pipeConn(t, "10.0.0.10:50000", "more")
	if err := a.Connected(more, false); err != nil {
		t.Fatalf("Connected after SetMax(3) = %v", err)
	}
	b.SetMax(1) // lowered below what is open: nothing closes, nothing new comes
	late, _ := pipeConn(t, "10.0.0.11:50000", "late")
	if err := a.Connected(late, false); !errors.Is(err, ErrSessionFull) {
		t.Errorf("Connected over a lowered budget = %v, want ErrSessionFull", err)
	}
	if got, peak := b.InUse(), b.Peak(); got != 3 || peak != 3 {
		t.Errorf("InUse(), Peak() = %d, %d, want 3, 3", got, peak)
	}
}

// TestConnBudgetLeave: a list that leaves its budget with a connection still registered
// gives that slot back at once, and the connection's later close gives nothing twice.
func TestConnBudgetLeave(t *testing.T) {
	b := NewConnBudget(4)
	pl, _ := newTestList(t, PeerListConfig{}, "self")
	pl.UseBudget(b)
	pl.Add(ap("10.0.0.1:6881"), FromSource)
	leaked, _ := connect(t, pl, "10.0.0.1:6881", "peer")
	if n := pl.LeaveBudget(); n != 1 {
		t.Errorf("LeaveBudget() = %d, want 1", n)
	}
	if got := b.InUse(); got != 0 {
		t.Errorf("InUse() = %d after LeaveBudget, want 0", got)
	}
	leaked.Close() // would panic on a slot given back twice
	if got := b.InUse(); got != 0 {
		t.Errorf("InUse() = %d after the close, want 0", got)
	}
}
