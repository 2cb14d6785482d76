package stages

import (
	"bytes"
	"cmp"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// PeerOrigin says how the peer list heard of an address; an entry keeps every origin.
// A new kind of source adds its own flag, and sets it in the PeerAddr it emits.
type PeerOrigin uint8

const (
	// FromSource is an address a PeerSource emitted without naming itself (the --peer
	// list, a magnet link's x.pe), which came in on Dial's input.
	FromSource PeerOrigin = 1 << iota
	// FromIncoming is a peer that connected to us.
	FromIncoming
	// FromTracker is an address a tracker gave (Tracker).
	FromTracker
	// FromDHT is an address the DHT gave (DHT, BEP 5).
	FromDHT
	// FromPEX is an address a peer told us of (PEX, BEP 11).
	FromPEX
)

// PeerListConfig holds the peer list's tunables; the zero value of each means its default.
type PeerListConfig struct {
	MaxEntries     int           // addresses kept (default 4096); beyond, the worst unconnected one goes
	FailBackoff    time.Duration // wait after a failed connect or handshake, doubled per failure in a row (default 5s)
	ReconnectDelay time.Duration // wait after a peer that worked disconnects, doubled while it keeps dropping (default 3s)
	MaxBackoff     time.Duration // cap of both waits (default 5m)
	MaxFails       int           // failures in a row that forget a peer that never worked; twice as many one that did (default 3)
	StableAfter    time.Duration // a connection that lasted this long resets the reconnect wait (default 1m)
	// Now is the list's clock (default time.Now): tests step it to check the waits.
	Now func() time.Time
}

func (c *PeerListConfig) defaults() {
	c.MaxEntries = cmp0(c.MaxEntries, 4096)
	c.FailBackoff = cmp0(c.FailBackoff, 5*time.Second)
	c.ReconnectDelay = cmp0(c.ReconnectDelay, 3*time.Second)
	c.MaxBackoff = cmp0(c.MaxBackoff, 5*time.Minute)
	c.MaxFails = cmp0(c.MaxFails, 3)
	c.StableAfter = cmp0(c.StableAfter, time.Minute)
	if c.Now == nil {
		c.Now = time.Now
	}
}

var (
	errFull      = errors.New("no free connection slot")
	errDuplicate = errors.New("already connected to this peer")
)

// PeerList is the swarm's one list of peers, modelled on libtorrent's peer_list.cpp: every
// source feeds it, it deduplicates addresses, and it remembers of each peer where it was
// heard of, how often connecting to it failed, whether it ever completed a handshake
// ("worked"), whether it is connected, and when it may be tried next. Dial takes its
// candidates from it, best first: peers that worked, then those that failed least, then
// the oldest known. A failed connect or handshake backs off exponentially, and a peer that
// never worked is forgotten after MaxFails of them, so dead peers cost little; a peer that
// worked and disconnects is tried again after ReconnectDelay. Banned addresses are never
// offered. The list also holds the one connection limit of Dial and Listen together, and
// keeps a peer from being connected twice (see Connected). Safe for concurrent use.
type PeerList struct {
	bans *Bans
	self [20]byte // our peer id: the tie-break between two connections to one peer
	log  *slog.Logger
	wake chan struct{}

	mu       sync.Mutex
	cfg      PeerListConfig
	entries  map[netip.AddrPort]*peerEntry
	live     map[*Conn]*peerEntry // every connection registered, incoming and outgoing
	maxConns int                  // 0: no limit yet
	budget   *ConnBudget          // shared with other lists (UseBudget); nil: none
	seq      uint64
	noVictim bool // a scan found no entry to evict since the last failure
	dropped  int  // addresses Add dropped for want of room (Discarded)
}

type entryState uint8

const (
	idle entryState = iota
	dialing
	connected
)

type peerEntry struct {
	addr        netip.AddrPort // the peer's listening address, or where it connected from while not connectable
	from        PeerOrigin
	state       entryState
	connectable bool // its listening address is known: an incoming peer's is not, until BEP 10 tells it
	dead        bool // not our torrent, or ourselves: never offered again
	worked      bool // completed a handshake once
	faulted     bool // the connection was dropped for a fault: its close counts as a failure
	fails       int  // failed connects and handshakes in a row
	drops       int  // disconnects in a row of connections shorter than StableAfter
	next        time.Time
	since       time.Time // connected since
	seq         uint64    // order added
	conn        *Conn
	outgoing    bool
}

// NewPeerList returns an empty list. bans may be nil; self is our peer id.
func NewPeerList(cfg PeerListConfig, bans *Bans, self [20]byte, log *slog.Logger) *PeerList {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PeerList{bans: bans, self: self, log: log.With("stage", "peers"), wake: make(chan struct{}, 1),
		cfg: cfg, entries: make(map[netip.AddrPort]*peerEntry), live: make(map[*Conn]*peerEntry)}
}

// Configure replaces the list's tunables (Dial applies DialConfig.Peers).
func (pl *PeerList) Configure(cfg PeerListConfig) {
	cfg.defaults()
	pl.mu.Lock()
	pl.cfg = cfg
	pl.mu.Unlock()
}

// LimitConns bounds the connections of Dial and Listen together at n; when both set a
// limit, the lower holds.
func (pl *PeerList) LimitConns(n int) {
	if n <= 0 {
		return
	}
	pl.mu.Lock()
	if pl.maxConns == 0 || n < pl.maxConns {
		pl.maxConns = n
	}
	pl.mu.Unlock()
}

// Wake is signalled when a connection closes or an address is added: a candidate, or a
// connection slot, may be free.
func (pl *PeerList) Wake() <-chan struct{} { return pl.wake }

func (pl *PeerList) signal() {
	select {
	case pl.wake <- struct{}{}:
	default:
	}
}

// Conns returns the number of connections registered, incoming and outgoing.
func (pl *PeerList) Conns() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.live)
}

