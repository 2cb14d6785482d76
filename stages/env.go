package stages

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// Swarm is what the stages share for one torrent's swarm: all that is known from the info
// hash alone. It exists before the metadata does (a magnet link) and outlives the piece
// graph, so that peer sources, dialing, bans and the metadata exchange need no Info.
type Swarm struct {
	InfoHash [20]byte
	PeerID   [20]byte
	Port     uint16 // the port we accept peers on, as announced
	Log      *slog.Logger
	// Fail ends the run with err; the first error wins and Run returns it.
	Fail func(err error)
	Bans *Bans
	// DHT is our DHT node for the BEP 5 port message, or nil: peers that set the DHT bit
	// are told its UDP port, and the nodes they name are added to it.
	DHT DHTContact
	// Events receives the run's events (events.go); nil drops them. It must not block.
	Events func(Event)
	// Peers is the swarm's one list of peers: every source feeds it, Dial dials from it,
	// and Dial and Listen register their connections in it.
	Peers *PeerList
	// Encryption is the MSE policy of Dial and Listen (encrypt.go); the zero value is off.
	Encryption Encryption

	dialKinds dialKinds     // what handshake worked with each peer (EncryptPrefer)
	announce  chan struct{} // Reannounce's wake-up of the Tracker source

	sched    atomic.Pointer[Scheduler]
	complete chan struct{}
	once     sync.Once
}

// NewSwarm returns the swarm of infoHash. fail may be nil (errors are then dropped).
func NewSwarm(infoHash, peerID [20]byte, port uint16, log *slog.Logger, fail func(error)) *Swarm {
	if fail == nil {
		fail = func(error) {}
	}
	bans := NewBans()
	return &Swarm{InfoHash: infoHash, PeerID: peerID, Port: port, Log: log, Fail: fail,
		Bans: bans, Peers: NewPeerList(PeerListConfig{}, bans, peerID, log), complete: make(chan struct{}),
		announce: make(chan struct{}, 1)}
}

// Reannounce asks the swarm's trackers for peers now rather than at their interval
// (Transmission's torrent-reannounce). It never blocks; asks made while one waits are one.
func (sw *Swarm) Reannounce() {
	select {
	case sw.announce <- struct{}{}:
	default:
	}
}

// reannounced is where the Tracker source hears Reannounce.
func (sw *Swarm) reannounced() <-chan struct{} { return sw.announce }

// Attach gives the swarm the Scheduler of its piece graph, once the metadata is known:
// from then on Stats, Complete and IsComplete report its progress.
func (sw *Swarm) Attach(s *Scheduler) {
	sw.sched.Store(s)
	s.OnPieceDone(func(int) {
		if s.IsComplete() {
			sw.once.Do(func() { close(sw.complete) })
		}
	})
	if s.IsComplete() {
		sw.once.Do(func() { close(sw.complete) })
	}
}

// Stats reports the download's progress; before Attach, nothing is known and nothing done.
func (sw *Swarm) Stats() Stats {
	if s := sw.sched.Load(); s != nil {
		return s.Stats()
	}
	return Stats{Total: -1}
}

// Left is what trackers are told remains to download (BEP 3 "left"). Before the metadata
// the size is unknown; libtorrent reports 16 KiB then, which keeps a tracker from taking
// us for a seeder, and so do we.
func (sw *Swarm) Left() int64 {
	if s := sw.sched.Load(); s != nil {
		return s.Stats().Left()
	}
	return 16 << 10
}

// Complete is closed once every piece is verified.
func (sw *Swarm) Complete() <-chan struct{} { return sw.complete }

// IsComplete reports whether every piece is verified.
func (sw *Swarm) IsComplete() bool {
	// The Scheduler's own state, when there is one: the swarm's channel closes a moment
	// after it (in its piece-done callback), and a run ended by the completion may ask
	// in between (the tracker's farewell, deciding whether to send completed).
	if s := sw.sched.Load(); s != nil {
		return s.IsComplete()
	}
	select {
	case <-sw.complete:
		return true
	default:
		return false
	}
}

// Env is what a piece graph shares with its stages: the swarm, and the torrent's pieces
// once the metadata is known.
type Env struct {
	*Swarm
	Info  *metainfo.Info
	Sched *Scheduler
	// RawInfo is the bencoded info dictionary, served to peers that fetch the metadata
	// (BEP 9); nil serves none.
	RawInfo []byte
}

// Bans remembers the peers that sent corrupt data too often. A peer is banned by its IP
// address, as libtorrent does: one that comes back from another port is still refused. On
// loopback, where a whole test swarm shares one address, only its address and port are.
// (Not by peer id: a peer chooses its id, and could take an honest peer's to have it banned.)
// Safe for concurrent use.
type Bans struct {
	mu    sync.Mutex
	addrs map[netip.AddrPort]bool
	ips   map[netip.Addr]bool
}

// NewBans returns an empty ban list.
func NewBans() *Bans {
	return &Bans{addrs: make(map[netip.AddrPort]bool), ips: make(map[netip.Addr]bool)}
}

// Add bans the peer at a.
func (b *Bans) Add(a netip.AddrPort) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addrs[a] = true
	if ip := a.Addr(); !ip.IsLoopback() {
		b.ips[ip] = true
	}
}

// Banned reports whether a belongs to a banned peer.
func (b *Bans) Banned(a netip.AddrPort) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addrs[a] || b.ips[a.Addr()]
}

// DHTContact is what a peer session needs of the DHT node (BEP 5 port message).
type DHTContact interface {
	Addr() netip.AddrPort     // the node's UDP address; its port goes in our port message
	AddNode(a netip.AddrPort) // a peer's node, from its port message: pinged, kept if it answers
}
