package stages

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// MetadataGate is where the connections of a magnet link's download wait while the
// torrent's info dictionary is unknown (BEP 9). It asks every peer that speaks
// ut_metadata for the dictionary, in 16 KiB pieces, and the first copy whose SHA-1 is the
// info hash goes out on Found. A peer whose copy does not hash right is banned and
// dropped; one that rejects or has no metadata waits with the others. Once the metadata
// is known, every connection still open goes out on the outlet, for the piece graph's
// Request stage, with what the peer sent meanwhile (its extended handshake, bitfield,
// haves, choke state) put back in front of its reader; connections that arrive later
// pass straight through. The metadata phase thus runs on the same connections as the
// download, and a peer is never dialed twice.
// In: *Conn, handshake done. Out: *Conn, Adopted when it waited here.
type MetadataGate struct {
	in    chan any
	out   chan any
	done  chan struct{} // closed after out
	found chan []byte
	known chan struct{} // closed with found's send: the metadata is known
	once  sync.Once
}

var (
	_ streams.Sink   = (*MetadataGate)(nil)
	_ streams.Outlet = (*MetadataGate)(nil)
)

// ErrBadMetadata marks a peer whose metadata does not hash to the info hash.
var ErrBadMetadata = errors.New("metadata does not match the info hash")

// maxWaiting bounds what a connection may send while it waits at the gate (its bitfield,
// haves, and the like are kept to be replayed): a peer that sends more is dropped.
const maxWaiting = 1 << 20

// FetchMetadata returns the gate of sw's swarm. Its outlet closes once ctx has ended and
// every connection received has been let go or passed on; before the metadata is known,
// nothing is passed on, so a run that ends then need not read the outlet.
func FetchMetadata(ctx context.Context, sw *Swarm) *MetadataGate {
	g := &MetadataGate{in: make(chan any), out: make(chan any), done: make(chan struct{}),
		found: make(chan []byte, 1), known: make(chan struct{})}
	log := sw.Log.With("stage", "metadata")
	go func() {
		defer close(g.done)
		defer close(g.out)
		var wg sync.WaitGroup
		defer wg.Wait()
		for e := range g.in {
			c := e.(*Conn)
			if ctx.Err() != nil {
				c.Close()
				continue
			}
			select {
			case <-g.known:
				g.pass(ctx, c)
				continue
			default:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.wait(ctx, sw, c, log)
			}()
		}
	}()
	return g
}

// In is the gate's inlet.
func (g *MetadataGate) In() chan<- any { return g.in }

// Out is the gate's outlet: connections for the piece graph.
func (g *MetadataGate) Out() <-chan any { return g.out }

// Source is the outlet as a Source, for the piece graph to start from.
func (g *MetadataGate) Source() streams.Source { return NewSource(g.out) }

// Found delivers the verified info dictionary, once.
func (g *MetadataGate) Found() <-chan []byte { return g.found }

// AwaitCompletion blocks until every connection received has been let go or passed on,
// and the outlet is closed. It does not read the outlet: once the metadata is known the
// piece graph must, until it closes.
func (g *MetadataGate) AwaitCompletion() { <-g.done }

// learn publishes raw, the first good copy.
func (g *MetadataGate) learn(raw []byte) {
	g.once.Do(func() {
		g.found <- raw
		close(g.known)
	})
}

// pass sends c on to the piece graph.
func (g *MetadataGate) pass(ctx context.Context, c *Conn) {
	select {
	case g.out <- c:
	case <-ctx.Done():
		c.Close()
	}
}

