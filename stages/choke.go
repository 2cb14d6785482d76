package stages

import (
	"math/rand/v2"
	"slices"
)

// ChokeCandidate is what a Choker knows of one connected peer that is interested in us.
type ChokeCandidate struct {
	Peer     *Peer
	DownRate float64 // bytes/s the peer gave us over the last round
	UpRate   float64 // bytes/s we sent the peer over the last round
	Unchoked bool    // currently unchoked
}

// Choker decides which interested peers may download from us (BEP 3 choking). The session
// registry calls Choose every round (10 s) with optimistic set every third round (30 s), and
// unchokes exactly the peers returned. Calls come from one goroutine.
type Choker interface {
	Choose(peers []ChokeCandidate, seeding, optimistic bool) []*Peer
}

// RateChoker is the reference choker, in the spirit of BEP 3 and libtorrent: Slots-1 regular
// slots go to the peers with the best recent rate (the rate they give us while we download,
// the rate we reach to them while we seed), and one optimistic slot goes to a random other
// interested peer, rotated every optimistic round, so that newcomers get a chance.
type RateChoker struct {
	Slots int        // upload slots, the optimistic one included (default 4)
	Rand  *rand.Rand // tie-breaking and optimistic choice; default seeded randomly

	optimistic *Peer
}

var _ Choker = (*RateChoker)(nil)

// Choose returns the peers to unchoke.
func (c *RateChoker) Choose(peers []ChokeCandidate, seeding, optimistic bool) []*Peer {
	slots := max(c.Slots, 1)
	if c.Slots == 0 {
		slots = 4
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	ps := slices.Clone(peers)
	c.Rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	rate := func(p ChokeCandidate) float64 {
		if seeding {
			return p.UpRate
		}
		return p.DownRate
	}
	slices.SortStableFunc(ps, func(a, b ChokeCandidate) int {
		switch ra, rb := rate(a), rate(b); {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		}
		return 0
	})
	regular := min(len(ps), max(slots-1, 0))
	out := make([]*Peer, 0, slots)
	for _, p := range ps[:regular] {
		out = append(out, p.Peer)
	}
	rest := ps[regular:]
	if len(rest) == 0 {
		c.optimistic = nil
		return out
	}
	keep := !optimistic && slices.ContainsFunc(rest, func(p ChokeCandidate) bool { return p.Peer == c.optimistic })
	if !keep {
		c.optimistic = rest[c.Rand.IntN(len(rest))].Peer
	}
	return append(out, c.optimistic)
}
