package stages

import (
	"context"
	"sync"
	"time"
)

// registry holds the live sessions of a Request stage and runs the choker over them: a
// full round every ChokeRound (libtorrent's 10 s), optimistic every third round (30 s), and
// between rounds, when a peer becomes interested or a slot frees, a quick pass that only
// unchokes, so that a new leecher starts at once instead of at the next round.
type registry struct {
	env    *Env
	choker Choker
	round  time.Duration
	kick   chan struct{}
	haves  chan struct{}

	mu       sync.Mutex
	sessions map[*session]*rateMark
}

// rateMark is where a session's byte counters stood at the last round.
type rateMark struct {
	recv, sent int64
	at         time.Time
}

func newRegistry(env *Env, choker Choker, round time.Duration) *registry {
	return &registry{env: env, choker: choker, round: round, kick: make(chan struct{}, 1),
		haves:    make(chan struct{}, 1),
		sessions: make(map[*session]*rateMark)}
}

func (r *registry) add(s *session) {
	r.mu.Lock()
	r.sessions[s] = &rateMark{at: time.Now()}
	r.mu.Unlock()
}

func (r *registry) remove(s *session) {
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
	r.poke()
}

// snapshot returns the live sessions.
func (r *registry) snapshot() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.sessions))
	for s := range r.sessions {
		out = append(out, s)
	}
	return out
}

// poke asks for a quick unchoke pass; it never blocks.
func (r *registry) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// pokeHave asks for a broadcast of have messages; it never blocks, and it takes no lock, so
// the Scheduler may call it under its own.
func (r *registry) pokeHave() {
	select {
	case r.haves <- struct{}{}:
	default:
	}
}

// broadcast wakes every session, to send have messages for a completed piece.
func (r *registry) broadcast() {
	r.mu.Lock()
	for s := range r.sessions {
		s.p.Kick()
	}
	r.mu.Unlock()
}

func (r *registry) run(ctx context.Context) {
	tick := time.NewTicker(r.round)
	defer tick.Stop()
	for n := 1; ; {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			r.choose(false, false)
		case <-r.haves:
			r.broadcast()
		case <-tick.C:
			r.choose(true, n%3 == 0)
			n++
		}
	}
}

// choose asks the choker and applies its answer. A full round unchokes exactly the peers
// chosen and chokes the others. A quick pass (full false) only fills free slots: it
// unchokes chosen peers until as many interested peers are unchoked as the choker chose,
// and chokes nobody; without that bound each pass, ranking peers afresh, would add a few.
func (r *registry) choose(full, optimistic bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var cands []ChokeCandidate
	sessionOf := make(map[*Peer]*session, len(r.sessions))
	busy := 0 // interested peers unchoked now
	for s, m := range r.sessions {
		sessionOf[s.p] = s
		recv, sent := s.recvBytes.Load(), s.sentBytes.Load()
		secs := now.Sub(m.at).Seconds()
		s.mu.Lock()
		interested, unchoked := s.peerInterested, !s.choking
		s.mu.Unlock()
		if interested && unchoked {
			busy++
		}
		if interested && secs > 0 {
			cands = append(cands, ChokeCandidate{Peer: s.p, DownRate: float64(recv-m.recv) / secs,
				UpRate: float64(sent-m.sent) / secs, Unchoked: unchoked})
		}
		if full {
			*m = rateMark{recv: recv, sent: sent, at: now}
		}
	}
	chosen := r.choker.Choose(cands, r.env.Sched.IsComplete(), optimistic)
	if full {
		in := make(map[*Peer]bool, len(chosen))
		for _, p := range chosen {
			in[p] = true
		}
		for s := range r.sessions {
			s.setChoking(!in[s.p])
		}
		return
	}
	for _, p := range QuickUnchokes(chosen, busy, func(p *Peer) bool { return sessionOf[p].isChoking() }) {
		sessionOf[p].setChoking(false)
	}
}

// QuickUnchokes returns whom a quick choke pass unchokes, given the choker's answer chosen
// and busy, the interested peers unchoked now: chosen peers still choked, in the choker's
// order, until as many are unchoked as it chose. A pass between full rounds thus fills
// the slots that are free and no more. (Exported for the swarm simulator, stages/sim.)
func QuickUnchokes(chosen []*Peer, busy int, choked func(*Peer) bool) []*Peer {
	var out []*Peer
	for _, p := range chosen {
		if busy >= len(chosen) {
			break
		}
		if choked(p) {
			out = append(out, p)
			busy++
		}
	}
	return out
}
