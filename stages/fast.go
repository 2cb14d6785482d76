package stages

import (
	"errors"
	"fmt"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// The Fast Extension (BEP 6) in a peer session. With a peer that set the Fast bit too
// (we always do), every request gets exactly one answer, its piece or a reject: a choke no
// longer drops the requests outstanding at the peer, which keeps them until it answers
// each, and a reject gives that one request back to the Scheduler. We answer the peer the
// same way: a request we will not serve while we choke it is rejected, and so are those
// queued when we choke it. We start with have all or have none instead of a full or empty
// bitfield, take its have all and have none as bitfields, and request the pieces it allows
// fast while it chokes us. We allow the peer fast, in turn, the first AllowedFastSize
// pieces of its canonical set (wire.AllowedFastSet) as we come to have them: its requests
// for those are served while we choke it, which lets a new peer get its first pieces
// without waiting for an unchoke. A suggestion is only a hint, and is not acted on.

// Errors that end a session with a peer that breaks BEP 6 (PeerDropped.Reason wraps them).
var (
	// ErrFastOff means a BEP 6 message came from a peer that did not set the Fast bit.
	ErrFastOff = errors.New("fast extension message, but the fast extension is off")
	// ErrRejectUnrequested means the peer rejected a request we never made.
	ErrRejectUnrequested = errors.New("rejected a request we did not make")
)

// AllowedFastSize is how many pieces we allow a peer fast: BEP 6's k, 10 as in its
// example (libtorrent allows 5).
const AllowedFastSize = 10

const (
	fastRejectWait    = 10 * time.Second // a Fast peer that choked us and answers nothing for this long: its requests go to others
	maxRejectedMemory = 4096             // requests rejected while unchoked that are not asked again, at most
)

// fastState is a session's side of the Fast Extension; guarded by the session's mu.
type fastState struct {
	on       bool          // both sides set the Fast bit
	allowed  wire.Bitfield // pieces the peer serves us while it chokes us (allowed fast); nil: none
	mask     wire.Bitfield // has AND allowed, rebuilt for each request round while choked
	rejected reqSet        // requests the peer rejected while it did not choke us: not asked of it again before the next tick or unchoke
	rejq     []BlockReq    // the peer's requests we reject, for the writer
	chokedAt time.Time     // when the peer choked us; zero once its requests are given up
	ours     wire.Bitfield // our allowed fast set for the peer, whether we have the pieces yet or not; nil: none
	oursList []int         // the same, in the canonical order
}

// initAllowedFast makes our allowed fast set for the peer: none without BEP 6, for a peer
// we never upload to, or one at an IPv6 address (BEP 6 defines the set for IPv4 only).
// Called with s.mu held, before the first message.
func (s *session) initAllowedFast() {
	if !s.fast.on || s.cfg.Cache == nil {
		return
	}
	set := wire.AllowedFastSet(AllowedFastSize, s.env.Info.NumPieces(), s.env.InfoHash, s.c.Addr.Addr())
	if len(set) == 0 {
		return
	}
	s.fast.ours, s.fast.oursList = wire.NewBitfield(s.env.Info.NumPieces()), set
	for _, i := range set {
		s.fast.ours.Set(i)
	}
}

// appendAllowedFast appends an allowed fast message for piece, which we have now, if it
// is in our set for the peer and the peer lacks it. Called with s.mu held.
func (s *session) appendAllowedFast(buf []byte, piece int) []byte {
	if s.fast.ours == nil || !s.fast.ours.Has(piece) || s.has.Has(piece) {
		return buf
	}
	return wire.AppendAllowedFast(buf, uint32(piece))
}

// allowedWhileChoked reports whether the peer's request r, made while we choke it, is
// served: its piece is in our allowed fast set. Called with s.mu held.
func (s *session) allowedWhileChoked(r BlockReq) bool {
	return s.fast.ours != nil && s.fast.ours.Has(r.Piece)
}

// fastMsg handles the messages of BEP 6, from the reader.
func (s *session) fastMsg(m wire.Message) error {
	if !s.fast.on {
		// BEP 6: when the fast extension is disabled, a peer receiving any of them MUST
		// close the connection.
		return fmt.Errorf("%w: %v", ErrFastOff, m.ID)
	}
	switch m.ID {
	case wire.HaveAll:
		bf := wire.NewBitfield(s.env.Info.NumPieces())
		for i := range s.env.Info.NumPieces() {
			bf.Set(i)
		}
		s.gotBitfield(bf)
	case wire.HaveNone:
		// Nothing to record: a peer starts with no piece.
	case wire.Reject:
		return s.rejected(BlockReq{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)})
	case wire.AllowedFast:
		// BEP 6: the sender may list pieces it does not have; we ask for one only once it
		// has it. The set is a bitfield of our piece count: a peer cannot grow it further.
		s.mu.Lock()
		if s.fast.allowed == nil {
			s.fast.allowed = wire.NewBitfield(s.env.Info.NumPieces())
		}
		s.fast.allowed.Set(int(m.Index))
		choked := s.choked
		s.mu.Unlock()
		if choked {
			s.p.Kick()
		}
	case wire.Suggest:
		s.log.Debug("peer suggests a piece", "piece", m.Index)
	}
	return nil
}

