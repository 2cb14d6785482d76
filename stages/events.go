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
