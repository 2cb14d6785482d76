package stages

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// The download side of a peer session: the request window, the blocks that arrive, and
// the timeouts of a peer that stops delivering. The reader and writer loops (request.go)
// call these; the upload side is upload.go, the extension messages extensions.go, BEP 6
// fast.go.

// block reads the data of a piece message into a pooled buffer and passes it on.
func (s *session) block(ctx context.Context, m wire.Message) error {
	r := BlockReq{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}
	now := time.Now()
	s.mu.Lock()
	wasPending := s.pending.has(r)
	ok := wasPending || s.released.remove(r)
	if ok {
		s.window = s.flow.received(now, r, s.window, s.limit)
	}
	s.snubbed = s.snubbed && !ok
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: piece %d begin %d length %d", errUnsolicited, r.Piece, r.Begin, r.Length)
	}
	buf := s.cfg.Blocks.Get()[:r.Length]
	if err := s.dec.ReadBlock(buf); err != nil {
		s.cfg.Blocks.Put(buf) // still pending: given back when the session ends
		return err
	}
	s.c.holdDown(ctx.Done(), r.Length) // the download limits (Limit); TCP holds the peer back meanwhile
	s.recvBytes.Add(int64(r.Length))
	accepted := s.env.Sched.Received(s.p, r)
	// Pending until the Scheduler has it: the writer must never see the block neither
	// pending nor received, or endgame would ask the peer for it again.
	s.mu.Lock()
	if wasPending && !s.pending.remove(r) {
		s.released.remove(r) // cancelled meanwhile
	}
	s.lastBlock = now
	// Refill once an eighth of the window has drained: the requests go out in batches,
	// and the queue at the peer never runs low on a long path.
	low := len(s.pending) <= s.window-max(1, s.window/8)
	s.mu.Unlock()
	if low {
		s.p.Kick()
	}
	if !accepted {
		s.cfg.Blocks.Put(buf)
		return nil
	}
	select {
	case s.out <- newBlock(r.Piece, r.Begin, buf, s.p):
	case <-ctx.Done():
		s.cfg.Blocks.Put(buf)
		s.env.Sched.Lost(r)
		return ctx.Err()
	}
	if s.p.Banned() {
		return errBanned
	}
	return nil
}

// gotBitfield takes the peer's bitfield, or have all (BEP 6). BEP 3 sends the bitfield
// only first, but aria2 sends one again later in place of haves when that is shorter,
// and none at first when it has nothing yet: each one is taken as haves. A peer never
// loses pieces, so a bit it clears is ignored.
func (s *session) gotBitfield(bf wire.Bitfield) {
	var fresh []int
	s.mu.Lock()
	for i := range s.env.Info.NumPieces() {
		if bf.Has(i) && !s.has.Has(i) {
			s.has.Set(i)
			fresh = append(fresh, i)
		}
	}
	s.mu.Unlock()
	for _, i := range fresh {
		s.env.Sched.PeerHas(i)
	}
	s.p.Kick()
}

// adapt re-reads the window's hard bound (the peer's reqq may have come since).
func (s *session) adapt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = s.windowCap()
	s.window = min(s.window, s.limit)
}

// noReqqQueue bounds the requests outstanding at a peer that did not say how many it
// queues (BEP 10 reqq): libtorrent's max_out_request_queue, which such peers live with.
const noReqqQueue = 500

// windowCap is the most requests the session keeps outstanding: Queue (the memory bound
// unless configured), the peer's reqq, or noReqqQueue without one. Called with s.mu held.
func (s *session) windowCap() int {
	c := s.maxQueue()
	if s.reqq == 0 {
		c = min(c, noReqqQueue)
	}
	return max(c, 1)
}

