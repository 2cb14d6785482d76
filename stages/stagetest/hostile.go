package stagetest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// HostileHold bounds how long a hostile peer waits, after its script, for the client to
// close the connection: no hostile connection outlives it, whatever the client does.
const HostileHold = 30 * time.Second

// Greeting is a hostile peer's side of the handshake (BEP 3) on a fresh connection; dialed
// is true when the hostile peer opened the connection, and so speaks first. An error ends
// the connection without running the script.
type Greeting func(hc *HostileConn, dialed bool) error

// Script is what a hostile peer does once its greeting is done. Its error only says why it
// stopped; what the client did is read from the connection (HostilePeer.Dropped).
type Script func(hc *HostileConn) error

// HostilePeer is a scriptable misbehaving peer on 127.0.0.1. It accepts connections on
// its own listener (the client dials it as a seeder), or dials the client's listener with
// Dial (a leecher), greets as told, and runs its script over the raw connection. Then it
// waits, up to HostileHold, for the client to close the connection, and records whether it
// did: that is how a test sees that the client dropped it.
type HostilePeer struct {
	t      *Torrent
	greet  Greeting
	script Script
	srv    *server

	mu      sync.Mutex
	errs    []error // why each script stopped, in the order connections ended
	dropped chan struct{}
	drop    sync.Once // closes dropped

	Accepted atomic.Int64 // connections the client made to the peer
	Dialed   atomic.Int64 // connections the peer made to the client
	Closed   atomic.Int64 // connections the client closed (EOF or reset seen by the peer)
}

// NewHostilePeer starts a hostile peer for t on 127.0.0.1:0; it stops when the test ends.
func NewHostilePeer(tb testing.TB, t *Torrent, greet Greeting, script Script) *HostilePeer {
	tb.Helper()
	p := &HostilePeer{t: t, greet: greet, script: script, srv: newServer(tb, "127.0.0.1:0"), dropped: make(chan struct{})}
	p.srv.accept(func() { p.Accepted.Add(1) }, func(c net.Conn) { p.handle(c, false) })
	tb.Cleanup(p.Close)
	return p
}

// Addr is the peer's listening address.
func (p *HostilePeer) Addr() netip.AddrPort { return p.srv.addr() }

// Dropped is closed once the client has closed one of the peer's connections.
func (p *HostilePeer) Dropped() <-chan struct{} { return p.dropped }

// Errs returns why the script stopped on each connection that has ended.
func (p *HostilePeer) Errs() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

// Close stops the peer: it closes the listener and every connection, and waits for its
// goroutines.
func (p *HostilePeer) Close() { p.srv.close() }

