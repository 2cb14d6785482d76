package stagetest

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// Behavior is how a FakePeer treats the peers that connect to it.
type Behavior int

const (
	// Honest serves every request with the right data.
	Honest Behavior = iota
	// Corrupt serves every block with its bytes flipped.
	Corrupt
	// NeverUnchoke announces all pieces and never unchokes.
	NeverUnchoke
	// HangUp serves HangUpAfter blocks per connection, then sends half a block and disconnects.
	HangUp
	// Mute accepts the connection and never says anything, not even a handshake.
	Mute
	// Stall handshakes, unchokes, and then never answers a request.
	Stall
	// Unsolicited answers requests with blocks at an offset nobody asks for.
	Unsolicited
)

// FakePeer is an in-process seeder on 127.0.0.1 with a chosen behaviour.
type FakePeer struct {
	t        *Torrent
	behavior Behavior
	srv      *server

	// HangUpAfter is the number of blocks a HangUp peer serves per connection.
	HangUpAfter int
	// Delay is slept before serving each block (a slow peer).
	Delay time.Duration
	// Split, when > 1, makes the peer show each connection only its share of the pieces:
	// the n-th connection (from 0) gets the pieces i with i%Split == n%Split. Two leechers of
	// a split seeder must exchange pieces to finish.
	Split int
	// Gate, when not nil, holds back the unchoke until it is closed: a test can have every
	// peer connected before any block flows.
	Gate <-chan struct{}

	// LeaveAfter, when > 0, makes the peer leave the swarm once it has served that many
	// blocks in all: it stops listening and closes its connections, and Left is closed.
	// NewFakePeerAt on the same address brings a peer back there.
	LeaveAfter atomic.Int64

	Served   atomic.Int64 // blocks sent
	Accepted atomic.Int64 // connections accepted

	left  chan struct{}
	leave sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when Served or Accepted grows
}

// NewFakePeer starts a fake peer seeding t; it stops when the test ends.
func NewFakePeer(tb testing.TB, t *Torrent, b Behavior) *FakePeer {
	tb.Helper()
	return NewFakePeerAt(tb, t, b, "127.0.0.1:0")
}

// NewFakePeerAt is NewFakePeer listening on addr, [::1]:0 say.
func NewFakePeerAt(tb testing.TB, t *Torrent, b Behavior, addr string) *FakePeer {
	tb.Helper()
	p := &FakePeer{t: t, behavior: b, srv: newServer(tb, addr), HangUpAfter: 3, left: make(chan struct{}), changed: make(chan struct{})}
	p.srv.accept(func() {}, func(c net.Conn) {
		nth := int(p.Accepted.Add(1) - 1)
		p.signal()
		p.serve(c, nth)
	})
	tb.Cleanup(p.Close)
	return p
}

// Addr is the peer's listening address.
func (p *FakePeer) Addr() netip.AddrPort { return p.srv.addr() }

// Close stops the peer and waits for its goroutines.
func (p *FakePeer) Close() { p.srv.close() }

// WaitServed waits until the peer has served at least n blocks in all (Served), or ctx
// ends; it reports whether it had.
func (p *FakePeer) WaitServed(ctx context.Context, n int64) bool {
	return p.wait(ctx, func() bool { return p.Served.Load() >= n })
}

// WaitAccepted waits until the peer has accepted at least n connections in all
// (Accepted), or ctx ends; it reports whether it had.
func (p *FakePeer) WaitAccepted(ctx context.Context, n int64) bool {
	return p.wait(ctx, func() bool { return p.Accepted.Load() >= n })
}

func (p *FakePeer) wait(ctx context.Context, done func() bool) bool {
	for {
		p.mu.Lock()
		ch := p.changed // taken before the check: a change after it closes ch
		p.mu.Unlock()
		if done() {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return done()
		}
	}
}

// signal wakes the waiters of WaitServed and WaitAccepted.
func (p *FakePeer) signal() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Left is closed once the peer has left after serving LeaveAfter blocks.
func (p *FakePeer) Left() <-chan struct{} { return p.left }

// goAway stops listening and closes every connection, from a serving goroutine (Close
// would wait for it).
func (p *FakePeer) goAway() {
	p.leave.Do(func() {
		p.srv.ln.Close()
		p.srv.mu.Lock()
		for c := range p.srv.conns {
			c.Close()
		}
		p.srv.mu.Unlock()
		close(p.left)
	})
}

func (p *FakePeer) serve(c net.Conn, nth int) {
	if p.behavior == Mute {
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}
	info := &p.t.Meta.Info
	r := bufio.NewReader(c)
	hs, err := wire.ReadHandshake(r)
	if err != nil || hs.CheckInfoHash(p.t.Meta.InfoHash) != nil {
		return
	}
	ours := wire.Handshake{InfoHash: p.t.Meta.InfoHash}
	copy(ours.PeerID[:], "-FK0001-fakepeer0000")
	out := ours.Append(nil)
	bf := wire.NewBitfield(info.NumPieces())
	for i := range info.NumPieces() {
		if p.Split <= 1 || i%p.Split == nth%p.Split {
			bf.Set(i)
		}
	}
	out = wire.AppendMessage(out, wire.Message{ID: wire.BitfieldID, Bitfield: bf})
	if _, err := c.Write(out); err != nil {
		return
	}
	dec := wire.NewDecoder(r, info.NumPieces())
	served := 0
	var hdr [13]byte
	for {
		m, err := dec.Next()
		if err != nil {
			return
		}
		switch {
		case m.KeepAlive:
		case m.ID == wire.Interested && p.behavior != NeverUnchoke:
			if p.Gate != nil {
				select {
				case <-p.Gate:
				case <-p.srv.quit:
					return
				}
			}
			if _, err := c.Write(wire.AppendState(nil, wire.Unchoke)); err != nil {
				return
			}
		case m.ID == wire.Request && p.behavior != Stall && bf.Has(int(m.Index)):
			if p.Delay > 0 {
				time.Sleep(p.Delay)
			}
			off := info.PieceOffset(int(m.Index)) + int64(m.Begin)
			data := p.t.Data[off : off+int64(m.Length)]
			if p.behavior == Corrupt || p.behavior == HangUp {
				data = append([]byte(nil), data...)
			}
			index, begin := m.Index, m.Begin
			switch p.behavior {
			case Corrupt:
				for i := range data {
					data[i] ^= 0xA5
				}
			case Unsolicited:
				begin++
			case HangUp:
				if served >= p.HangUpAfter {
					msg := wire.AppendPieceHeader(nil, index, begin, len(data))
					c.Write(append(msg, data[:len(data)/2]...))
					return
				}
			}
			bufs := net.Buffers{wire.AppendPieceHeader(hdr[:0], index, begin, len(data)), data}
			if _, err := bufs.WriteTo(c); err != nil {
				return
			}
			served++
			n := p.Served.Add(1)
			p.signal()
			if n == p.LeaveAfter.Load() {
				p.goAway()
				return
			}
		}
	}
}
