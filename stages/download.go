package stages

import (
	"context"
	"fmt"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// The download side of a peer session: the request window, the blocks that arrive, and
// the timeouts of a peer that stops delivering. The reader and writer loops (request.go)
// call these; the upload side is upload.go, the extension messages extensions.go.

// block reads the data of a piece message into a pooled buffer and passes it on.
func (s *session) block(ctx context.Context, m wire.Message) error {
	r := BlockReq{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}
	s.mu.Lock()
	wasPending := s.pending.remove(r)
	ok := wasPending || s.released.remove(r)
	if ok && s.window < s.limit {
		s.window++
	}
	s.snubbed = s.snubbed && !ok
	low := len(s.pending) <= s.window/2
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: piece %d begin %d length %d", errUnsolicited, r.Piece, r.Begin, r.Length)
	}
	buf := s.cfg.Blocks.Get()[:r.Length]
	if err := s.dec.ReadBlock(buf); err != nil {
		s.cfg.Blocks.Put(buf)
		if wasPending { // still ours to give back when the session ends
			s.mu.Lock()
			s.pending.add(r)
			s.mu.Unlock()
		}
		return err
	}
	s.mu.Lock()
	s.lastBlock = time.Now()
	s.mu.Unlock()
	if low {
		s.p.Kick()
	}
	s.recvBytes.Add(int64(r.Length))
	if !s.env.Sched.Received(s.p, r) {
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

// adapt sets how many requests the peer may have outstanding from its rate over the last
// tick: enough to cover QueueTime of it, within [InitialQueue, Queue] (in the spirit of
// libtorrent's request_queue_time).
func (s *session) adapt(dt time.Duration) {
	if dt <= 0 {
		return
	}
	recv := s.recvBytes.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate = 0.5*s.rate + 0.5*float64(recv-s.rateMark)/dt.Seconds()
	s.rateMark = recv
	s.limit = min(max(int(s.rate*s.cfg.QueueTime.Seconds()/wire.BlockSize), s.cfg.InitialQueue), s.maxQueue())
	if s.window > s.limit {
		s.window = s.limit
	}
}

func (s *session) check(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 && now.Sub(s.lastBlock) > s.cfg.SilentTimeout {
		return errSilent
	}
	if len(s.pending) > 0 && now.Sub(s.lastBlock) > s.cfg.SnubTimeout && !s.snubbed {
		// Snubbed: its requests go to the others, and it keeps a window of one until it
		// delivers again.
		s.snubbed, s.window = true, 1
		left := s.releasePending()
		s.env.Sched.Release(s.p, left)
		s.log.Info("peer snubbed: no block for a while, its requests go to others", "requests", len(left))
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
// piece we lack, and requests to refill the queue while unchoked.
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
			// The block may still arrive, sent before the cancel: accept it quietly.
			s.released.add(r)
			buf = wire.AppendCancel(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
		}
	}
	if s.choked || len(s.pending) >= s.window {
		return buf
	}
	s.reqs = s.env.Sched.Next(s.p, s.has, s.window-len(s.pending), s.isPending, s.reqs[:0])
	for _, r := range s.reqs {
		s.pending.add(r)
		buf = wire.AppendRequest(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
	}
	return buf
}

func (s *session) isPending(r BlockReq) bool { return s.pending.has(r) }

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
	return left
}