// Full reports whether the connection limit is reached.
func (pl *PeerList) Full() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.maxConns > 0 && len(pl.live) >= pl.maxConns || pl.budget.spentFor(pl)
}

// Len returns the number of addresses known.
func (pl *PeerList) Len() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.entries)
}

// Add records the address of a peer heard of from. It reports false when a is dropped:
// not dialable, banned, or the list is full of better peers. An address known already only
// gains the origin; its failures and back-off stay.
func (pl *PeerList) Add(a netip.AddrPort, from PeerOrigin) bool {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || a.Port() == 0 || a.Addr().IsUnspecified() || pl.bans.Banned(a) {
		return false
	}
	pl.mu.Lock()
	if e := pl.entries[a]; e != nil {
		e.from |= from
		pl.mu.Unlock()
		return true
	}
	ok := pl.makeRoom()
	if ok {
		pl.insert(a, from, true)
	} else {
		pl.dropped++
	}
	pl.mu.Unlock()
	if !ok {
		// Worded as when the dialer had a queue: what the list drops was never dialled.
		pl.log.Debug("dial queue full, dropping address", "peer", a)
		return false
	}
	pl.signal()
	return true
}

// Discarded returns how many addresses Add has dropped because the list was full of
// better peers.
func (pl *PeerList) Discarded() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.dropped
}

func (pl *PeerList) insert(a netip.AddrPort, from PeerOrigin, connectable bool) *peerEntry {
	pl.seq++
	e := &peerEntry{addr: a, from: from, connectable: connectable, seq: pl.seq}
	pl.entries[a] = e
	return e
}

// makeRoom evicts the worst entry when the list is full, if one is worse than a new
// address: dead, or failed and never worked. Called with pl.mu held.
func (pl *PeerList) makeRoom() bool {
	if len(pl.entries) < pl.cfg.MaxEntries {
		return true
	}
	if pl.noVictim {
		return false
	}
	var victim *peerEntry
	for _, e := range pl.entries {
		if e.state != idle || !e.connectable || !e.dead && (e.worked || e.fails == 0) {
			continue
		}
		if victim == nil || worse(e, victim) {
			victim = e
		}
	}
	if victim == nil {
		pl.noVictim = true
		return false
	}
	delete(pl.entries, victim.addr)
	return true
}

// worse orders eviction victims: dead first, then most failures, then the newest.
func worse(a, b *peerEntry) bool {
	if a.dead != b.dead {
		return a.dead
	}
	if a.fails != b.fails {
		return a.fails > b.fails
	}
	return a.seq > b.seq
}

// Candidate is an address Take hands out to dial.
type Candidate struct {
	Addr   netip.AddrPort
	Worked bool // it completed a handshake before: it gets the longer timeouts
}

