package sim

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/bitstorm/bitstorm/stages"
)

// epoch is the wall-clock time virtual time 0 stands for: any fixed instant will do.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// join adds a node, with a Scheduler and a Choker of its own: an initial seeder, an initial
// leecher holding a random share of the pieces, or a newcomer with none.
func (s *swarm) join(seeder, initial bool) {
	id := len(s.nodes)
	np := s.cfg.Pieces
	n := &node{id: id, seeder: seeder, initial: initial, joined: s.now, rate: s.cfg.UploadRate,
		pieceLen: s.cfg.PieceLength}
	if s.cfg.UploadRateMax > s.cfg.UploadRate {
		n.rate += s.setup.Int64N(s.cfg.UploadRateMax - s.cfg.UploadRate + 1)
	}
	var picker stages.Picker
	switch s.cfg.Picker {
	case "sequential":
		picker = stages.NewSequential(np)
	case "random":
		picker = stages.NewRandom(np, subSeed(s.cfg.Seed, 3, id))
	default:
		picker = stages.NewRarest(np, subSeed(s.cfg.Seed, 3, id))
	}
	n.sched = stages.NewScheduler(s.info, picker, s.maxActive)
	n.sched.SetClock(func() time.Time { return epoch.Add(s.now) }) // virtual time, for endgame
	n.choker = &stages.RateChoker{Slots: s.cfg.UploadSlots,
		Rand: rand.New(rand.NewPCG(subSeed(s.cfg.Seed, 4, id), uint64(id)))}
	switch {
	case seeder:
		for i := range np {
			n.sched.MarkDone(i)
		}
	case initial && s.cfg.InitialAvailability > 0:
		for i := range np {
			if s.setup.Float64() < s.cfg.InitialAvailability {
				n.sched.MarkDone(i)
			}
		}
	}
	if !seeder {
		n.got, n.out = make([]int32, np), make([][]uint8, np)
	}
	n.complete = n.sched.IsComplete()
	switch {
	case !n.complete:
		s.incomplete++
		if initial {
			s.initial++
		}
	case !seeder:
		s.finish(n)
	}
	s.nodes = append(s.nodes, n)
	s.dial(n)
	s.live = append(s.live, n)
	s.at(s.now+time.Duration(s.setup.Int64N(int64(chokeRound))), evRound).n = n
}

// dial connects n to random live nodes that have room until n has half of MaxPeers
// connections, leaving the other half for peers that connect to it, as a client does with
// a tracker's answer; two seeds do not connect.
func (s *swarm) dial(n *node) {
	want := max(s.cfg.MaxPeers/2, 1) - len(n.conns)
	if want <= 0 {
		return
	}
	var cands []*node
	for _, m := range s.live {
		if m != n && len(m.conns) < s.cfg.MaxPeers && !(n.complete && m.complete) && !connected(n, m) {
			cands = append(cands, m)
		}
	}
	s.setup.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	for _, m := range cands[:min(len(cands), want)] {
		s.connect(n, m)
	}
}

func connected(n, m *node) bool {
	for _, h := range n.conns {
		if h.remote.n == m {
			return true
		}
	}
	return false
}

// leave takes n out of the swarm: its connections close, and its peers' Schedulers forget
// it (PeerLeft) as a session's end tells them.
func (s *swarm) leave(n *node) {
	if n.left {
		return
	}
	n.left, n.gone = true, s.now
	if !n.complete {
		s.incomplete--
		if n.initial {
			s.initialDone()
		}
	}
	for len(n.conns) > 0 {
		s.disconnect(n.conns[0])
	}
	for i, m := range s.live {
		if m == n {
			s.live = append(s.live[:i], s.live[i+1:]...)
			break
		}
	}
}

// finish records that n holds every piece.
func (s *swarm) finish(n *node) {
	n.complete, n.done = true, s.now
	if s.cfg.SeedTime > 0 {
		s.at(s.now+s.cfg.SeedTime, evLeave).n = n
	}
}

// initialDone counts an initial leecher that finished or left; churn ends with the last.
func (s *swarm) initialDone() {
	if s.initial--; s.initial == 0 {
		s.churning = false
	}
}

// nextChurn draws the time of the next churn event: a Poisson process of Churn a minute.
func (s *swarm) nextChurn() time.Duration {
	return s.now + time.Duration(s.churn.ExpFloat64()/s.cfg.Churn*float64(time.Minute))
}

// churnOnce replaces a random leecher, finished or not, with a new empty one.
func (s *swarm) churnOnce() {
	if !s.churning {
		return
	}
	var leechers []*node
	for _, n := range s.live {
		if !n.seeder {
			leechers = append(leechers, n)
		}
	}
	if len(leechers) > 0 {
		s.leave(leechers[s.churn.IntN(len(leechers))])
	}
	if s.churning { // the last initial leecher may just have left
		s.join(false, false)
		s.at(s.nextChurn(), evChurn)
	}
}

// addr is the address a node is known by in its peers' Schedulers.
func addr(id int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(id >> 16), byte(id >> 8), byte(id)}), 6881)
}
