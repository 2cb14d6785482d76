package stages

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/bitstorm/bitstorm/internal/wire"
)

var (
	errBadRequest  = errors.New("bad request")
	errRejectFlood = errors.New("too many requests while choked")
)

// uploadBatch is how many blocks one write carries at most (256 KiB).
const uploadBatch = 16

// planUpload appends our bitfield (first, BEP 3; have all or have none with BEP 6) and
// extended handshake (BEP 10), have messages for pieces completed since, a choke or
// unchoke when the choker changed its mind, and the rejects of BEP 6. Called with s.mu
// held.
func (s *session) planUpload(buf []byte) []byte {
	if !s.bitfieldSent && s.c.Adopted {
		// The connection waited at the MetadataGate, whose extended handshake went first:
		// BEP 3 allows a bitfield only as the first message (BEP 6 have all and have none
		// too), so every piece we have goes as a have, in the branch below; our handshake
		// again, with what we offer now.
		s.bitfieldSent, s.haveCursor = true, 0
		buf = s.extHandshake(buf)
		s.initAllowedFast()
	}
	if !s.bitfieldSent {
		bf, cursor := s.env.Sched.Snapshot()
		s.bitfieldSent, s.haveCursor = true, cursor
		switch n := bf.Count(); {
		case s.fast.on && n == s.env.Info.NumPieces():
			buf = wire.AppendState(buf, wire.HaveAll) // BEP 6, in place of the bitfield
		case s.fast.on && n == 0:
			buf = wire.AppendState(buf, wire.HaveNone) // BEP 6: one of the three MUST come first
		case n > 0:
			buf = wire.AppendMessage(buf, wire.Message{ID: wire.BitfieldID, Bitfield: bf})
		}
		if wire.SupportsExtensions(s.c.Reserved) {
			buf = s.extHandshake(buf)
		}
		if s.env.DHT != nil && wire.SupportsDHT(s.c.Reserved) {
			buf = wire.AppendPort(buf, s.env.DHT.Addr().Port()) // BEP 5
		}
		s.initAllowedFast()
		for _, i := range s.fast.oursList {
			if bf.Has(i) {
				buf = s.appendAllowedFast(buf, i)
			}
		}
	} else {
		s.haves, s.haveCursor = s.env.Sched.DoneSince(s.haveCursor, s.haves[:0])
		for _, i := range s.haves {
			if !s.has.Has(i) {
				buf = wire.AppendHave(buf, uint32(i))
				buf = s.appendAllowedFast(buf, i)
			}
		}
	}
	buf = append(buf, s.extOut...)
	s.extOut = s.extOut[:0]
	if s.choking != s.chokeSent {
		s.chokeSent = s.choking
		if s.choking {
			// BEP 3: choking discards the peer's queued requests. BEP 6: it rejects
			// each, after the choke, so that the peer does not ask for them again.
			buf = wire.AppendState(buf, wire.Choke)
			for _, r := range s.upq {
				s.rejectUpload(r)
			}
			s.upq = s.upq[:0]
			s.signalServed()
		} else {
			buf = wire.AppendState(buf, wire.Unchoke)
		}
	}
	return s.appendRejects(buf)
}

// isChoking reports whether we choke the peer (or are about to tell it so).
func (s *session) isChoking() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.choking
}

// setChoking records the choker's decision; the writer tells the peer.
func (s *session) setChoking(choke bool) {
	s.mu.Lock()
	changed := s.choking != choke
	s.choking = choke
	s.mu.Unlock()
	if changed {
		s.p.Kick()
	}
}