// Take returns up to n peers to dial now, best first, and marks them as being dialled;
// each must be answered with Connected or Failed. wait is how long until the next peer's
// back-off ends, or -1 when no peer waits.
func (pl *PeerList) Take(n int) (cands []Candidate, wait time.Duration) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	now := pl.cfg.Now()
	wait = -1
	var ready []*peerEntry
	for a, e := range pl.entries {
		if e.state != idle || e.dead || !e.connectable {
			continue
		}
		if pl.bans.Banned(a) {
			delete(pl.entries, a)
			continue
		}
		if d := e.next.Sub(now); d > 0 {
			if wait < 0 || d < wait {
				wait = d
			}
			continue
		}
		ready = append(ready, e)
	}
	slices.SortFunc(ready, func(a, b *peerEntry) int {
		if a.worked != b.worked {
			if a.worked {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.fails, b.fails), cmp.Compare(a.seq, b.seq))
	})
	for _, e := range ready[:min(n, len(ready))] {
		e.state = dialing
		cands = append(cands, Candidate{Addr: e.addr, Worked: e.worked})
	}
	return cands, wait
}

// Failed records that dialling a, taken from Take, failed before a connection was
// registered. A retry false (not our torrent, ourselves) means never again.
func (pl *PeerList) Failed(a netip.AddrPort, retry bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	e := pl.entries[a]
	if e == nil || e.state != dialing {
		return
	}
	e.state = idle
	pl.noVictim = false
	if !retry {
		e.dead = true
		return
	}
	pl.fail(e)
}

// fail counts a failure of e, idle, and backs it off or forgets it. Called with pl.mu held.
func (pl *PeerList) fail(e *peerEntry) {
	e.fails++
	limit := pl.cfg.MaxFails
	if e.worked {
		limit *= 2
	}
	if e.fails >= limit {
		delete(pl.entries, e.addr)
		return
	}
	e.next = pl.cfg.Now().Add(pl.backoff(pl.cfg.FailBackoff, e.fails))
}

// backoff is d doubled n-1 times, at most MaxBackoff.
func (pl *PeerList) backoff(d time.Duration, n int) time.Duration {
	for ; n > 1 && d < pl.cfg.MaxBackoff; n-- {
		d *= 2
	}
	return min(d, pl.cfg.MaxBackoff)
}

// Connected registers c, whose handshake is done: outgoing when Dial took its address from
// the list, else a peer that connected to us (its entry is keyed by where it came from and
// never dialled, until ListenPort tells its listening address). On success c's Close later
// reports the disconnect. It returns errFull when the connection limit is reached
// (ErrSessionFull when the list's is not, but its shared budget's is: see UseBudget), and
// errDuplicate when c is a second connection to a peer: then the caller closes c.
//
// Two connections are one peer's when they reach the same listening address, or, off
// loopback, come from one IP address with one peer id. (Not by peer id alone: a peer
// chooses its id, and the test fakes on loopback share one.) Of two connections in the
// same direction the first stays; of one each way, both sides keep the connection opened
// by the side with the lower peer id, as libtorrent does, so that they close the same one.
func (pl *PeerList) Connected(c *Conn, outgoing bool) error {
	pl.mu.Lock()
	now := pl.cfg.Now()
	e := pl.entries[c.Addr]
	switch {
	case e == nil && outgoing:
		e = pl.insert(c.Addr, FromSource, true)
	case e == nil:
		e = pl.insert(c.Addr, FromIncoming, false)
	case !outgoing:
		e.from |= FromIncoming
	}
	old, f := e.conn, e
	if old == nil {
		old, f = pl.sameID(c)
	}
	var drop *Conn
	if old != nil {
		if keep := pl.prefer(old, f.outgoing, c, outgoing); keep == old {
			if e.state == dialing {
				e.state, e.worked = idle, true
				e.next = now.Add(pl.cfg.ReconnectDelay)
			}
			pl.merge(e, f)
			pl.mu.Unlock()
			return errDuplicate
		}
		delete(pl.live, old)
		f.conn, drop = nil, old
		if f.state == connected {
			f.state = idle
		}
		e = pl.merge(e, f)
	} else if full := pl.slot(); full != nil {
		if !e.connectable {
			delete(pl.entries, e.addr)
		} else if e.state == dialing {
			// It worked: it is worth a try once a slot frees, without a failure counted.
			e.state, e.worked = idle, true
			e.next = now.Add(pl.cfg.ReconnectDelay)
		}
		pl.mu.Unlock()
		return full
	}
	e.state, e.conn, e.outgoing, e.since = connected, c, outgoing, now
	e.worked, e.dead, e.fails, e.faulted = true, false, 0, false
	pl.live[c] = e
	c.release = func() { pl.closed(c) }
	pl.mu.Unlock()
	if drop != nil {
		pl.log.Debug("closing duplicate connection", "peer", drop.Addr, "kept", c.Addr)
		drop.Close()
	}
	return nil
}