func (s *session) check(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 && now.Sub(s.lastBlock) > s.cfg.SilentTimeout {
		return errSilent
	}
	// Blocks the peer rejected while it did not choke us may be asked of it again once a
	// tick: it may have had a passing reason, and it may be the only one to have them.
	clear(s.fast.rejected)
	if left := s.giveUpChoked(now); len(left) > 0 {
		s.env.Sched.Release(s.p, left)
		s.log.Debug("fast peer choked us and answers no request: they go to others", "requests", len(left))
	}
	if len(s.pending) > 0 && now.Sub(s.lastBlock) > s.cfg.SnubTimeout && !s.snubbed {
		// Snubbed: its requests go to the others, and it keeps a window of one until it
		// delivers again.
		s.snubbed, s.window = true, 1
		left := s.releasePending()
		s.env.Sched.Release(s.p, left)
		s.log.Info("peer snubbed: no block for a while, its requests go to others", "requests", len(left))
		s.env.Emit(PeerSnubbed{Addr: s.c.Addr})
	}
	if now.Sub(s.lastRecv) > s.cfg.IdleTimeout {
		return errIdle
	}
	if s.has.Count() == s.env.Info.NumPieces() && s.env.Sched.IsComplete() {
		return errBothSeeds
	}
	return nil
}