// Dial connects to the client at addr, retrying while it refuses (its listener may not be
// up yet) until ctx ends, and then greets and runs the script as on accepted connections.
// It returns at once; Close waits for the connection.
func (p *HostilePeer) Dial(ctx context.Context, addr netip.AddrPort) {
	p.srv.go_(func() {
		var d net.Dialer
		for {
			c, err := d.DialContext(ctx, "tcp", addr.String())
			if err == nil {
				p.Dialed.Add(1)
				p.srv.serve(c, func(c net.Conn) { p.handle(c, true) })
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-p.srv.quit:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
}

// handle greets on c and runs the script; the server closes c after.
func (p *HostilePeer) handle(c net.Conn, dialed bool) {
	c.SetDeadline(time.Now().Add(HostileHold))
	hc := &HostileConn{Conn: c, T: p.t, R: bufio.NewReader(c), quit: p.srv.quit}
	hc.dec = wire.NewDecoder(hc.R, p.t.Meta.Info.NumPieces())
	err := p.greet(hc, dialed)
	if err == nil {
		err = p.script(hc)
	}
	closed := closedByPeer(err) || hc.awaitClose()
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
	if closed {
		p.Closed.Add(1)
		p.drop.Do(func() { close(p.dropped) })
	}
}

// closedByPeer reports whether err means the other side closed the connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// HostileConn is one connection of a hostile peer, for its Greeting and Script.
type HostileConn struct {
	net.Conn
	T    *Torrent
	R    *bufio.Reader // reads what the client sent
	dec  *wire.Decoder
	quit <-chan struct{}
	// ClientBitfield is the client's bitfield once Next has read one, with its haves since.
	ClientBitfield wire.Bitfield
}

// Send writes b.
func (hc *HostileConn) Send(b []byte) error {
	_, err := hc.Write(b)
	return err
}

// Sleep waits d; it reports false when the peer is closing.
func (hc *HostileConn) Sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-hc.quit:
		return false
	}
}

// Drip writes b one byte every pause, the slowloris way.
func (hc *HostileConn) Drip(b []byte, pause time.Duration) error {
	for i := range b {
		if err := hc.Send(b[i : i+1]); err != nil {
			return err
		}
		if !hc.Sleep(pause) {
			return net.ErrClosed
		}
	}
	return nil
}

// Next reads the client's next message, skipping the data of piece messages, and tracks
// the client's bitfield and haves.
func (hc *HostileConn) Next() (wire.Message, error) {
	m, err := hc.dec.Next()
	if err != nil {
		return m, err
	}
	switch {
	case m.KeepAlive:
	case m.ID == wire.BitfieldID:
		hc.ClientBitfield = m.Bitfield
	case m.ID == wire.Have:
		if hc.ClientBitfield == nil {
			hc.ClientBitfield = wire.NewBitfield(hc.T.Meta.Info.NumPieces())
		}
		hc.ClientBitfield.Set(int(m.Index))
	case m.ID == wire.Piece:
		err = hc.dec.Discard()
	}
	return m, err
}

// Await reads the client's messages until one with id arrives, within timeout.
func (hc *HostileConn) Await(id wire.ID, timeout time.Duration) (wire.Message, error) {
	hc.SetReadDeadline(time.Now().Add(timeout))
	defer hc.SetReadDeadline(time.Now().Add(HostileHold))
	for {
		m, err := hc.Next()
		if err != nil {
			return m, err
		}
		if !m.KeepAlive && m.ID == id {
			return m, nil
		}
	}
}

// awaitClose reads until the client closes the connection, or the hold ends; it reports
// whether the client closed it.
func (hc *HostileConn) awaitClose() bool {
	_, err := io.Copy(io.Discard, hc.R)
	// io.Copy returns nil at EOF.
	return err == nil || closedByPeer(err)
}

// hostileHandshake returns the bytes of a hostile peer's handshake for infoHash.
func hostileHandshake(infoHash [20]byte) []byte {
	h := wire.Handshake{InfoHash: infoHash}
	copy(h.PeerID[:], "-HS0001-hostile00000")
	return h.Append(nil)
}

// ExtendedHandshake is an honest handshake that announces the extension protocol (BEP 10).
func ExtendedHandshake(hc *HostileConn, dialed bool) error {
	return greetWith(rightHash, func(hc *HostileConn, b []byte) error {
		b[20+5] |= wire.ExtensionBit // the reserved bytes follow "\x13BitTorrent protocol"
		return hc.Send(b)
	})(hc, dialed)
}

// greetWith greets with a handshake for the info hash that infoHash picks, written by send;
// on an accepted connection it first checks that the client asked for the peer's torrent.
func greetWith(infoHash func(*HostileConn) [20]byte, send func(*HostileConn, []byte) error) Greeting {
	return func(hc *HostileConn, dialed bool) error {
		ours := hostileHandshake(infoHash(hc))
		if dialed {
			if err := send(hc, ours); err != nil {
				return err
			}
		}
		theirs, err := wire.ReadHandshake(hc.R)
		if err != nil {
			return err
		}
		if !dialed {
			if err := theirs.CheckInfoHash(hc.T.Meta.InfoHash); err != nil {
				return err
			}
			return send(hc, ours)
		}
		return nil
	}
}

func rightHash(hc *HostileConn) [20]byte { return hc.T.Meta.InfoHash }

func sendAll(hc *HostileConn, b []byte) error { return hc.Send(b) }

// RightHandshake is an honest handshake for the peer's torrent.
func RightHandshake(hc *HostileConn, dialed bool) error {
	return greetWith(rightHash, sendAll)(hc, dialed)
}

// WrongInfoHash answers, or opens, with the handshake of another torrent (BEP 3: the
// client must sever the connection).
func WrongInfoHash(hc *HostileConn, dialed bool) error {
	other := func(hc *HostileConn) [20]byte {
		h := hc.T.Meta.InfoHash
		h[0] ^= 0xFF
		return h
	}
	return greetWith(other, sendAll)(hc, dialed)
}

// DripHandshake sends a right handshake one byte every pause (a slowloris): the client's
// handshake timeout must cut it.
func DripHandshake(pause time.Duration) Greeting {
	return greetWith(rightHash, func(hc *HostileConn, b []byte) error { return hc.Drip(b, pause) })
}

// fullBitfield is the bitfield message of a peer holding every piece.
func (hc *HostileConn) fullBitfield() []byte {
	n := hc.T.Meta.Info.NumPieces()
	bf := wire.NewBitfield(n)
	for i := range n {
		bf.Set(i)
	}
	return wire.AppendMessage(nil, wire.Message{ID: wire.BitfieldID, Bitfield: bf})
}

// seedAndUnchoke announces every piece and unchokes the client once it is interested.
func (hc *HostileConn) seedAndUnchoke() error {
	if err := hc.Send(hc.fullBitfield()); err != nil {
		return err
	}
	if _, err := hc.Await(wire.Interested, 10*time.Second); err != nil {
		return err
	}
	return hc.Send(wire.AppendState(nil, wire.Unchoke))
}

// hold reads (and drops) the client's messages until it closes the connection.
func (hc *HostileConn) hold() error {
	for {
		if _, err := hc.Next(); err != nil {
			return err
		}
	}
}

// HugeLength announces every piece and then sends a message of type id whose length
// prefix is 2^32-1, followed by 64 KiB of noise: the client must reject the prefix before
// reading or allocating for it.
func HugeLength(id wire.ID) Script {
	return func(hc *HostileConn) error {
		msg := append(hc.fullBitfield(), 0xFF, 0xFF, 0xFF, 0xFF, byte(id))
		msg = append(msg, noise(1, 64<<10)...)
		if err := hc.Send(msg); err != nil {
			return err
		}
		return hc.hold()
	}
}

// BitfieldLength sends a bitfield message delta bytes longer (or, negative, shorter) than
// the torrent's piece count makes it.
func BitfieldLength(delta int) Script {
	return func(hc *HostileConn) error {
		n := len(wire.NewBitfield(hc.T.Meta.Info.NumPieces())) + delta
		msg := binary.BigEndian.AppendUint32(nil, uint32(1+n))
		msg = append(msg, byte(wire.BitfieldID))
		msg = append(msg, noise(2, n)...)
		if err := hc.Send(msg); err != nil {
			return err
		}
		return hc.hold()
	}
}

// SpareBits sends a bitfield of the right length with its spare bits set (BEP 3: they must
// be zero). The torrent's piece count must not be a multiple of 8.
func SpareBits(hc *HostileConn) error {
	msg := hc.fullBitfield()
	msg[len(msg)-1] = 0xFF
	if err := hc.Send(msg); err != nil {
		return err
	}
	return hc.hold()
}

// HaveIndex sends a have message for piece index, which need not exist.
func HaveIndex(index uint32) Script {
	return func(hc *HostileConn) error {
		if err := hc.Send(wire.AppendHave(nil, index)); err != nil {
			return err
		}
		return hc.hold()
	}
}

// PieceNeverRequested announces every piece, keeps the client choked, and sends it the
// right data of piece 0's first block, which the client cannot have requested.
func PieceNeverRequested(hc *HostileConn) error {
	info := &hc.T.Meta.Info
	n := min(int64(wire.BlockSize), info.PieceSize(0))
	msg := wire.AppendPieceHeader(hc.fullBitfield(), 0, 0, int(n))
	msg = append(msg, hc.T.Data[:n]...)
	if err := hc.Send(msg); err != nil {
		return err
	}
	return hc.hold()
}

// PieceOutOfRange announces every piece, and sends a piece message whose index is the
// piece count.
func PieceOutOfRange(hc *HostileConn) error {
	n := uint32(hc.T.Meta.Info.NumPieces())
	msg := wire.AppendPieceHeader(hc.fullBitfield(), n, 0, 16)
	msg = append(msg, noise(3, 16)...)
	if err := hc.Send(msg); err != nil {
		return err
	}
	return hc.hold()
}

// Seed is an honest seeder's script: it announces every piece, unchokes the interested
// client and answers every request with the right data.
func Seed(hc *HostileConn) error { return hc.seed(false) }

// CorruptData seeds: it announces every piece, unchokes the interested client and answers
// every request with the block's bytes inverted, so that each piece fails its hash.
func CorruptData(hc *HostileConn) error { return hc.seed(true) }

func (hc *HostileConn) seed(corrupt bool) error {
	if err := hc.seedAndUnchoke(); err != nil {
		return err
	}
	for {
		m, err := hc.Next()
		if err != nil {
			return err
		}
		if m.KeepAlive || m.ID != wire.Request {
			continue
		}
		if err := hc.answer([]wire.Message{m}, corrupt); err != nil {
			return err
		}
	}
}

// SeedWithReqq seeds, after ExtendedHandshake, as a peer whose extended handshake says it
// queues reqq requests (BEP 10), and holds the client to it: it lets requests gather until
// reqq of them (or all the blocks it has not sent, if fewer) are queued, waits a moment
// for one more, which would break the limit and fail the script, and then answers them
// all. It fails too if the client's own extended handshake, with a reqq and a client
// name, did not come before its interested.
func SeedWithReqq(reqq int) Script {
	const grace = 100 * time.Millisecond // for a request beyond reqq to show up
	return func(hc *HostileConn) error {
		info := &hc.T.Meta.Info
		if err := hc.Send(hc.fullBitfield()); err != nil {
			return err
		}
		if err := hc.Send(wire.AppendExtHandshake(nil, wire.ExtHandshake{Client: "hostile", Reqq: reqq})); err != nil {
			return err
		}
		// A reader goroutine, so that the script can wait for a message with a timeout.
		type read struct {
			m   wire.Message
			ext *wire.ExtHandshake // the client's extended handshake, parsed at once
			err error
		}
		reads := make(chan read)
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				var r read
				r.m, r.err = hc.Next()
				if r.err == nil && r.m.ID == wire.Extended && len(r.m.Extended) > 0 && r.m.Extended[0] == 0 {
					h, err := wire.ParseExtHandshake(r.m.Extended[1:])
					if err != nil || h.Reqq == 0 || h.Client == "" {
						r.err = fmt.Errorf("client's extended handshake %q: %+v, %v; want a reqq and a client name", r.m.Extended[1:], h, err)
					}
					r.ext = &h
				}
				select {
				case reads <- r:
				case <-done:
					return
				}
				if r.err != nil {
					return
				}
			}
		}()
		theirs, unchoked := false, false
		left := int((info.Length + wire.BlockSize - 1) / wire.BlockSize) // blocks not yet sent
		var queue []wire.Message
		for {
			var r read
			if len(queue) > 0 && len(queue) == min(reqq, left) {
				select {
				case r = <-reads:
				case <-time.After(grace):
					if err := hc.answer(queue, false); err != nil {
						return err
					}
					left -= len(queue)
					queue = queue[:0]
					continue
				}
			} else {
				r = <-reads
			}
			if r.err != nil {
				return r.err
			}
			m := r.m
			switch {
			case r.ext != nil:
				theirs = true
			case m.KeepAlive:
			case m.ID == wire.Interested && !unchoked:
				if !theirs {
					return errors.New("client sent no extended handshake before interested")
				}
				unchoked = true
				if err := hc.Send(wire.AppendState(nil, wire.Unchoke)); err != nil {
					return err
				}
			case m.ID == wire.Request:
				if queue = append(queue, m); len(queue) > reqq {
					return fmt.Errorf("client has %d requests outstanding, more than the reqq of %d", len(queue), reqq)
				}
			}
		}
	}
}