// sameID finds, off loopback, a connection from c's IP address with c's peer id.
// Called with pl.mu held.
func (pl *PeerList) sameID(c *Conn) (*Conn, *peerEntry) {
	if c.Addr.Addr().IsLoopback() {
		return nil, nil
	}
	for x, f := range pl.live {
		if x.PeerID == c.PeerID && x.Addr.Addr() == c.Addr.Addr() {
			return x, f
		}
	}
	return nil, nil
}

// prefer returns which of two connections to one peer stays.
func (pl *PeerList) prefer(old *Conn, oldOut bool, c *Conn, out bool) *Conn {
	if oldOut == out {
		return old
	}
	ours := bytes.Compare(pl.self[:], c.PeerID[:]) < 0 // the side with the lower id keeps its outgoing
	if ours == out {
		return c
	}
	return old
}

// merge makes e and f, entries of one peer, into one: the connectable one, which it
// returns. The other is forgotten unless it is dialable. Called with pl.mu held.
func (pl *PeerList) merge(e, f *peerEntry) *peerEntry {
	if e == f {
		return e
	}
	keep, other := f, e
	if e.connectable && !f.connectable {
		keep, other = e, f
	}
	keep.from |= other.from
	if other.conn != nil && keep.conn == nil {
		keep.conn, keep.outgoing, keep.since, keep.state = other.conn, other.outgoing, other.since, connected
		keep.worked, keep.dead = true, false
		pl.live[other.conn] = keep
	}
	if !other.connectable {
		delete(pl.entries, other.addr)
	} else if other.state == connected {
		other.state, other.conn = idle, nil
	}
	return keep
}

// ListenPort records the listening port a connected peer gave in its BEP 10 extended
// handshake ("p"). An incoming peer's entry then takes its listening address, and is
// dialled again after a disconnect; when that address is connected already, one of the
// two connections must go: ListenPort closes the other one, or reports true for the
// caller to close c.
func (pl *PeerList) ListenPort(c *Conn, port uint16) (duplicate bool) {
	if port == 0 {
		return false
	}
	pl.mu.Lock()
	e := pl.live[c]
	if e == nil || e.connectable {
		pl.mu.Unlock()
		return false
	}
	a := netip.AddrPortFrom(c.Addr.Addr(), port)
	f := pl.entries[a]
	if f == nil {
		delete(pl.entries, e.addr)
		e.addr, e.connectable = a, true
		pl.entries[a] = e
		pl.mu.Unlock()
		return false
	}
	var drop *Conn
	if old := f.conn; old != nil {
		if pl.prefer(old, f.outgoing, c, false) == old {
			delete(pl.live, c)
			pl.budget.give(1)
			delete(pl.entries, e.addr)
			pl.mu.Unlock()
			return true
		}
		delete(pl.live, old)
		pl.budget.give(1)
		f.conn, drop = nil, old
	}
	f.state = idle // a dial in flight finds the connection when it completes
	pl.merge(e, f)
	pl.mu.Unlock()
	if drop != nil {
		drop.Close()
	}
	return false
}

// Fault marks c as dropped for a fault of the peer's (a protocol violation): when it
// closes, the peer backs off as after a failed connect rather than being tried again soon.
func (pl *PeerList) Fault(c *Conn) {
	pl.mu.Lock()
	if e := pl.live[c]; e != nil {
		e.faulted = true
	}
	pl.mu.Unlock()
}

// closed is c's release: the peer disconnected.
func (pl *PeerList) closed(c *Conn) {
	pl.mu.Lock()
	e, had := pl.live[c]
	delete(pl.live, c)
	if had {
		pl.budget.give(1)
	}
	if e != nil && e.conn == c {
		e.conn, e.state = nil, idle
		pl.noVictim = false
		now := pl.cfg.Now()
		switch {
		case !e.connectable:
			delete(pl.entries, e.addr)
		case e.faulted:
			e.faulted = false
			pl.fail(e)
		default:
			if now.Sub(e.since) >= pl.cfg.StableAfter {
				e.drops = 0
			}
			e.drops++
			e.next = now.Add(pl.backoff(pl.cfg.ReconnectDelay, e.drops))
		}
	}
	pl.mu.Unlock()
	pl.signal()
}

// PeerInfo is what the list knows of one address.
type PeerInfo struct {
	From      PeerOrigin
	Fails     int
	Worked    bool
	Connected bool
	Next      time.Time // when it may be tried again
}

// Peer returns what the list knows of a.
func (pl *PeerList) Peer(a netip.AddrPort) (PeerInfo, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	e := pl.entries[a]
	if e == nil {
		return PeerInfo{}, false
	}
	return PeerInfo{From: e.from, Fails: e.fails, Worked: e.worked, Connected: e.state == connected, Next: e.next}, true
}