// wait runs the metadata exchange on c, and keeps c until the metadata is known (from c
// or another peer), recording what the peer sends; then it passes c on, with the
// recorded messages to be read again first.
func (g *MetadataGate) wait(ctx context.Context, sw *Swarm, c *Conn, log interface {
	Debug(string, ...any)
	Info(string, ...any)
	Warn(string, ...any)
}) {
	// Reads end when the metadata is known or the run ends; a read cut in the middle of
	// a message keeps what it read, to be read again.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	stopKnown := afterClose(g.known, func() { c.SetReadDeadline(time.Now()) })
	defer stopKnown()
	x := &exchange{sw: sw, c: c}
	raw, err := x.run()
	switch {
	case err == nil:
		log.Info("metadata received", "peer", c.Addr, "size", len(raw))
		sw.Emit(MetadataReceived{Peer: c.Addr, Size: len(raw)})
		g.learn(raw)
	case errors.Is(err, ErrBadMetadata):
		sw.Bans.Add(c.Addr)
		log.Warn("banning peer", "peer", c.Addr, "reason", err)
		sw.Emit(PeerBanned{Addr: c.Addr, Reason: err.Error()})
		c.Close()
		return
	case errors.Is(err, errMetadataWait):
		log.Debug("peer has no metadata for us; it waits for the download", "peer", c.Addr, "reason", err)
		err = x.idle()
	}
	if err != nil && !isTimeout(err) {
		if ctx.Err() == nil {
			log.Debug("peer dropped while the metadata is fetched", "peer", c.Addr, "err", err)
		}
		c.Close()
		return
	}
	select {
	case <-g.known:
	default:
		// Not yet known: only the run ending stops a read here.
		c.Close()
		return
	}
	stopKnown()
	stop()
	if ctx.Err() != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	c.R = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(x.kept), c.R), 64<<10)
	c.Adopted = true
	g.pass(ctx, c)
}

// afterClose calls f once ch is closed, unless the returned stop is called first.
func afterClose(ch <-chan struct{}, f func()) (stop func()) {
	quit := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ch:
			f()
		case <-quit:
		}
	}()
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errMetadataWait marks a peer that cannot give us the metadata but may serve the data.
var errMetadataWait = errors.New("no metadata from this peer")

// exchange is BEP 9 on one connection: our extended handshake (BEP 10), the peer's with
// its ut_metadata id and metadata_size, then a request for every piece, checked as they
// come and hashed once all are in. Everything else the peer sends is kept, in order, for
// the download's session to read.
type exchange struct {
	sw   *Swarm
	c    *Conn
	kept []byte // the peer's messages other than ut_metadata, and a message cut short

	size   int
	pieces [][]byte // kept as they come, not in a buffer of the size the peer claims
	left   int
}

func (x *exchange) run() ([]byte, error) {
	if !wire.SupportsExtensions(x.c.Reserved) {
		return nil, fmt.Errorf("%w: it does not speak the extension protocol (BEP 10)", errMetadataWait)
	}
	var hs []byte
	if wire.SupportsFast(x.c.Reserved) {
		// BEP 6: with the Fast extension on both sides, the first message is have all,
		// have none or a bitfield; we have nothing yet. (Adopted by the piece graph, the
		// connection then announces pieces as haves.)
		hs = wire.AppendState(hs, wire.HaveNone)
	}
	hs = wire.AppendExtHandshake(hs, wire.ExtHandshake{M: map[string]uint8{wire.ExtMetadata: wire.LocalMetadataID},
		Port: x.sw.Port, Client: ClientName, YourIP: x.c.Addr.Addr()})
	if _, err := x.c.Write(hs); err != nil {
		return nil, err
	}
	for {
		frame, err := x.next()
		if err != nil {
			return nil, err
		}
		if raw, done, err := x.handle(frame); done || err != nil {
			return raw, err
		}
	}
}

// idle keeps reading and keeping the peer's messages until a read fails (the metadata
// became known, the run ended, the peer left).
func (x *exchange) idle() error {
	for {
		frame, err := x.next()
		if err != nil {
			return err
		}
		if err := x.keep(frame); err != nil {
			return err
		}
	}
}

