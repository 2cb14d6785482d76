package stages

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// BlockReq names one block to request: piece index, offset in the piece, length.
type BlockReq struct {
	Piece, Begin, Length int
}

// Scheduler is the download's shared piece state: which pieces are complete, which are in
// progress and which of their blocks are requested or received. Sessions ask it what to
// request (Next) and report what arrived (Received) or was abandoned (Release); the Write
// sink reports verified (PieceDone) and corrupt (PieceFailed) pieces. The number of pieces
// in progress is capped, and their bytes come from an InFlightBudget when it has one
// (SetBudget), which bounds the memory of piece buffers. Safe for concurrent use.
type Scheduler struct {
	clock     func() time.Time // time.Now, or the simulator's virtual clock (SetClock)
	info      *metainfo.Info
	maxActive int
	complete  atomic.Pointer[chan struct{}] // closed once every wanted piece is done; replaced when more are wanted (priority.go)

	mu      sync.Mutex
	picker  Picker
	done    wire.Bitfield
	numDone int
	order   []int // pieces in the order they completed, for have messages
	onDone  []func(piece int)
	active  map[int]*activePiece
	started wire.Bitfield  // pieces in active, for the picker's want test without a map lookup
	live    []*activePiece // active pieces in the order they started
	starved map[*Peer]struct{}
	banned  *Bans
	want    func(int) bool
	prio    priorities // which pieces are wanted, and which first (priority.go)

	wantNormalF, wantLowF func(int) bool  // wantNormal and wantLow as func values made once (priority.go)
	budget                *InFlightBudget // SetBudget; nil: none (budget.go)
	gave                  bool            // bytes went back to budget under mu: unlock wakes its waiters
	waiting               bool            // registered with budget to be woken when bytes come back

	peers      atomic.Int32
	downloaded atomic.Int64 // bytes of accepted blocks
	uploaded   atomic.Int64 // bytes of blocks sent to peers
	goal       uploadGoal   // SetUploadGoal (uploadgoal.go)
	verified   atomic.Int64 // bytes of pieces verified and written
	wasted     atomic.Int64 // bytes of pieces that failed their hash
}

// activePiece is a piece in progress: per block, whether it arrived and how many requests
// for it are outstanding.
type activePiece struct {
	index       int
	nblocks     int
	lastLen     int // length of the last block
	got         []bool
	reqs        []uint8
	reqAt       []int64         // unix nanoseconds of the latest request of each block
	reqBy       []*Peer         // the first peer each block was requested from
	dups        map[int][]*Peer // endgame: blocks requested again, and from whom
	cursor      int             // no block before cursor is unrequested
	unrequested int
	received    int
	owner       *Peer   // the peer the piece is assigned to; nil when any peer may take it
	exclude     []*Peer // peers whose data failed the last attempt: they take it only when nothing else is left
	peers       []*Peer // contributors of the current attempt
	charge      int64   // bytes taken from the Scheduler's budget for it
}

// NewScheduler returns a scheduler for info that keeps at most maxActive pieces in progress
// and asks picker which piece to start next.
func NewScheduler(info *metainfo.Info, picker Picker, maxActive int) *Scheduler {
	s := &Scheduler{
		clock:     time.Now,
		info:      info,
		maxActive: max(maxActive, 1),
		picker:    picker,
		done:      wire.NewBitfield(info.NumPieces()),
		active:    make(map[int]*activePiece),
		started:   wire.NewBitfield(info.NumPieces()),
		starved:   make(map[*Peer]struct{}),
		banned:    NewBans(),
	}
	s.want, s.wantNormalF, s.wantLowF = s.wantPiece, s.wantNormal, s.wantLow
	s.prio.init(info.NumPieces(), info.Length)
	complete := make(chan struct{})
	s.complete.Store(&complete)
	return s
}

// SetClock makes the Scheduler read the time from now instead of time.Now (the age of a
// request decides when endgame asks one more peer for it): the swarm simulator runs it in
// virtual time. Call it before the first Next.
func (s *Scheduler) SetClock(now func() time.Time) { s.clock = now }

// Complete is closed once every wanted piece (SetPriority) is verified and written. When
// pieces are wanted again after that, Complete returns a new channel.
func (s *Scheduler) Complete() <-chan struct{} { return *s.complete.Load() }

// MarkDone records pieces already verified on disk (resume, seeding) before the run starts.
func (s *Scheduler) MarkDone(piece int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done.Has(piece) {
		s.finish(piece)
	}
}