// plan appends the messages the session should send now: interested once the peer has a
// piece we lack, and requests to refill the queue while unchoked, or while choked for the
// pieces the peer allows fast (BEP 6).
func (s *session) plan(buf []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = s.planUpload(buf)
	if s.interested && s.env.Sched.IsComplete() {
		s.interested = false
		return wire.AppendState(buf, wire.NotInterested)
	}
	if !s.interested {
		if !s.env.Sched.Interesting(s.has) {
			return buf
		}
		s.interested = true
		buf = wire.AppendState(buf, wire.Interested)
	}
	s.reqs = s.p.takeCancels(s.reqs[:0])
	for _, r := range s.reqs {
		if s.pending.remove(r) {
			// The block may still arrive, sent before the cancel (BEP 6: or its reject):
			// accept it quietly.
			s.flow.lost(r)
			s.released.add(r)
			buf = wire.AppendCancel(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
		}
	}
	if len(s.pending) >= s.window {
		return buf
	}
	has := s.has
	if s.choked {
		if has = s.allowedMask(); has == nil {
			return buf
		}
	}
	now := time.Now()
	n := s.flow.allow(now, len(s.pending), s.window)
	if n <= 0 {
		return buf
	}
	s.reqs = s.env.Sched.Next(s.p, has, n, s.isPending, s.reqs[:0])
	for _, r := range s.reqs {
		s.flow.sent(now, r, len(s.pending))
		s.pending.add(r)
		buf = wire.AppendRequest(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
	}
	return buf
}

// isPending reports whether r is not to be asked of the peer now: it is outstanding, or
// the peer rejected it (BEP 6) since it last unchoked us.
func (s *session) isPending(r BlockReq) bool { return s.pending.has(r) || s.fast.rejected.has(r) }

// releasePending moves every pending request to released (their blocks may still come)
// and returns them, for the Scheduler to give to others. Called with s.mu held.
func (s *session) releasePending() []BlockReq {
	left := s.pending.appendTo(make([]BlockReq, 0, len(s.pending)))
	if len(s.released)+len(left) > 4*s.cfg.Queue {
		// Bounded: a peer that chokes and unchokes without end must not grow it. A
		// block from this far back is then taken for an unsolicited one.
		clear(s.released)
	}
	for _, r := range left {
		s.released.add(r)
	}
	clear(s.pending)
	s.flow.probing = false
	return left
}

// Tuning of the request window (windowCtl).
const (
	windowGain    = 2                     // the window covers this many round trips at the peer's rate,
	windowSlack   = 20 * time.Millisecond // and this much more, for the pauses of a busy machine
	slowStartStep = 2                     // window growth per block received in slow start: x3 per round trip
	minRound      = 20 * time.Millisecond // shortest round over which a delivery rate is measured
	rttRefresh    = 10 * time.Second      // how often the queue at the peer is let run low, to measure the round trip anew
)

// windowCtl sizes a peer's request window, the requests kept outstanding at it: enough to
// keep it sending for a round trip at the rate it delivers, twice over, and no more, so
// that a slow peer holds few blocks.
//
// The round trip is the latency from a request to its block, measured on one request at a
// time (the probe). It is the path's only when no request is queued ahead at the peer:
// the first request, and those sent once the queue has run low (every rttRefresh the
// window is held back until the requests outstanding cover half a round trip, and the next
// request is the probe). Those samples are averaged; any other latency counts only when
// lower, since no latency is below the round trip.
//
// The rate is the best delivery rate over the last rounds (a round lasts one round trip).
// In slow start the window grows by slowStartStep per block received, until the rate stops
// growing by a quarter per round for two rounds; then it is sized from rate and round trip,
// each block moving it one step toward that size, within [min, limit] and at most
// queueTime of the rate. It has no clock and no lock of its own: the session calls it
// under its mutex with the times, which lets tests feed it synthetic ones.
type windowCtl struct {
	min       int           // smallest window (InitialQueue)
	queueTime time.Duration // the window covers at most this much of the rate

	slowStart bool
	rtt       time.Duration // 0 until the first sample
	cleanAt   time.Time     // when the last sample without a queue at the peer came
	draining  bool          // holding requests back until the queue at the peer runs low
	clean     bool          // the next request sent is a probe without a queue ahead
	probing   bool
	probe     BlockReq
	probeAt   time.Time
	probeSent bool // the probe went with no queue ahead at the peer

	roundAt    time.Time
	roundBytes int64
	rates      [8]float64 // bytes/s delivered in the last rounds
	ri         int
	best       float64 // slow start: the best round so far
	flat       int     // slow start: rounds in a row without a quarter more than best
}

func newWindowCtl(initial int, queueTime time.Duration) windowCtl {
	return windowCtl{min: initial, queueTime: queueTime, slowStart: true}
}

// rate is the peer's delivery rate in bytes/s: the best of the last rounds.
func (w *windowCtl) rate() float64 { return slices.Max(w.rates[:]) }

// target is the window that keeps the peer busy: windowGain round trips of its rate and
// windowSlack more, within [min, limit] and at most queueTime of the rate.
func (w *windowCtl) target(limit int) int {
	r := w.rate()
	t := w.min + int(r*(windowGain*w.rtt+windowSlack).Seconds()/wire.BlockSize)
	t = min(t, max(w.min, int(r*w.queueTime.Seconds()/wire.BlockSize)))
	return max(min(t, limit), 1)
}

// allow returns how many requests may be sent now, with outstanding ones out of window.
func (w *windowCtl) allow(now time.Time, outstanding, window int) int {
	if !w.slowStart && w.rtt > 0 && !w.draining && now.Sub(w.cleanAt) >= rttRefresh {
		w.draining = true
	}
	if w.draining {
		if outstanding > int(w.rate()*w.rtt.Seconds()/2/wire.BlockSize) {
			return 0
		}
		w.draining, w.clean = false, true
	}
	return window - outstanding
}

// sent records a request sent at now with outstanding others before it.
func (w *windowCtl) sent(now time.Time, r BlockReq, outstanding int) {
	if w.roundAt.IsZero() {
		w.roundAt = now
	}
	if !w.probing || outstanding == 0 || w.clean {
		w.probe, w.probeAt, w.probing = r, now, true
		w.probeSent = outstanding == 0 || w.clean
		w.clean = false
	}
}

// lost forgets r, which will not be delivered as requested (rejected, cancelled, released).
func (w *windowCtl) lost(r BlockReq) {
	if w.probing && w.probe == r {
		w.probing = false
	}
}

// received records the block of r, delivered at now, and returns the new window.
func (w *windowCtl) received(now time.Time, r BlockReq, window, limit int) int {
	if w.probing && w.probe == r {
		w.probing = false
		d := now.Sub(w.probeAt)
		switch {
		case w.probeSent && w.rtt > 0:
			w.rtt = (w.rtt + d) / 2
			w.cleanAt = now
		case w.probeSent:
			w.rtt = d
			w.cleanAt = now
		case w.rtt == 0 || d < w.rtt:
			w.rtt = d
		}
	}
	if w.roundAt.IsZero() {
		w.roundAt = now
	}
	w.roundBytes += int64(r.Length)
	if el := now.Sub(w.roundAt); el >= max(w.rtt, minRound) {
		rate := float64(w.roundBytes) / el.Seconds()
		w.ri = (w.ri + 1) % len(w.rates)
		w.rates[w.ri] = rate
		w.roundAt, w.roundBytes = now, 0
		if w.slowStart {
			if rate > 1.25*w.best {
				w.best, w.flat = rate, 0
			} else if w.flat++; w.flat >= 2 {
				w.slowStart = false
				return min(window, w.target(limit))
			}
		}
	}
	if w.slowStart {
		return min(window+slowStartStep, limit)
	}
	t := w.target(limit)
	if window < t {
		return window + 1
	}
	return t
}
