package trackerd

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// peer is one (info_hash, peer_id) registration.
type peer struct {
	id     [20]byte
	addr   netip.AddrPort // unmapped, no zone
	seeder bool
	last   time.Time // last announce

	idx        int   // position in swarm.list
	prev, next *peer // announce order, oldest first
}

// swarm holds the peers of one torrent three ways: a slice for uniform random sampling,
// maps by peer ID and by address, and a doubly linked list in announce order so that
// expiry pops stale peers off the front in time proportional to their number.
type swarm struct {
	list   []*peer
	byID   map[[20]byte]*peer
	byAddr map[netip.AddrPort]*peer

	oldest, newest *peer

	seeders    int
	downloaded int // "completed" events seen (BEP 48's downloaded)
}

func newSwarm() *swarm {
	return &swarm{byID: make(map[[20]byte]*peer), byAddr: make(map[netip.AddrPort]*peer)}
}

func (sw *swarm) len() int { return len(sw.list) }

func (sw *swarm) leechers() int { return len(sw.list) - sw.seeders }

// add registers p, announced at p.last; no peer may have its ID or address yet.
func (sw *swarm) add(p *peer) {
	p.idx = len(sw.list)
	sw.list = append(sw.list, p)
	sw.byID[p.id] = p
	sw.byAddr[p.addr] = p
	if p.seeder {
		sw.seeders++
	}
	sw.pushBack(p)
}

// remove forgets p.
func (sw *swarm) remove(p *peer) {
	last := len(sw.list) - 1
	sw.swap(p.idx, last)
	sw.list[last] = nil
	sw.list = sw.list[:last]
	delete(sw.byID, p.id)
	if sw.byAddr[p.addr] == p {
		delete(sw.byAddr, p.addr)
	}
	if p.seeder {
		sw.seeders--
	}
	sw.unlink(p)
}

// setAddr moves p to addr; no other peer may be there.
func (sw *swarm) setAddr(p *peer, addr netip.AddrPort) {
	if sw.byAddr[p.addr] == p {
		delete(sw.byAddr, p.addr)
	}
	p.addr = addr
	sw.byAddr[addr] = p
}

func (sw *swarm) setSeeder(p *peer, seeder bool) {
	switch {
	case seeder && !p.seeder:
		sw.seeders++
	case !seeder && p.seeder:
		sw.seeders--
	}
	p.seeder = seeder
}

// touch records an announce from p at now.
func (sw *swarm) touch(p *peer, now time.Time) {
	p.last = now
	sw.unlink(p)
	sw.pushBack(p)
}

// expire removes the peers whose last announce is before cutoff and returns how many.
// It assumes announce times never go backwards; if the clock does, a stale peer behind a
// fresher one waits until that one expires too.
func (sw *swarm) expire(cutoff time.Time) int {
	n := 0
	for sw.oldest != nil && sw.oldest.last.Before(cutoff) {
		sw.remove(sw.oldest)
		n++
	}
	return n
}

// sample returns up to n peers chosen uniformly at random, never self (which may be nil),
// no seeders if leechersOnly, and only IPv4 or only IPv6 peers if family is 4 or 6 (0
// takes both). It runs a partial Fisher-Yates shuffle of sw.list in place, so it costs
// O(n) when most peers qualify and never more than O(len).
func (sw *swarm) sample(n int, self *peer, leechersOnly bool, family int) []*peer {
	eligible := len(sw.list)
	if leechersOnly {
		eligible = sw.leechers()
	}
	if self != nil && sw.byID[self.id] == self && (!leechersOnly || !self.seeder) {
		eligible--
	}
	// With a family, eligible is only a bound: the shuffle stops at the end of the list.
	want := min(n, eligible)
	if want <= 0 {
		return nil
	}
	out := make([]*peer, 0, want)
	for i := 0; i < len(sw.list) && len(out) < want; i++ {
		sw.swap(i, i+rand.IntN(len(sw.list)-i))
		p := sw.list[i]
		if p == self || leechersOnly && p.seeder || !ofFamily(p.addr.Addr(), family) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// ofFamily reports whether a (unmapped) is of IP version family; family 0 takes any.
func ofFamily(a netip.Addr, family int) bool {
	switch family {
	case 4:
		return a.Is4()
	case 6:
		return a.Is6()
	}
	return true
}

func (sw *swarm) swap(i, j int) {
	sw.list[i], sw.list[j] = sw.list[j], sw.list[i]
	sw.list[i].idx, sw.list[j].idx = i, j
}

func (sw *swarm) pushBack(p *peer) {
	p.prev, p.next = sw.newest, nil
	if sw.newest != nil {
		sw.newest.next = p
	} else {
		sw.oldest = p
	}
	sw.newest = p
}

func (sw *swarm) unlink(p *peer) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		sw.oldest = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		sw.newest = p.prev
	}
	p.prev, p.next = nil, nil
}
