package trackerd

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// checkSwarm checks that sw's slice, maps, announce-order list and seeder count agree.
func checkSwarm(t *testing.T, sw *swarm) {
	t.Helper()
	if len(sw.byID) != len(sw.list) || len(sw.byAddr) != len(sw.list) {
		t.Fatalf("%d peers in list, %d by ID, %d by address", len(sw.list), len(sw.byID), len(sw.byAddr))
	}
	seeders := 0
	for i, p := range sw.list {
		if p.idx != i || sw.byID[p.id] != p || sw.byAddr[p.addr] != p {
			t.Fatalf("peer %d (%x at %v, idx %d) is not indexed", i, p.id[0], p.addr, p.idx)
		}
		if p.seeder {
			seeders++
		}
	}
	if seeders != sw.seeders {
		t.Fatalf("seeders = %d, counted %d", sw.seeders, seeders)
	}
	n := 0
	var prev *peer
	for p := sw.oldest; p != nil; p = p.next {
		if p.prev != prev || prev != nil && p.last.Before(prev.last) {
			t.Fatalf("announce order broken at %x", p.id[0])
		}
		prev = p
		n++
	}
	if prev != sw.newest || n != len(sw.list) {
		t.Fatalf("announce order holds %d peers, want %d", n, len(sw.list))
	}
}

// TestSwarmRandomOps drives a swarm with random announces, moves, stops and expiries and
// checks it against a plain map after each.
func TestSwarmRandomOps(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sw := newSwarm()
	type state struct {
		port   uint16
		seeder bool
		last   time.Time
	}
	model := map[[20]byte]state{}
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	addr := func(port uint16) netip.AddrPort { return local(int(port))[0] }
	for range 5000 {
		now = now.Add(time.Second)
		id := hash(byte(r.IntN(40)))
		p := sw.byID[id]
		switch op := r.IntN(10); {
		case op < 6: // announce from a port no other peer uses
			port := uint16(1000 + int(id[0]))
			if r.IntN(4) == 0 {
				port += 100 // moved
			}
			if p == nil {
				p = &peer{id: id, addr: addr(port), last: now}
				sw.add(p)
			} else if p.addr != addr(port) {
				sw.setAddr(p, addr(port))
			}
			seeder := r.IntN(3) == 0
			sw.setSeeder(p, seeder)
			sw.touch(p, now)
			model[id] = state{port, seeder, now}
		case op < 8:
			if p != nil {
				sw.remove(p)
				delete(model, id)
			}
		case op < 9:
			cutoff := now.Add(-time.Duration(r.IntN(60)) * time.Second)
			want := 0
			for k, st := range model {
				if st.last.Before(cutoff) {
					delete(model, k)
					want++
				}
			}
			if got := sw.expire(cutoff); got != want {
				t.Fatalf("expire removed %d, want %d", got, want)
			}
		default:
			n := r.IntN(50)
			self := sw.byID[id]
			leechersOnly := r.IntN(2) == 0
			got := sw.sample(n, self, leechersOnly, 0)
			eligible := 0
			for k, st := range model {
				if k != id && (!leechersOnly || !st.seeder) {
					eligible++
				}
			}
			if len(got) != min(n, eligible) {
				t.Fatalf("sample(%d) = %d peers, want %d", n, len(got), min(n, eligible))
			}
			seen := map[*peer]bool{}
			for _, q := range got {
				if q == self || seen[q] || leechersOnly && q.seeder {
					t.Fatalf("sample(%d, leechersOnly %v) returned %x", n, leechersOnly, q.id[0])
				}
				seen[q] = true
			}
		}
		checkSwarm(t, sw)
		if len(model) != sw.len() {
			t.Fatalf("swarm holds %d peers, model %d", sw.len(), len(model))
		}
		for k, st := range model {
			q := sw.byID[k]
			if q == nil || q.addr != addr(st.port) || q.seeder != st.seeder || !q.last.Equal(st.last) {
				t.Fatalf("peer %x = %+v, want %+v", k[0], q, st)
			}
		}
	}
}

// TestSampleCoversEveryone checks that repeated samples reach every eligible peer, which
// a biased pick (say, always the first few) would not.
func TestSampleCoversEveryone(t *testing.T) {
	sw := newSwarm()
	for i := range 100 {
		sw.add(&peer{id: hash(byte(i)), addr: local(1000 + i)[0], seeder: i%2 == 0})
	}
	seen := map[*peer]bool{}
	for range 200 {
		for _, p := range sw.sample(5, nil, true, 0) {
			seen[p] = true
		}
	}
	if len(seen) != 50 {
		t.Errorf("200 samples of 5 leechers reached %d of 50", len(seen))
	}
}

// TestSampleFamily checks that a sample for one IP version holds only peers of that
// version, as many as asked while there are enough.
func TestSampleFamily(t *testing.T) {
	sw := newSwarm()
	for i := range 30 {
		ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		if i%3 == 0 {
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
		}
		sw.add(&peer{id: hash(byte(i)), addr: netip.AddrPortFrom(ip, 6881)})
	}
	for _, tt := range []struct{ family, n, want int }{{4, 5, 5}, {4, 50, 20}, {6, 5, 5}, {6, 50, 10}, {0, 50, 30}} {
		got := sw.sample(tt.n, nil, false, tt.family)
		if len(got) != tt.want {
			t.Errorf("sample(%d, family %d) = %d peers, want %d", tt.n, tt.family, len(got), tt.want)
		}
		for _, p := range got {
			if !ofFamily(p.addr.Addr(), tt.family) {
				t.Errorf("sample(family %d) returned %v", tt.family, p.addr)
			}
		}
	}
}
