package stagetest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// Scripted peers that speak the Fast Extension (BEP 6), for the hostile peer harness.

// FastHandshake is an honest handshake that sets the Fast bit (BEP 6), and fails unless
// the client's sets it too.
func FastHandshake(hc *HostileConn, dialed bool) error {
	ours := hostileHandshake(hc.T.Meta.InfoHash)
	ours[20+7] |= wire.FastBit // the reserved bytes follow "\x13BitTorrent protocol"
	if dialed {
		if err := hc.Send(ours); err != nil {
			return err
		}
	}
	theirs, err := wire.ReadHandshake(hc.R)
	if err != nil {
		return err
	}
	if err := theirs.CheckInfoHash(hc.T.Meta.InfoHash); err != nil {
		return err
	}
	if !wire.SupportsFast(theirs.Reserved) {
		return fmt.Errorf("client's handshake reserved %x: no Fast bit", theirs.Reserved)
	}
	if !dialed {
		return hc.Send(ours)
	}
	return nil
}

// FastStats counts what a Fast script saw; a test reads it once the run is over.
type FastStats struct {
	First    atomic.Int32 // the id of the client's first message, plus one; 0 before it
	Requests atomic.Int64 // requests received
	Served   atomic.Int64 // blocks sent
	Rejected atomic.Int64 // rejects sent
	Chokes   atomic.Int64 // chokes sent with requests outstanding
	Twice    atomic.Int64 // requests for a block requested before and neither served nor rejected yet
	Received atomic.Int64 // blocks the client served us while choking us (allowed fast)

	mu      sync.Mutex
	allowed []int // the pieces the client allowed us fast, in order
}

// Allowed returns the pieces the client allowed us fast (BEP 6 allowed fast), in order.
func (st *FastStats) Allowed() []int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.allowed)
}

// FirstID is the id of the client's first message, and whether one came.
func (st *FastStats) FirstID() (wire.ID, bool) {
	v := st.First.Load()
	return wire.ID(v - 1), v > 0
}

// read is one message the client sent, or why reading stopped.
type read struct {
	m   wire.Message
	err error
}

