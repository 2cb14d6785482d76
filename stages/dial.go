package stages

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/reugn/go-streams"
)

// DialConfig bounds the Dial stage.
type DialConfig struct {
	MaxPeers    int // connected peers, Listen's included (default 50)
	MaxHalfOpen int // dials and handshakes in progress (default 256): dead peers must not hold live ones back
	// Timeouts for a peer that completed a handshake before, and for one that never did,
	// which is more often dead than slow (the second at most the first).
	DialTimeout           time.Duration // TCP connect (default 5s)
	HandshakeTimeout      time.Duration // BitTorrent handshake once connected (default 10s)
	FirstDialTimeout      time.Duration // TCP connect to a peer never reached (default 3s)
	FirstHandshakeTimeout time.Duration // handshake of a peer never reached (default 4s)
	// Peers tunes the swarm's peer list (back-off, bound), which Dial configures.
	Peers PeerListConfig
	// Knobs of the dialer before the peer list; each sets the peer list's when that is zero.
	RetryDelay time.Duration // Peers.FailBackoff and Peers.ReconnectDelay
	Retries    int           // Peers.MaxFails, as Retries+1
	MaxQueue   int           // Peers.MaxEntries
}

func (c *DialConfig) defaults() {
	c.MaxPeers = cmp0(c.MaxPeers, 50)
	c.MaxHalfOpen = cmp0(c.MaxHalfOpen, 256)
	c.DialTimeout = cmp0(c.DialTimeout, 5*time.Second)
	c.HandshakeTimeout = cmp0(c.HandshakeTimeout, 10*time.Second)
	c.FirstDialTimeout = min(cmp0(c.FirstDialTimeout, 3*time.Second), c.DialTimeout)
	c.FirstHandshakeTimeout = min(cmp0(c.FirstHandshakeTimeout, 4*time.Second), c.HandshakeTimeout)
	c.Peers.FailBackoff = cmp0(c.Peers.FailBackoff, c.RetryDelay)
	c.Peers.ReconnectDelay = cmp0(c.Peers.ReconnectDelay, c.RetryDelay)
	if c.Retries > 0 {
		c.Peers.MaxFails = cmp0(c.Peers.MaxFails, c.Retries+1)
	}
	c.Peers.MaxEntries = cmp0(c.Peers.MaxEntries, c.MaxQueue)
}

func cmp0[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Dial connects to peers and performs the BitTorrent handshake (BEP 3).
// In: *PeerAddr. Out: *Conn, handshake done, in the order handshakes finish.
// Addresses go into the swarm's PeerList, which deduplicates them and says whom to dial,
// best first, and when to try again after a failure or a disconnect; the stage never
// stops reading its input. Up to MaxHalfOpen dials and handshakes run at once, each with
// its own timeouts (short for peers never reached), while fewer than MaxPeers peers are
// connected, so a crowd of dead or silent peers holds up the live ones for no longer than
// it takes to dial them. A connected slot frees when its Conn is closed.
func Dial(ctx context.Context, sw *Swarm, cfg DialConfig) streams.Flow {
	cfg.defaults()
	sw.Peers.Configure(cfg.Peers)
	sw.Peers.LimitConns(cfg.MaxPeers)
	return newNode(0, func(in <-chan any, out chan<- any) {
		d := &dialer{ctx: ctx, sw: sw, pl: sw.Peers, cfg: cfg, out: out, log: sw.Log.With("stage", "dial"),
			dialing: make(chan struct{}, cfg.MaxHalfOpen), freed: make(chan struct{}, 1)}
		d.run(in)
	})
}

type dialer struct {
	ctx     context.Context
	sw      *Swarm
	pl      *PeerList
	cfg     DialConfig
	out     chan<- any
	log     *slog.Logger
	dialing chan struct{} // dials and handshakes in progress
	freed   chan struct{}
	wg      sync.WaitGroup
}

// run feeds the peer list from in and dials what it offers, until ctx ends.
func (d *dialer) run(in <-chan any) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for d.ctx.Err() == nil {
		if wait := d.dispatch(); wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case e, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			if !d.take(e, in) {
				in = nil
			}
		case <-d.freed:
		case <-d.pl.Wake():
		case <-timer.C:
		case <-d.ctx.Done():
		}
	}
	if in != nil { // nil once seen closed: ranging over nil would wait forever
		for range in {
		}
	}
	d.wg.Wait()
}

// add puts a source's address in the peer list, with the origin the source gave it.
func (d *dialer) add(a *PeerAddr) {
	from := a.From
	if from == 0 {
		from = FromSource
	}
	d.pl.Add(a.Addr, from)
}

