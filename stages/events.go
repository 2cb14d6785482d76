package stages

import "net/netip"

// Event is something that happened in a torrent's run, typed, for whoever embeds the
// pipeline and for tests, which assert on events rather than on log wording. Events are
// delivered by Swarm.Emit to the function given to the pipeline (pipeline.WithEvents),
// from the goroutine of the stage that saw them: that function must not block.
type Event interface{ event() }

// PeerConnected: a peer's session started (its handshake is done).
type PeerConnected struct {
	Addr     netip.AddrPort
	Incoming bool
}

// PeerDropped: a peer's session ended. Fault is set when it was dropped for a fault of its
// own (a protocol violation, corrupt data, silence), as opposed to a disconnect.
type PeerDropped struct {
	Addr   netip.AddrPort
	Reason error
	Fault  bool
}

// PeerSnubbed: a peer held requests for RequestConfig.SnubTimeout without sending a
// block; its requests go to others, and it keeps a window of one until it delivers again.
type PeerSnubbed struct{ Addr netip.AddrPort }

// DialFailed: a peer we dialed was not connected: the TCP connect, the encryption or the
// BitTorrent handshake failed (another info hash, a timeout, ourselves, a banned peer), or
// no connection slot was left for it. It comes before any session, so no PeerConnected or
// PeerDropped names that attempt.
type DialFailed struct {
	Addr netip.AddrPort
	Err  error
}

// HandshakeFailed: a peer that connected to our listener (Listen) did not complete its
// handshake (another info hash, a timeout, refused encryption); Addr is its ephemeral
// address. A Session's listener closes a connection that names none of its torrents
// before any torrent sees it: no torrent reports that one.
type HandshakeFailed struct {
	Addr netip.AddrPort
	Err  error
}

// PeerBanned: a peer is banned (corrupt data, wrong metadata); it is never dialed again.
type PeerBanned struct {
	Addr   netip.AddrPort
	Reason string
}

// PieceVerified: a piece passed its hash and is written.
type PieceVerified struct{ Piece int }

// PieceFailed: a piece failed its hash and is fetched again.
type PieceFailed struct{ Piece int }

// TrackerReply: a tracker answered an announce.
type TrackerReply struct {
	Peers int // addresses in the reply
}

// MetadataReceived: a magnet link's info dictionary arrived and hashed right (BEP 9).
type MetadataReceived struct {
	Peer netip.AddrPort
	Size int
}

// Completed: every piece is verified.
type Completed struct{}

// WebSeedFailed: a request to a web seed failed; the web seed backs off, or is dropped
// after WebSeedConfig.MaxFailures in a row.
type WebSeedFailed struct {
	URL string
	Err error
}

// WebSeedDropped: a web seed is given up for Reason (failures, or banned for corrupt
// pieces); the download goes on without it.
type WebSeedDropped struct {
	URL    string
	Addr   netip.AddrPort
	Reason error
}

func (PeerConnected) event()    {}
func (PeerDropped) event()      {}
func (PeerSnubbed) event()      {}
func (DialFailed) event()       {}
func (HandshakeFailed) event()  {}
func (PeerBanned) event()       {}
func (PieceVerified) event()    {}
func (PieceFailed) event()      {}
func (TrackerReply) event()     {}
func (MetadataReceived) event() {}
func (Completed) event()        {}
func (WebSeedFailed) event()    {}
func (WebSeedDropped) event()   {}

// Emit delivers e to the swarm's event function, if any.
func (sw *Swarm) Emit(e Event) {
	if sw != nil && sw.Events != nil {
		sw.Events(e)
	}
}