// handle takes one message; done reports the metadata complete and verified.
func (x *exchange) handle(frame []byte) (raw []byte, done bool, err error) {
	if len(frame) < 6 || wire.ID(frame[4]) != wire.Extended {
		return nil, false, x.keep(frame)
	}
	payload := frame[5:]
	switch payload[0] {
	case 0:
		if x.pieces == nil {
			h, err := wire.ParseExtHandshake(payload[1:])
			if err != nil {
				return nil, false, err
			}
			if err := x.request(h); err != nil {
				return nil, false, err
			}
		}
		return nil, false, x.keep(frame) // the session reads it again: reqq, m, p
	case wire.LocalMetadataID:
		return x.piece(payload[1:])
	}
	return nil, false, x.keep(frame)
}

// request asks for every piece of the metadata the peer's handshake h offers.
func (x *exchange) request(h wire.ExtHandshake) error {
	id := h.M[wire.ExtMetadata]
	if id == 0 {
		return fmt.Errorf("%w: no ut_metadata in its handshake", errMetadataWait)
	}
	n, err := wire.MetadataPieces(h.MetadataSize)
	if err != nil {
		return fmt.Errorf("%w: %w", errMetadataWait, err)
	}
	x.size, x.pieces, x.left = h.MetadataSize, make([][]byte, n), n
	var req []byte
	for i := range n {
		req = wire.AppendMetadataMsg(req, id, wire.MetadataMsg{Type: wire.MetadataRequest, Piece: i})
	}
	_, err = x.c.Write(req)
	return err
}

// piece takes a ut_metadata message.
func (x *exchange) piece(payload []byte) ([]byte, bool, error) {
	if x.pieces == nil {
		return nil, false, nil
	}
	m, err := wire.ParseMetadataMsg(payload)
	if err != nil {
		return nil, false, err
	}
	switch m.Type {
	case wire.MetadataReject:
		return nil, false, fmt.Errorf("%w: it rejected piece %d", errMetadataWait, m.Piece)
	case wire.MetadataData:
	default:
		return nil, false, nil
	}
	want := min(x.size-m.Piece*wire.MetadataPieceSize, wire.MetadataPieceSize)
	if m.Piece < 0 || m.Piece >= len(x.pieces) || m.TotalSize != x.size || len(m.Data) != want {
		return nil, false, fmt.Errorf("%w: piece %d of %d bytes, total_size %d; want %d pieces of %d bytes",
			wire.ErrBadMetadataMsg, m.Piece, len(m.Data), m.TotalSize, len(x.pieces), x.size)
	}
	if x.pieces[m.Piece] == nil {
		x.pieces[m.Piece] = bytes.Clone(m.Data)
		x.left--
	}
	if x.left > 0 {
		return nil, false, nil
	}
	raw := bytes.Join(x.pieces, nil)
	if sha1.Sum(raw) != x.sw.InfoHash {
		return nil, false, ErrBadMetadata
	}
	return raw, true, nil
}

// keep records frame for the session.
func (x *exchange) keep(frame []byte) error {
	if len(x.kept)+len(frame) > maxWaiting {
		return fmt.Errorf("sent over %d bytes while the metadata was fetched", maxWaiting)
	}
	x.kept = append(x.kept, frame...)
	return nil
}

// maxFrame bounds a message read at the gate: a metadata piece with its dictionary, or a
// bitfield of a torrent with as many pieces as MaxMetadataSize can hold hashes of (1.5 M
// pieces, 192 KiB); larger is no peer we want.
const maxFrame = 256 << 10

// next reads one whole length-prefixed message (BEP 3), prefix included; a keep-alive is
// its 4 bytes alone. A read that fails part-way keeps the bytes it read, so that the
// stream can be read again from the start of that message.
func (x *exchange) next() ([]byte, error) {
	var hdr [4]byte
	if n, err := io.ReadFull(x.c.R, hdr[:]); err != nil {
		x.kept = append(x.kept, hdr[:n]...)
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: length prefix %d", wire.ErrMessageTooLong, n)
	}
	frame := make([]byte, 4+n)
	copy(frame, hdr[:])
	if m, err := io.ReadFull(x.c.R, frame[4:]); err != nil {
		x.kept = append(x.kept, frame[:4+m]...)
		return nil, err
	}
	return frame, nil
}
