package stages

import (
	"net/netip"
	"time"
)

// Event is something that happened in a torrent's run, typed, for whoever embeds the
// pipeline and for tests, which assert on events rather than on log wording. Events are
// delivered by Swarm.Emit to the function given to the pipeline (pipeline.WithEvents),
// from the goroutine of the stage that saw them, or by the pipeline itself for what a run
// as a whole knows (Resumed, Completed): that function must not block. A new event is a
// type here, documented, with a case in the CLI's --json (cmd/bitstorm/json.go).
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

// TrackerReply: a tracker answered an announce (not the farewell ones at the run's end),
// and its peers have gone to the dialer.
type TrackerReply struct {
	URL      string
	Tier     int           // its tier (BEP 12), from 0
	Peers    int           // addresses in the reply
	Seeders  int           // "complete", as the tracker counts them (0 when it says nothing)
	Leechers int           // "incomplete"
	Interval time.Duration // until its next regular announce
}

// TrackerFailed: an announce to one tracker failed (no answer within Tracker.Timeout, an
// HTTP error, a failure reason, a malformed reply); the next tracker of the tiers is tried
// (BEP 12), or the round is retried later. An announce cut short by the run's end is not
// one. Tier is the index of the tracker's tier among the torrent's usable tiers, 0 first.
type TrackerFailed struct {
	URL  string
	Tier int
	Err  error
}

// PeerListFull: addresses a source gave (a tracker's reply, PEX, the DHT) were not kept
// because the swarm's PeerList was full of better peers (PeerListConfig.MaxEntries, as
// DialConfig.MaxQueue); they are never dialed. One event per batch the dialer takes in,
// Discarded > 0.
type PeerListFull struct{ Discarded int }

// Resumed: the run starts with Pieces already verified on disk, known from the resume
// record (FromRecord) or from a recheck of the data (a missing, unusable or outdated
// record; Config.Recheck), before the download of pieces starts. After a recheck Pieces
// may be 0: the files held data, none of it verified. A run that finds no data has no
// Resumed event.
type Resumed struct {
	Pieces     int
	FromRecord bool
}

// MetadataReceived: a magnet link's info dictionary arrived and hashed right (BEP 9).
type MetadataReceived struct {
	Peer netip.AddrPort
	Size int
}

// Completed: every piece is verified.
type Completed struct{}

// SeedingDone: a complete torrent stopped seeding, having reached one of its seed limits
// (Limit); its run then ends as a completed one does. Uploaded is the run's upload then
// (Stats.Uploaded).
type SeedingDone struct {
	Limit    SeedLimit
	Uploaded int64
}

// SeedLimit is the limit that ended a seeding.
type SeedLimit int

// The seed limits.
const (
	SeedRatio SeedLimit = iota + 1 // uploaded reached the seed ratio's bytes
	SeedIdle                       // nothing was uploaded for the idle limit
	SeedTime                       // the seed time since completion passed
)

func (l SeedLimit) String() string {
	switch l {
	case SeedRatio:
		return "ratio"
	case SeedIdle:
		return "idle"
	case SeedTime:
		return "time"
	}
	return "unknown"
}

// Failed: the run ends with Err, the error its Run returns (the disk full, every tracker
// unreachable, no peer found, a bad selection...). A run that completes, or that its
// context stops (Pause, Ctrl-C), has no Failed event.
type Failed struct{ Err error }

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
func (Failed) event()           {}
func (PeerDropped) event()      {}
func (PeerSnubbed) event()      {}
func (DialFailed) event()       {}
func (HandshakeFailed) event()  {}
func (PeerBanned) event()       {}
func (PieceVerified) event()    {}
func (PieceFailed) event()      {}
func (TrackerReply) event()     {}
func (TrackerFailed) event()    {}
func (PeerListFull) event()     {}
func (Resumed) event()          {}
func (MetadataReceived) event() {}
func (Completed) event()        {}
func (SeedingDone) event()      {}
func (WebSeedFailed) event()    {}
func (WebSeedDropped) event()   {}

// Emit delivers e to the swarm's event function, if any.
func (sw *Swarm) Emit(e Event) {
	if sw != nil && sw.Events != nil {
		sw.Events(e)
	}
}