// startReader reads the client's messages on a goroutine of its own, so that a script can
// wait for one with a timeout. The channel closes after the first error; a script drains
// it before it returns (stopReader), so that nothing reads the connection after it.
func (hc *HostileConn) startReader(st *FastStats) <-chan read {
	ch := make(chan read, 256)
	go func() {
		defer close(ch)
		for {
			m, err := hc.Next()
			if err == nil && !m.KeepAlive && st != nil {
				st.First.CompareAndSwap(0, int32(m.ID)+1)
			}
			ch <- read{m, err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// stopReader closes the connection, waits for the reader and returns err.
func (hc *HostileConn) stopReader(ch <-chan read, err error) error {
	hc.Close()
	for range ch {
	}
	return err
}

// blockKey names a request.
type blockKey struct{ index, begin, length uint32 }

func keyOf(m wire.Message) blockKey { return blockKey{m.Index, m.Begin, m.Length} }

// FastChokeReject is a Fast seeder that chokes with requests outstanding: it sends have
// all, unchokes the interested client, and gathers its requests; chokes times, once 16 or
// more are queued, it serves half of them, chokes the client, rejects the others but two,
// one every pause (BEP 6: choke first, then reject), and unchokes the client again: the
// two are still outstanding (BEP 6: a choke no longer rejects them) and served like any
// other. Otherwise it serves all it has gathered. A request for a block that is
// outstanding (requested and neither served nor rejected) counts in st.Twice.
func FastChokeReject(st *FastStats, chokes int, pause time.Duration) Script {
	const (
		batch = 16                    // requests gathered before a choke
		kept  = 2                     // requests left outstanding, neither served nor rejected, over a choke
		idle  = 20 * time.Millisecond // no message for this long: answer what is queued
		grace = 50 * time.Millisecond // after the last reject, for requests sent before the choke arrived
	)
	return func(hc *HostileConn) error {
		if err := hc.Send(wire.AppendState(nil, wire.HaveAll)); err != nil {
			return err
		}
		msgs := hc.startReader(st)
		outstanding := make(map[blockKey]bool)
		var queue []wire.Message // requests not yet answered, in order
		take := func(r read) error {
			if r.err != nil {
				return r.err
			}
			switch m := r.m; {
			case m.KeepAlive:
			case m.ID == wire.Request:
				st.Requests.Add(1)
				if outstanding[keyOf(m)] {
					st.Twice.Add(1)
				}
				outstanding[keyOf(m)] = true
				queue = append(queue, m)
			case m.ID == wire.Cancel:
				// BEP 6: a cancelled request is still answered, here by a reject.
				for i, q := range queue {
					if keyOf(q) == keyOf(m) {
						queue = append(queue[:i], queue[i+1:]...)
						return hc.reject(st, outstanding, q)
					}
				}
			}
			return nil
		}
		serve := func(reqs []wire.Message) error {
			for _, q := range reqs {
				if err := hc.answer([]wire.Message{q}, false); err != nil {
					return err
				}
				delete(outstanding, keyOf(q))
				st.Served.Add(1)
			}
			return nil
		}
		// Interested first: unchoke it.
		for {
			r, ok := <-msgs
			if !ok {
				return net.ErrClosed
			}
			if err := take(r); err != nil {
				return hc.stopReader(msgs, err)
			}
			if !r.m.KeepAlive && r.m.ID == wire.Interested {
				break
			}
		}
		if err := hc.Send(wire.AppendState(nil, wire.Unchoke)); err != nil {
			return hc.stopReader(msgs, err)
		}
		choked := 0
		for {
			var r read
			var ok bool
			select {
			case r, ok = <-msgs:
				if !ok {
					return net.ErrClosed
				}
				if err := take(r); err != nil {
					return hc.stopReader(msgs, err)
				}
				if choked < chokes && len(queue) < batch {
					continue
				}
			case <-time.After(idle):
				if len(queue) == 0 {
					continue
				}
			}
			if choked >= chokes || len(queue) < batch {
				err := serve(queue)
				queue = queue[:0]
				if err != nil {
					return hc.stopReader(msgs, err)
				}
				continue
			}
			// Serve half, choke, reject the rest but two one by one, unchoke: the two
			// are still outstanding, and are served once they are asked for, or now.
			half := len(queue) / 2
			if err := serve(queue[:half]); err != nil {
				return hc.stopReader(msgs, err)
			}
			queue = append(queue[:0], queue[half:]...)
			if err := hc.Send(wire.AppendState(nil, wire.Choke)); err != nil {
				return hc.stopReader(msgs, err)
			}
			choked++
			st.Chokes.Add(1)
			for n := len(queue) - kept; n > 0 && len(queue) > 0; n-- {
				q := queue[0]
				queue = queue[1:]
				if err := hc.reject(st, outstanding, q); err != nil {
					return hc.stopReader(msgs, err)
				}
				if err := hc.drain(msgs, take, pause); err != nil {
					return hc.stopReader(msgs, err)
				}
			}
			// Requests sent before the choke arrived come in meanwhile: they are
			// outstanding too, and served after the unchoke.
			if err := hc.drain(msgs, take, grace); err != nil {
				return hc.stopReader(msgs, err)
			}
			if err := hc.Send(wire.AppendState(nil, wire.Unchoke)); err != nil {
				return hc.stopReader(msgs, err)
			}
		}
	}
}

// drain takes the client's messages for d.
func (hc *HostileConn) drain(msgs <-chan read, take func(read) error, d time.Duration) error {
	deadline := time.After(d)
	for {
		select {
		case r, ok := <-msgs:
			if !ok {
				return net.ErrClosed
			}
			if err := take(r); err != nil {
				return err
			}
		case <-deadline:
			return nil
		}
	}
}

// reject sends a reject of q.
func (hc *HostileConn) reject(st *FastStats, outstanding map[blockKey]bool, q wire.Message) error {
	delete(outstanding, keyOf(q))
	st.Rejected.Add(1)
	return hc.Send(wire.AppendReject(nil, q.Index, q.Begin, q.Length))
}

// FastAllowedOnly is a Fast seeder that never unchokes: it sends have all and an allowed
// fast message for every piece (BEP 6), and serves whatever is requested of it.
func FastAllowedOnly(st *FastStats) Script {
	return func(hc *HostileConn) error {
		msg := wire.AppendState(nil, wire.HaveAll)
		for i := range hc.T.Meta.Info.NumPieces() {
			msg = wire.AppendAllowedFast(msg, uint32(i))
		}
		if err := hc.Send(msg); err != nil {
			return err
		}
		msgs := hc.startReader(st)
		for r := range msgs {
			if r.err != nil {
				return r.err
			}
			if r.m.KeepAlive || r.m.ID != wire.Request {
				continue
			}
			st.Requests.Add(1)
			if err := hc.answer([]wire.Message{r.m}, false); err != nil {
				return hc.stopReader(msgs, err)
			}
			st.Served.Add(1)
		}
		return net.ErrClosed
	}
}

// FastRejectUnrequested is a Fast seeder that sends have all, keeps the client choked, and
// rejects the first block of piece 0, which the client cannot have requested.
func FastRejectUnrequested(hc *HostileConn) error {
	n := uint32(min(int64(wire.BlockSize), hc.T.Meta.Info.PieceSize(0)))
	msg := wire.AppendState(nil, wire.HaveAll)
	msg = wire.AppendReject(msg, 0, 0, n)
	if err := hc.Send(msg); err != nil {
		return err
	}
	return hc.hold()
}

// HaveAllWithoutFast sends have all on a connection whose handshake did not set the Fast
// bit (BEP 6: the client MUST close the connection).
func HaveAllWithoutFast(hc *HostileConn) error {
	if err := hc.Send(wire.AppendState(nil, wire.HaveAll)); err != nil {
		return err
	}
	return hc.hold()
}

// FastLeecher is a Fast leecher that never says it is interested, so the client never
// unchokes it: it sends a request for the first block of each of the first n pieces the
// client announced outside allowed, and expects a reject for each (BEP 6: a peer SHOULD
// reject the requests of a peer it chokes); and one for the first block of each piece of
// allowed (the client's allowed fast set for us), expecting its piece. It records the
// allowed fast messages the client sends. It closes done once every request has its
// answer, then holds the connection until the client closes it.
func FastLeecher(st *FastStats, n int, allowed []int, done chan<- struct{}) Script {
	return func(hc *HostileConn) error {
		msgs := hc.startReader(st)
		// The client's first message says what it has.
		var have func(int) bool
		for have == nil {
			r, ok := <-msgs
			if !ok {
				return net.ErrClosed
			}
			if r.err != nil {
				return r.err
			}
			switch {
			case r.m.KeepAlive:
			case r.m.ID == wire.HaveAll:
				have = func(int) bool { return true }
			case r.m.ID == wire.BitfieldID:
				have = r.m.Bitfield.Has
			default:
				return hc.stopReader(msgs, fmt.Errorf("client's first message is %v, want have all or a bitfield", r.m.ID))
			}
		}
		block := func(i int) blockKey {
			return blockKey{uint32(i), 0, uint32(min(int64(wire.BlockSize), hc.T.Meta.Info.PieceSize(i)))}
		}
		reject, serve := make(map[blockKey]bool), make(map[blockKey]bool)
		var reqs []byte
		for i := 0; i < hc.T.Meta.Info.NumPieces() && len(reject) < n; i++ {
			if have(i) && !slices.Contains(allowed, i) {
				reject[block(i)] = true
				reqs = wire.AppendRequest(reqs, uint32(i), 0, block(i).length)
			}
		}
		for _, i := range allowed {
			serve[block(i)] = true
			reqs = wire.AppendRequest(reqs, uint32(i), 0, block(i).length)
		}
		if len(reject) == 0 {
			return hc.stopReader(msgs, errors.New("the client has no piece to request"))
		}
		if err := hc.Send(reqs); err != nil {
			return hc.stopReader(msgs, err)
		}
		st.Requests.Add(int64(len(reject) + len(serve)))
		answered := func() {
			if len(reject) == 0 && len(serve) == 0 {
				close(done)
			}
		}
		for r := range msgs {
			if r.err != nil {
				return r.err
			}
			switch {
			case r.m.KeepAlive:
			case r.m.ID == wire.AllowedFast:
				st.mu.Lock()
				st.allowed = append(st.allowed, int(r.m.Index))
				st.mu.Unlock()
			case r.m.ID == wire.Piece:
				k := keyOf(r.m) // Length: the block's
				if !serve[k] {
					return hc.stopReader(msgs, fmt.Errorf("client served piece %d while choking us, not allowed fast", r.m.Index))
				}
				delete(serve, k)
				st.Received.Add(1)
				answered()
			case r.m.ID == wire.Reject:
				if !reject[keyOf(r.m)] {
					return hc.stopReader(msgs, fmt.Errorf("client rejected %+v, which we did not request, rejected before, or allowed fast", r.m))
				}
				delete(reject, keyOf(r.m))
				st.Rejected.Add(1)
				answered()
			}
		}
		return net.ErrClosed
	}
}