// take adds e to the peer list, and what else in holds right now, up to a bound: a
// tracker's reply comes in a burst, and the best peers are chosen once it is all in. It
// returns false once in is closed. The addresses the full list dropped are reported
// (PeerListFull).
func (d *dialer) take(e any, in <-chan any) (open bool) {
	before := d.pl.Discarded()
	defer func() {
		if n := d.pl.Discarded() - before; n > 0 {
			d.sw.Emit(PeerListFull{Discarded: n})
		}
	}()
	d.add(e.(*PeerAddr))
	for range 1024 {
		select {
		case e, ok := <-in:
			if !ok {
				return false
			}
			d.add(e.(*PeerAddr))
		default:
			return true
		}
	}
	return true
}

// dispatch starts dials while there is room for them and for the peers they may bring.
// It returns how long until a backed-off peer may be dialled, or -1.
func (d *dialer) dispatch() time.Duration {
	room := cap(d.dialing) - len(d.dialing)
	if room == 0 || d.pl.Full() {
		return -1
	}
	cands, wait := d.pl.Take(room)
	for _, c := range cands {
		d.dialing <- struct{}{}
		d.wg.Add(1)
		go d.attempt(c)
	}
	return wait
}

func (d *dialer) free() {
	<-d.dialing
	select {
	case d.freed <- struct{}{}:
	default:
	}
}

// attempt dials c and hands the connection downstream; its connected slot stays taken until
// the Conn is closed. A peer that handshakes while every slot is taken is closed, and
// tried again later.
func (d *dialer) attempt(c Candidate) {
	defer d.wg.Done()
	conn, err := d.connect(c)
	if err == nil {
		if err = d.pl.Connected(conn, true); err != nil {
			conn.Close()
		}
	}
	d.free()
	if err != nil {
		d.log.Debug("dial failed", "peer", c.Addr, "worked", c.Worked, "err", err)
		d.sw.Emit(DialFailed{Addr: c.Addr, Err: err})
		if !errors.Is(err, errFull) && !errors.Is(err, errDuplicate) {
			d.pl.Failed(c.Addr, !errors.Is(err, errNoRetry))
		}
		return
	}
	select {
	case d.out <- conn:
	case <-d.ctx.Done():
		conn.Close()
	}
}

// errNoRetry marks a handshake that shows the peer is not one of our swarm's.
var errNoRetry = errors.New("not retried")

// connect dials c and handshakes, over MSE or plain as the swarm's policy says (MSE
// failing, it may dial again in plain: see Swarm.dialEncrypted).
func (d *dialer) connect(c Candidate) (*Conn, error) {
	dialTimeout, hsTimeout := d.cfg.FirstDialTimeout, d.cfg.FirstHandshakeTimeout
	if c.Worked {
		dialTimeout, hsTimeout = d.cfg.DialTimeout, d.cfg.HandshakeTimeout
	}
	return d.sw.dialEncrypted(c.Addr, func(overMSE bool) (*Conn, error) {
		ctx, cancel := context.WithTimeout(d.ctx, dialTimeout)
		defer cancel()
		var nd net.Dialer
		nc, err := nd.DialContext(ctx, "tcp", c.Addr.String())
		if err != nil {
			return nil, err
		}
		hc := nc
		if overMSE {
			hc, err = EncryptOutgoing(d.ctx, d.sw, nc, hsTimeout)
		}
		var conn *Conn
		if err == nil {
			conn, err = Handshake(d.ctx, d.sw, hc, c.Addr, hsTimeout, true)
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
		return conn, nil
	})
}

// Handshake exchanges BitTorrent handshakes on nc (BEP 3) within timeout: it sends ours
// first when we dialed, and checks that the peer serves our info hash and is not ourselves.
func Handshake(ctx context.Context, env *Swarm, nc net.Conn, a netip.AddrPort, timeout time.Duration, dialed bool) (*Conn, error) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	nc.SetDeadline(time.Now().Add(timeout))
	ours := wire.Handshake{InfoHash: env.InfoHash, PeerID: env.PeerID}
	ours.Reserved[5] |= wire.ExtensionBit // BEP 10: we send and read the extended handshake
	ours.Reserved[7] |= wire.FastBit      // BEP 6: rejects, have all/none, allowed fast (fast.go)
	if env.DHT != nil {
		ours.Reserved[7] |= wire.DHTBit // BEP 5: we run a DHT node and send the port message
	}
	if dialed {
		if _, err := nc.Write(ours.Append(nil)); err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	theirs, err := wire.ReadHandshake(r)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if err := theirs.CheckInfoHash(env.InfoHash); err != nil {
		return nil, fmt.Errorf("handshake: %w: %w", errNoRetry, err)
	}
	if theirs.PeerID == env.PeerID {
		return nil, fmt.Errorf("handshake: %w: connected to ourselves", errNoRetry)
	}
	if env.Bans.Banned(a) {
		return nil, fmt.Errorf("handshake: %w: %w", errNoRetry, errBanned)
	}
	if !dialed {
		if _, err := nc.Write(ours.Append(nil)); err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return &Conn{Conn: nc, Addr: a, PeerID: theirs.PeerID, Reserved: theirs.Reserved, Incoming: !dialed, R: r}, nil
}