// answer sends the blocks of requests, every byte inverted when corrupt.
func (hc *HostileConn) answer(requests []wire.Message, corrupt bool) error {
	for _, r := range requests {
		msg, err := hc.pieceMsg(r)
		if err != nil {
			return err
		}
		if corrupt {
			for i := 13; i < len(msg); i++ { // past the 13-byte header
				msg[i] = ^msg[i]
			}
		}
		if err := hc.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

// pieceMsg is the piece message that answers the request r with the torrent's bytes.
func (hc *HostileConn) pieceMsg(r wire.Message) ([]byte, error) {
	info := &hc.T.Meta.Info
	off := info.PieceOffset(int(r.Index)) + int64(r.Begin)
	if r.Length > wire.MaxBlockLen || off+int64(r.Length) > info.Length {
		return nil, fmt.Errorf("client requested [%d, %d), outside the torrent", off, off+int64(r.Length))
	}
	msg := wire.AppendPieceHeader(nil, r.Index, r.Begin, int(r.Length))
	return append(msg, hc.T.Data[off:off+int64(r.Length)]...), nil
}

// After runs s once gate is closed, saying nothing until then: a peer the test lets start
// when it is ready.
func After(gate <-chan struct{}, s Script) Script {
	return func(hc *HostileConn) error {
		select {
		case <-gate:
		case <-hc.quit:
			return net.ErrClosed
		}
		return s(hc)
	}
}

// StallAfterUnchoke announces every piece, unchokes the interested client and then never
// answers its requests.
func StallAfterUnchoke(hc *HostileConn) error {
	if err := hc.seedAndUnchoke(); err != nil {
		return err
	}
	return hc.hold()
}

// DripBlock announces every piece, unchokes the interested client and answers its first
// request one byte every pause, until the client closes the connection.
func DripBlock(pause time.Duration) Script {
	return func(hc *HostileConn) error {
		if err := hc.seedAndUnchoke(); err != nil {
			return err
		}
		m, err := hc.Await(wire.Request, 10*time.Second)
		if err != nil {
			return err
		}
		msg, err := hc.pieceMsg(m)
		if err != nil {
			return err
		}
		// Read what the client sends meanwhile, so that only the drip decides, and to see
		// the client close the connection.
		read := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, hc.R)
			if err == nil {
				err = io.EOF
			}
			read <- err
		}()
		for i := range msg {
			if err := hc.Send(msg[i : i+1]); err != nil {
				hc.Close()
				<-read
				return err
			}
			select {
			case err := <-read:
				return err
			case <-time.After(pause):
			case <-hc.quit:
				hc.Close()
				<-read
				return net.ErrClosed
			}
		}
		hc.Close()
		<-read
		return errors.New("dripped the whole block")
	}
}

