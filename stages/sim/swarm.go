package sim

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/stages"
)

// chokeRound is how often a node's choker re-decides; every optimisticEvery-th round also
// rotates the optimistic unchoke (libtorrent's 10 s and 30 s, as stages/swarm.go runs them).
// A node also asks for new peers every announceEvery-th round, when it has too few.
const (
	chokeRound      = 10 * time.Second
	optimisticEvery = 3
	announceEvery   = 6
)

// swarm is the state of one run. Everything happens on one goroutine, in virtual time.
type swarm struct {
	cfg       Config
	info      *metainfo.Info
	maxActive int // pieces in progress per Scheduler, as pipeline.New sets it
	now       time.Duration
	q         queue
	seq       uint64
	free      []*event
	events    int

	setup *rand.Rand // rates, availability, latencies, neighbours, round phases
	churn *rand.Rand // churn times and who leaves: its own stream, so pickers see the same churn

	nodes      []*node // every node that ever joined, by id
	live       []*node // the nodes present, by id
	incomplete int     // live leechers that do not hold every piece yet
	initial    int     // initial leechers that have neither finished nor left
	churning   bool

	cands  []stages.ChokeCandidate // scratch for choke rounds
	chosen []*stages.Peer
}

// node is one simulated peer: its real Scheduler and Choker, and its connections.
type node struct {
	id       int
	seeder   bool // an initial seeder
	initial  bool
	rate     int64 // upload bytes/s
	sched    *stages.Scheduler
	choker   *stages.RateChoker
	got      []int32   // accepted bytes of each piece (leechers)
	out      [][]uint8 // requests outstanding for each block of a piece over all links; nil until one is
	pieceLen int64
	conns    []*half // this node's side of its connections, oldest first
	joined   time.Duration
	done     time.Duration // when it came to hold every piece
	gone     time.Duration
	complete bool
	left     bool
	leaving  bool    // uploads no more and leaves once its last block has arrived
	sending  bool    // a block is on the wire
	ready    []*half // connections with requests queued, in turn for the uplink
	rounds   int
	up, down int64
}

func newSwarm(cfg Config) *swarm {
	info := &metainfo.Info{
		Name:        "sim",
		PieceLength: cfg.PieceLength,
		Length:      int64(cfg.Pieces) * cfg.PieceLength,
		Pieces:      make([]byte, 20*cfg.Pieces), // never hashed: every piece verifies
	}
	info.Files = []metainfo.File{{Path: []string{info.Name}, Length: info.Length}}
	return &swarm{
		cfg:       cfg,
		info:      info,
		maxActive: int(max((64<<20)/cfg.PieceLength, 4)),
		setup:     rand.New(rand.NewPCG(cfg.Seed, 1)),
		churn:     rand.New(rand.NewPCG(cfg.Seed, 2)),
	}
}

// subSeed derives the seed of one node's picker or choker (splitmix64 finalizer).
func subSeed(seed uint64, stream, id int) uint64 {
	z := seed ^ uint64(stream)<<48 ^ uint64(id)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (s *swarm) run(ctx context.Context) error {
	for range s.cfg.Seeders {
		s.join(true, true)
	}
	for range s.cfg.Peers {
		s.join(false, true)
	}
	if s.cfg.SeederLeaveAfter > 0 {
		for _, n := range s.nodes[:s.cfg.Seeders] {
			s.at(s.cfg.SeederLeaveAfter, evLeave).n = n
		}
	}
	if s.cfg.Churn > 0 && s.initial > 0 {
		s.churning = true
		s.at(s.nextChurn(), evChurn)
	}
	for s.q.Len() > 0 && (s.incomplete > 0 || s.churning) {
		e := heap.Pop(&s.q).(*event)
		if e.at > s.cfg.MaxTime {
			s.now = s.cfg.MaxTime
			break
		}
		s.now = e.at
		s.handle(e)
		s.recycle(e)
		if s.events++; s.events%(1<<16) == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (s *swarm) handle(e *event) {
	switch e.kind {
	case evSent:
		s.sent(e.h, e.req)
	case evRound:
		if !e.n.left {
			e.n.rounds++
			if e.n.rounds%announceEvery == 0 {
				s.dial(e.n) // re-announce: replace the peers that left
			}
			s.choke(e.n, true, e.n.rounds%optimisticEvery == 0)
			s.at(s.now+chokeRound, evRound).n = e.n
		}
	case evChurn:
		s.churnOnce()
	case evLeave:
		s.leave(e.n)
	default:
		if !e.h.closed {
			s.deliver(e)
		}
	}
}

func (s *swarm) result() *Result {
	r := &Result{Config: s.cfg, Size: s.info.Length, End: s.now, Events: s.events}
	for _, n := range s.nodes {
		p := PeerResult{ID: n.id, Seeder: n.seeder, Initial: n.initial, UploadRate: n.rate,
			Joined: n.joined, Gone: n.gone, Downloaded: n.down, Uploaded: n.up}
		switch {
		case n.complete:
			p.State, p.Time = Finished, n.done-n.joined
		case n.left:
			p.State = Left
		default:
			p.State = Unfinished
		}
		r.Peers = append(r.Peers, p)
	}
	r.summarize()
	return r
}