// queueUpload validates a request and queues it. A request for a piece we lack, or outside
// its piece, or longer than 16 KiB breaks the protocol and drops the peer; one that arrives
// while the peer is choked is discarded (BEP 3), or rejected (BEP 6), unless its piece
// is in our allowed fast set for the peer (fast.go). While MaxUploadQueue requests are queued
// the reader waits for the writer to serve some, so TCP flow control holds the peer back:
// BEP 3 sets no limit, and transmission keeps ten seconds of its download rate requested
// from a peer that sends no BEP 10 reqq, thousands of blocks on a fast link.
func (s *session) queueUpload(ctx context.Context, m wire.Message) error {
	r := BlockReq{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}
	switch {
	case s.cfg.Cache == nil:
		// We never unchoke the peer: a Fast peer's requests are rejected, up to a bound
		// (BEP 6: one that asks too often MAY be dropped).
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.fast.rejq) >= s.cfg.MaxUploadQueue {
			return errRejectFlood
		}
		s.rejectUpload(r)
		s.p.Kick()
		return nil
	case r.Length == 0 || r.Length > wire.BlockSize:
		return fmt.Errorf("%w: length %d, want 1 to %d", errBadRequest, r.Length, wire.BlockSize)
	case int64(r.Begin)+int64(r.Length) > s.env.Info.PieceSize(r.Piece):
		return fmt.Errorf("%w: [%d, %d) outside piece %d", errBadRequest, r.Begin, r.Begin+r.Length, r.Piece)
	case !s.env.Sched.Has(r.Piece):
		return fmt.Errorf("%w: piece %d, which we do not have", errBadRequest, r.Piece)
	}
	s.mu.Lock()
	for !s.chokeSent && len(s.upq) >= s.cfg.MaxUploadQueue || len(s.fast.rejq) >= s.cfg.MaxUploadQueue {
		s.mu.Unlock()
		s.p.Kick()
		select {
		case <-s.served:
		case <-s.writerDone: // it closed the connection
			return fmt.Errorf("upload queue full: %w", net.ErrClosed)
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	if s.chokeSent && (!s.allowedWhileChoked(r) || len(s.upq) >= s.cfg.MaxUploadQueue) {
		s.rejectUpload(r)
		s.mu.Unlock()
		s.p.Kick()
		return nil
	}
	s.upq = append(s.upq, r)
	s.mu.Unlock()
	s.p.Kick()
	return nil
}

// signalServed wakes a reader waiting in queueUpload. Called with s.mu held.
func (s *session) signalServed() {
	select {
	case s.served <- struct{}{}:
	default:
	}
}

// cancelUpload drops a queued request (BEP 3 cancel). BEP 6: the peer still gets an
// answer, a reject; a request already on its way is answered by its piece.
func (s *session) cancelUpload(m wire.Message) {
	r := BlockReq{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}
	s.mu.Lock()
	n := len(s.upq)
	s.upq = slices.DeleteFunc(s.upq, func(q BlockReq) bool { return q == r })
	cancelled := len(s.upq) < n
	if cancelled {
		s.rejectUpload(r)
	}
	s.mu.Unlock()
	if cancelled && s.fast.on {
		s.p.Kick()
	}
}

// serve moves up to uploadBatch queued requests into w, reading their blocks from the
// cache; more reports that requests remain.
func (s *session) serve(w *uploadWriter) (more bool, err error) {
	if s.cfg.Cache == nil {
		return false, nil
	}
	s.mu.Lock()
	n := min(len(s.upq), uploadBatch)
	w.reqs = append(w.reqs[:0], s.upq[:n]...)
	s.upq = append(s.upq[:0], s.upq[n:]...)
	more = len(s.upq) > 0
	if n > 0 {
		s.signalServed()
	}
	s.mu.Unlock()
	for _, r := range w.reqs {
		data, err := s.cfg.Cache.Block(r.Piece, r.Begin, r.Length)
		if err != nil {
			return false, fmt.Errorf("upload: %w", err)
		}
		w.hdrs = wire.AppendPieceHeader(w.hdrs, uint32(r.Piece), uint32(r.Begin), len(data))
		w.blocks = append(w.blocks, data)
	}
	return more, nil
}

// uploadWriter gathers what the writer sends in one system call: control messages first,
// then piece messages whose data stays in the cache's buffers (writev, no copy).
type uploadWriter struct {
	ctl    []byte
	hdrs   []byte // 13-byte piece headers, one per block
	blocks [][]byte
	reqs   []BlockReq
	bufs   net.Buffers
	part   net.Buffers // a limited flush's part (writeLimited)
}

func (w *uploadWriter) empty() bool { return len(w.ctl) == 0 && len(w.blocks) == 0 }

// flush writes everything to c and returns the number of block bytes sent. The bytes wait
// for c's upload rates (Limit) here, where they leave in one writev, rather than in a
// wrapper of the connection that would hide the *net.TCPConn writev needs.
func (w *uploadWriter) flush(done <-chan struct{}, c *Conn) (int64, error) {
	bufs := w.bufs[:0]
	if len(w.ctl) > 0 {
		bufs = append(bufs, w.ctl)
	}
	var data int64
	for i, b := range w.blocks {
		bufs = append(bufs, w.hdrs[13*i:13*i+13], b)
		data += int64(len(b))
	}
	w.bufs = bufs
	err := writeLimited(done, c.Conn, c.up, &w.bufs, &w.part) // consumes w.bufs: restored below to keep its array
	w.bufs = bufs[:0]
	clear(w.blocks) // let evicted cache pieces go
	w.ctl, w.hdrs, w.blocks = w.ctl[:0], w.hdrs[:0], w.blocks[:0]
	if err != nil {
		return 0, err
	}
	return data, nil
}
