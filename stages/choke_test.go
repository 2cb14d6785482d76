package stages

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func candidates(rates ...float64) []ChokeCandidate {
	var cs []ChokeCandidate
	for i, r := range rates {
		p := NewPeer(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1000+i)))
		cs = append(cs, ChokeCandidate{Peer: p, DownRate: r, UpRate: 100 - r})
	}
	return cs
}

func TestRateChokerKeepsFastestAndOneOptimistic(t *testing.T) {
	cs := candidates(10, 50, 30, 40, 20, 0)
	c := &RateChoker{Slots: 4, Rand: rand.New(rand.NewPCG(1, 2))}
	got := c.Choose(cs, false, true)
	if len(got) != 4 {
		t.Fatalf("Choose unchoked %d peers, want 4 slots", len(got))
	}
	// Leeching: the three best by download rate (50, 40, 30) and one optimistic other.
	for _, i := range []int{1, 3, 2} {
		if !slices.Contains(got, cs[i].Peer) {
			t.Errorf("peer with rate %v was choked, want it unchoked", cs[i].DownRate)
		}
	}
	opt := got[3]
	if slices.Contains([]*Peer{cs[1].Peer, cs[3].Peer, cs[2].Peer}, opt) {
		t.Fatal("the optimistic slot went to a regular peer")
	}
	// A regular round keeps the optimistic peer; an optimistic round may rotate it, and over
	// a few rounds every other peer gets its turn.
	if again := c.Choose(cs, false, false); again[3] != opt {
		t.Error("a regular round rotated the optimistic unchoke")
	}
	seen := map[*Peer]bool{}
	for range 50 {
		seen[c.Choose(cs, false, true)[3]] = true
	}
	if len(seen) != 3 {
		t.Errorf("optimistic unchoke reached %d of the 3 other peers in 50 rounds", len(seen))
	}
	// Seeding ranks by the rate we reach to them: now rate 0 (up 100) is the best.
	if got := c.Choose(cs, true, false); !slices.Contains(got[:3], cs[5].Peer) {
		t.Error("seeding: the peer we upload fastest to was not among the regular slots")
	}
}

func TestRateChokerFewPeers(t *testing.T) {
	c := &RateChoker{Slots: 4}
	if got := c.Choose(nil, false, true); len(got) != 0 {
		t.Fatalf("Choose(nil) = %v, want nobody", got)
	}
	cs := candidates(1, 2)
	if got := c.Choose(cs, false, false); len(got) != 2 {
		t.Fatalf("Choose of 2 interested peers unchoked %d, want both", len(got))
	}
}

// A quick choke pass only fills free slots: repeated, it never unchokes more peers than the
// choker has slots; a peer that leaves frees its slot for the next pass.
func TestQuickPassKeepsToTheSlots(t *testing.T) {
	info := testInfo()
	env := &Env{Info: info, Sched: NewScheduler(info, NewSequential(info.NumPieces()), 4)}
	r := newRegistry(env, &RateChoker{Slots: 2, Rand: rand.New(rand.NewPCG(1, 2))}, time.Hour)
	var ss []*session
	for i := range 6 {
		s := &session{p: NewPeer(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1000+i))),
			choking: true, peerInterested: true}
		ss = append(ss, s)
		r.add(s)
	}
	unchoked := func() (n int, first *session) {
		for _, s := range ss {
			if !s.isChoking() {
				if first == nil {
					first = s
				}
				n++
			}
		}
		return n, first
	}
	for pass := range 20 {
		r.choose(false, false)
		if n, _ := unchoked(); n != 2 {
			t.Fatalf("after quick pass %d, %d peers unchoked, want the 2 slots", pass+1, n)
		}
	}
	_, gone := unchoked()
	r.remove(gone)
	ss = slices.DeleteFunc(ss, func(s *session) bool { return s == gone })
	if n, _ := unchoked(); n != 1 {
		t.Fatalf("after a peer left, %d unchoked, want 1", n)
	}
	r.choose(false, false)
	if n, _ := unchoked(); n != 2 {
		t.Fatalf("after the quick pass that follows, %d unchoked, want 2", n)
	}
	r.choose(true, true)
	if n, _ := unchoked(); n != 2 {
		t.Fatalf("after a full round, %d unchoked, want 2", n)
	}
}