// OnPieceDone registers f to be called (under the Scheduler's lock: f must not call back
// into it, only signal) each time a piece is verified and written.
func (s *Scheduler) OnPieceDone(f func(piece int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDone = append(s.onDone, f)
}

// Snapshot returns a copy of the bitfield of verified pieces, and a cursor for DoneSince.
func (s *Scheduler) Snapshot() (wire.Bitfield, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(wire.Bitfield(nil), s.done...), len(s.order)
}

// DoneSince appends to dst the pieces completed after cursor and returns the new cursor.
func (s *Scheduler) DoneSince(cursor int, dst []int) ([]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(dst, s.order[cursor:]...), len(s.order)
}

// IsComplete reports whether every wanted piece is verified and written.
func (s *Scheduler) IsComplete() bool {
	select {
	case <-s.Complete():
		return true
	default:
		return false
	}
}

// Uploaded counts n bytes sent to a peer; the call that brings the count to the upload
// goal runs its function (SetUploadGoal).
func (s *Scheduler) Uploaded(n int) { s.goal.check(s.uploaded.Add(int64(n))) }

// Has reports whether piece is verified and written.
func (s *Scheduler) Has(piece int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done.Has(piece)
}

// Interesting reports whether a peer holding has owns a wanted piece we lack (BEP 3 interest).
func (s *Scheduler) Interesting(has wire.Bitfield) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lacksWanted(has)
}

// SetBans makes the Scheduler record the peers it bans in b, the swarm's ban list, which
// Dial and Listen consult; by default it keeps a list of its own.
func (s *Scheduler) SetBans(b *Bans) { s.banned = b }

// Banned reports whether addr belongs to a peer banned for corrupt data.
func (s *Scheduler) Banned(addr netip.AddrPort) bool { return s.banned.Banned(addr) }

// PeerJoined counts a connected peer.
func (s *Scheduler) PeerJoined(p *Peer) { s.peers.Add(1) }

// PeerHas records that p announced piece (have or bitfield).
func (s *Scheduler) PeerHas(piece int) {
	s.mu.Lock()
	s.picker.PeerHas(piece)
	s.mu.Unlock()
}

// PeerLeft forgets p: its outstanding requests go back to the others, pieces assigned to it
// become free, and its pieces no longer count as available.
func (s *Scheduler) PeerLeft(p *Peer, has wire.Bitfield, pending []BlockReq) {
	s.peers.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release(p, pending)
	for _, a := range s.live {
		if a.owner == p {
			a.owner = nil
		}
	}
	delete(s.starved, p)
	s.picker.PeerGone(has)
	s.wakeStarved()
}

// Release returns requests p will not serve (it choked us, or went silent) to the others.
func (s *Scheduler) Release(p *Peer, reqs []BlockReq) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release(p, reqs)
	s.wakeStarved()
}

func (s *Scheduler) release(p *Peer, reqs []BlockReq) {
	for _, r := range reqs {
		a := s.active[r.Piece]
		if a == nil {
			continue
		}
		j := r.Begin / wire.BlockSize
		if a.reqs[j] > 0 {
			a.reqs[j]--
		}
		if a.reqs[j] == 0 && !a.got[j] {
			a.unrequested++
			a.cursor = min(a.cursor, j)
		}
		if a.owner == p {
			a.owner = nil
		}
	}
}

// Next appends to dst up to n blocks for p to request, given the pieces p has and whether p
// already has a block pending. In order: blocks of pieces in progress assigned to p or to
// nobody; blocks of a new piece from the picker; blocks of other peers' pieces; and, when no
// block is left unrequested (endgame), duplicates of blocks requested from others. When it
// finds nothing, p is woken (Peer.Kick) as soon as work may be available again.
func (s *Scheduler) Next(p *Peer, has wire.Bitfield, n int, pending func(BlockReq) bool, dst []BlockReq) []BlockReq {
	s.mu.Lock()
	defer s.unlock()
	start := len(dst)
	dst = s.takeNow(p, has, n, pending, dst)
	for _, a := range s.live {
		if len(dst)-start >= n {
			break
		}
		if (a.owner == nil || a.owner == p) && !excluded(a, p) && has.Has(a.index) && a.unrequested > 0 {
			dst = s.take(a, p, n-(len(dst)-start), pending, dst)
		}
	}
	// Only while some wanted piece is neither done nor started: past that, Pick would scan
	// every piece to find nothing, for every request round of every peer.
	for len(dst)-start < n && len(s.live) < s.maxActive && s.unstarted() > 0 && s.reserve() {
		i, ok := s.pick(has)
		if !ok {
			s.unreserve()
			break
		}
		dst = s.take(s.charged(s.start(i)), p, n-(len(dst)-start), pending, dst)
	}
	for _, a := range s.live {
		if len(dst)-start >= n {
			break
		}
		if has.Has(a.index) && a.unrequested > 0 {
			dst = s.take(a, p, n-(len(dst)-start), pending, dst)
		}
	}
	if len(dst) == start && s.unstarted() == 0 {
		dst = s.endgame(p, has, n, pending, dst)
	}
	if len(dst) == start {
		s.starved[p] = struct{}{}
	}
	return dst
}