// Request is a leecher's script: it tells the client it is interested, waits (up to 5 s)
// to be unchoked, and then sends a request for length bytes at begin of piece index,
// which need not exist nor be held by the client.
func Request(index, begin, length uint32) Script {
	return func(hc *HostileConn) error {
		if err := hc.Send(wire.AppendState(nil, wire.Interested)); err != nil {
			return err
		}
		if _, err := hc.Await(wire.Unchoke, 5*time.Second); err != nil && !isTimeout(err) {
			return err
		}
		if err := hc.Send(wire.AppendRequest(nil, index, begin, length)); err != nil {
			return err
		}
		return hc.hold()
	}
}

// RequestFlood is a leecher's script: once unchoked, it sends n valid requests for the
// first block of the first piece the client holds, closes sent, and then reads nothing,
// so that the client's uploads pile up in the socket while the requests keep coming.
func RequestFlood(n int, sent chan<- struct{}) Script {
	return func(hc *HostileConn) error {
		if tc, ok := hc.Conn.(*net.TCPConn); ok {
			tc.SetReadBuffer(4 << 10)
		}
		if err := hc.Send(wire.AppendState(nil, wire.Interested)); err != nil {
			return err
		}
		if _, err := hc.Await(wire.Unchoke, 10*time.Second); err != nil {
			return err
		}
		piece := -1
		for i := range hc.T.Meta.Info.NumPieces() {
			if hc.ClientBitfield.Has(i) {
				piece = i
				break
			}
		}
		if piece < 0 {
			return errors.New("the client unchoked us holding no piece")
		}
		length := uint32(min(int64(wire.BlockSize), hc.T.Meta.Info.PieceSize(piece)))
		msg := make([]byte, 0, 17*n)
		for range n {
			msg = wire.AppendRequest(msg, uint32(piece), 0, length)
		}
		// The client stops reading once its upload queue is full: write from a goroutine
		// and signal once the client has taken what it will.
		wrote := make(chan error, 1)
		go func() {
			_, err := hc.Write(msg)
			wrote <- err
		}()
		var werr error
		wroteAll := false
		select {
		case werr = <-wrote:
			wroteAll = true
		case <-time.After(500 * time.Millisecond):
		}
		close(sent)
		if werr != nil {
			return werr
		}
		<-hc.quit
		hc.Close()
		if !wroteAll {
			<-wrote
		}
		return net.ErrClosed
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// noise returns n seeded random bytes.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// FloodKind is what one connection of a flood does.
type FloodKind int

const (
	// FloodSilent connects and sends nothing.
	FloodSilent FloodKind = iota
	// FloodGarbage sends 1 KiB of random bytes instead of a handshake.
	FloodGarbage
	// FloodWrongHash sends a handshake for another torrent.
	FloodWrongHash
	// FloodHugeLength handshakes right, then sends a length prefix of 2^32-1.
	FloodHugeLength
)

// FloodResult counts what became of a flood's connections.
type FloodResult struct {
	Connected int // dials that connected
	Failed    int // dials that failed
	Closed    int // connections the client closed
	Held      int // connections still open when the hold ended
}

// Flood opens many connections to a client's listener at once.
type Flood struct {
	done   chan struct{}
	dialed chan struct{}
	res    FloodResult
}

// StartFlood opens n connections to addr at once, the i-th doing kind(i), and keeps each
// until the client closes it or hold passes. It returns at once; the test's cleanup waits
// for every connection to end.
func StartFlood(tb testing.TB, t *Torrent, addr netip.AddrPort, n int, hold time.Duration, kind func(i int) FloodKind) *Flood {
	f := &Flood{done: make(chan struct{}), dialed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var wg, dialing sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		dialing.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := net.DialTimeout("tcp", addr.String(), hold)
			dialing.Done()
			if err != nil {
				mu.Lock()
				f.res.Failed++
				mu.Unlock()
				return
			}
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			c.SetDeadline(time.Now().Add(hold))
			var msg []byte
			switch kind(i) {
			case FloodGarbage:
				msg = noise(uint64(i), 1024)
			case FloodWrongHash:
				h := t.Meta.InfoHash
				h[19] ^= 0xFF
				msg = hostileHandshake(h)
			case FloodHugeLength:
				msg = append(hostileHandshake(t.Meta.InfoHash), 0xFF, 0xFF, 0xFF, 0xFF, byte(wire.Piece))
			}
			if len(msg) > 0 {
				c.Write(msg)
			}
			buf := make([]byte, 512) // small: the flood's own memory is not what is measured
			for err == nil {
				_, err = c.Read(buf)
			}
			mu.Lock()
			f.res.Connected++
			if closedByPeer(err) {
				f.res.Closed++
			} else {
				f.res.Held++
			}
			mu.Unlock()
		}()
	}
	close(start)
	go func() {
		dialing.Wait()
		close(f.dialed)
		wg.Wait()
		close(f.done)
	}()
	tb.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

// Dialed is closed once every connection of the flood has been attempted.
func (f *Flood) Dialed() <-chan struct{} { return f.dialed }

// Wait waits for every connection of the flood to end and returns what became of them.
func (f *Flood) Wait() FloodResult {
	<-f.done
	return f.res
}