// rejected takes the peer's reject of r: the request goes back to the Scheduler at once,
// for any peer to take. A reject that answers a request we cancelled or gave up is quiet;
// one of a request never made breaks the protocol (BEP 6: the peer SHOULD close the
// connection).
func (s *session) rejected(r BlockReq) error {
	s.mu.Lock()
	if s.pending.remove(r) {
		s.flow.lost(r)
		if !s.choked {
			// Rejected though we are unchoked (its queue is full, it lost the piece): not
			// asked of it again before the next tick, or we would ask in a loop.
			if len(s.fast.rejected) >= maxRejectedMemory {
				clear(s.fast.rejected)
			}
			s.fast.rejected.add(r)
		}
		s.mu.Unlock()
		s.env.Sched.Release(s.p, []BlockReq{r})
		s.p.Kick()
		return nil
	}
	ok := s.released.remove(r)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: piece %d begin %d length %d", ErrRejectUnrequested, r.Piece, r.Begin, r.Length)
	}
	return nil
}

// chokedFast records a Fast peer's choke: its requests stay pending until answered.
// Called with s.mu held.
func (s *session) chokedFast(now time.Time) {
	s.fast.chokedAt = now
}

// unchokedFast forgets the requests the peer rejected: unchoked anew, it is asked again.
// Called with s.mu held.
func (s *session) unchokedFast() {
	clear(s.fast.rejected)
	s.fast.chokedAt = time.Time{}
}

// giveUpChoked releases the requests of a Fast peer that choked us and has answered none
// of them for fastRejectWait: BEP 6 has it reject them, and one that does not must not hold
// them for the snub timeout. Their blocks are still accepted if they come. Called with s.mu
// held; the caller releases what it returns.
func (s *session) giveUpChoked(now time.Time) []BlockReq {
	if !s.fast.on || !s.choked || s.fast.chokedAt.IsZero() || len(s.pending) == 0 ||
		now.Sub(s.fast.chokedAt) < fastRejectWait || now.Sub(s.lastBlock) < fastRejectWait {
		return nil
	}
	s.fast.chokedAt = time.Time{}
	return s.releasePending()
}

// allowedMask returns the pieces to request while the peer chokes us: those it has and
// allows fast; nil when there are none. Called with s.mu held.
func (s *session) allowedMask() wire.Bitfield {
	if !s.fast.on || s.fast.allowed == nil {
		return nil
	}
	if s.fast.mask == nil {
		s.fast.mask = wire.NewBitfield(s.env.Info.NumPieces())
	}
	some := false
	for i := range s.fast.mask {
		s.fast.mask[i] = s.has[i] & s.fast.allowed[i]
		some = some || s.fast.mask[i] != 0
	}
	if !some {
		return nil
	}
	return s.fast.mask
}

// rejectUpload queues a reject of the peer's request r, if the peer speaks BEP 6 (without
// it a request we do not serve is dropped silently, BEP 3). Called with s.mu held.
func (s *session) rejectUpload(r BlockReq) {
	if s.fast.on {
		s.fast.rejq = append(s.fast.rejq, r)
	}
}

// appendRejects appends the queued rejects to buf. Called with s.mu held.
func (s *session) appendRejects(buf []byte) []byte {
	if len(s.fast.rejq) == 0 {
		return buf
	}
	for _, r := range s.fast.rejq {
		buf = wire.AppendReject(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
	}
	s.fast.rejq = s.fast.rejq[:0]
	s.signalServed()
	return buf
}