// endgame requests blocks that are outstanding at other peers: a second request for any
// block, and one more for a block whose latest request is older than staleRequest (held by
// stalled peers, which must not keep the download from finishing).
func (s *Scheduler) endgame(p *Peer, has wire.Bitfield, n int, pending func(BlockReq) bool, dst []BlockReq) []BlockReq {
	start := len(dst)
	now := s.clock().UnixNano()
	for _, a := range s.live {
		if !has.Has(a.index) || a.received == a.nblocks { // complete, being verified or written
			continue
		}
		for j := 0; j < a.nblocks && len(dst)-start < n; j++ {
			if a.got[j] || a.reqs[j] == 255 || (a.reqs[j] > 1 && now-a.reqAt[j] < int64(staleRequest)) {
				continue
			}
			if r := a.block(j); !pending(r) {
				a.reqs[j]++
				a.reqAt[j] = now
				if a.dups == nil {
					a.dups = make(map[int][]*Peer)
				}
				a.dups[j] = append(a.dups[j], p)
				dst = append(dst, r)
			}
		}
	}
	return dst
}

// staleRequest is the age after which an endgame block may be requested from one more peer.
const staleRequest = 2 * time.Second

func excluded(a *activePiece, p *Peer) bool {
	for _, q := range a.exclude {
		if q == p {
			return true
		}
	}
	return false
}

func (s *Scheduler) start(i int) *activePiece {
	size := s.info.PieceSize(i)
	nb := int((size + wire.BlockSize - 1) / wire.BlockSize)
	a := &activePiece{
		index:       i,
		nblocks:     nb,
		lastLen:     int(size - int64(nb-1)*wire.BlockSize),
		got:         make([]bool, nb),
		reqs:        make([]uint8, nb),
		reqAt:       make([]int64, nb),
		reqBy:       make([]*Peer, nb),
		unrequested: nb,
	}
	s.active[i] = a
	s.started.Set(i)
	s.live = append(s.live, a)
	return a
}

func (a *activePiece) block(j int) BlockReq {
	l := wire.BlockSize
	if j == a.nblocks-1 {
		l = a.lastLen
	}
	return BlockReq{Piece: a.index, Begin: j * wire.BlockSize, Length: l}
}

// take requests up to n unrequested blocks of a from p. A block still pending at p from
// before a hash failure reset is skipped: a peer is never asked twice for one block.
func (s *Scheduler) take(a *activePiece, p *Peer, n int, pending func(BlockReq) bool, dst []BlockReq) []BlockReq {
	if a.owner == nil {
		a.owner = p
	}
	now := s.clock().UnixNano()
	for j := a.cursor; j < a.nblocks && n > 0; j++ {
		if a.got[j] || a.reqs[j] > 0 {
			if j == a.cursor {
				a.cursor++
			}
			continue
		}
		r := a.block(j)
		if pending(r) {
			continue
		}
		a.reqs[j] = 1
		a.reqAt[j] = now
		a.reqBy[j] = p
		a.unrequested--
		n--
		dst = append(dst, r)
	}
	return dst
}

// Received records that p delivered the block b. It reports false when the block is not
// wanted (already received from another peer in endgame, or its piece is complete): the
// caller then discards the data.
func (s *Scheduler) Received(p *Peer, b BlockReq) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.active[b.Piece]
	if a == nil {
		return false
	}
	j := b.Begin / wire.BlockSize
	if a.reqs[j] > 0 {
		a.reqs[j]--
	}
	if a.got[j] {
		return false
	}
	a.got[j] = true
	a.received++
	if others, ok := a.dups[j]; ok {
		// Endgame: the block is here; the other requests for it are cancelled (BEP 3).
		delete(a.dups, j)
		for _, q := range append(others, a.reqBy[j]) {
			if q != p && q != nil {
				q.cancel(b)
			}
		}
	}
	if !containsPeer(a.peers, p) {
		a.peers = append(a.peers, p)
	}
	s.downloaded.Add(int64(b.Length))
	return true
}

// Lost undoes Received for a block that never reached assembly (its hand-off was
// abandoned): the block is wanted again, or the piece would wait for it forever.
func (s *Scheduler) Lost(b BlockReq) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.active[b.Piece]
	j := b.Begin / wire.BlockSize
	if a == nil || !a.got[j] {
		return
	}
	a.got[j] = false
	a.received--
	if a.reqs[j] == 0 {
		a.unrequested++
		a.cursor = min(a.cursor, j)
	}
	s.downloaded.Add(-int64(b.Length))
	s.wakeStarved()
}

func containsPeer(ps []*Peer, p *Peer) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// PieceDone records that piece is verified and written.
func (s *Scheduler) PieceDone(piece int) {
	s.mu.Lock()
	defer s.unlock()
	if a := s.active[piece]; a != nil {
		s.uncharge(a)
		delete(s.active, piece)
		s.started.Clear(piece)
		for i, b := range s.live {
			if b == a {
				s.live = append(s.live[:i], s.live[i+1:]...)
				break
			}
		}
	}
	if !s.done.Has(piece) {
		s.finish(piece)
	}
	// A piece done frees a place for a new one, if any is left to start; in endgame it
	// frees no work, and waking every starved peer then only has each search in vain.
	if s.unstarted() > 0 {
		s.wakeStarved()
	}
}

func (s *Scheduler) finish(piece int) {
	s.done.Set(piece)
	s.order = append(s.order, piece)
	s.numDone++
	s.verified.Add(s.info.PieceSize(piece))
	s.countDone(piece)           // closes Complete after the last wanted piece
	for _, f := range s.onDone { // after the counts, so that f sees the piece done
		f(piece)
	}
}

// PieceFailed puts a piece that failed its hash back to be fetched again, preferably from
// other peers, and blames its contributors: a peer that alone sent a bad piece gets two
// strikes, one that shared it one; at four strikes the peer is banned (its session drops it
// and Dial will not call it again). It returns the peers banned now.
func (s *Scheduler) PieceFailed(piece int, peers []*Peer) []*Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wasted.Add(s.info.PieceSize(piece))
	var banned []*Peer
	weight := 1
	if len(peers) == 1 {
		weight = 2
	}
	for _, p := range peers {
		p.strikes += weight
		if p.strikes >= 4 && !p.banned.Swap(true) {
			s.banned.Add(p.Addr)
			banned = append(banned, p)
			p.Kick() // its writer drops it now, not at its next tick
		}
	}
	if a := s.active[piece]; a != nil {
		clear(a.got)
		clear(a.reqs)
		clear(a.reqBy)
		a.dups = nil
		a.cursor, a.received, a.unrequested = 0, 0, a.nblocks
		a.owner, a.exclude, a.peers = nil, peers, nil
	}
	s.wakeStarved()
	return banned
}

func (s *Scheduler) wakeStarved() {
	for p := range s.starved {
		p.Kick()
		delete(s.starved, p)
	}
}

// Stats is a snapshot of the download's progress.
type Stats struct {
	Total      int64 // bytes in the torrent
	Wanted     int64 // bytes of the wanted pieces: Total unless some are skipped (SetPriority)
	Verified   int64 // bytes verified and written, wanted or not
	WantedDone int64 // bytes of the wanted pieces verified and written
	Downloaded int64 // bytes of blocks received and accepted
	Uploaded   int64 // bytes of blocks sent
	Wasted     int64 // bytes of pieces that failed their hash
	Pieces     int   // pieces verified
	NumPieces  int
	Peers      int // connected peers
}

// Left is the number of bytes of wanted pieces still to verify (BEP 3 "left").
func (st Stats) Left() int64 { return st.Wanted - st.WantedDone }

// Stats returns a snapshot of the progress.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	n, wanted, wantedDone := s.numDone, s.prio.wantedB, s.prio.doneB
	s.mu.Unlock()
	return Stats{
		Total:      s.info.Length,
		Wanted:     wanted,
		WantedDone: wantedDone,
		Verified:   s.verified.Load(),
		Downloaded: s.downloaded.Load(),
		Uploaded:   s.uploaded.Load(),
		Wasted:     s.wasted.Load(),
		Pieces:     n,
		NumPieces:  s.info.NumPieces(),
		Peers:      int(s.peers.Load()),
	}
}
