package stages

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitstorm/bitstorm/internal/peerid"
)

// PeerSnapshot is one connected peer as its session sees it at a moment: for people
// (the daemon's RPC and web page), not for decisions.
type PeerSnapshot struct {
	Addr      netip.AddrPort
	PeerID    [20]byte
	Client    string     // the name it gave in its BEP 10 handshake ("v"), else what its peer id tells (BEP 20); "" when neither does
	Incoming  bool       // it connected to us
	From      PeerOrigin // how the peer list heard of it: every origin it has (FromTracker|FromPEX...); FromIncoming alone for a peer only known by connecting
	Encrypted bool       // the stream is RC4 (MSE); an MSE handshake that settled on plaintext is not

	Interested     bool // we are interested in the peer
	Choked         bool // the peer chokes us
	PeerInterested bool // the peer is interested in us
	PeerChoked     bool // we choke the peer (as it was last told)
	Snubbed        bool // requests outstanding and no block for a while (RequestConfig.SnubTimeout)

	Have     int     // pieces the peer has
	Progress float64 // Have over the torrent's pieces, 0 to 1

	DownRate, UpRate     float64 // block bytes/s from and to the peer, over the last few seconds (rateWindow)
	Downloaded, Uploaded int64   // block bytes from and to the peer over the connection
	Since                time.Time
}

// PeerView shows the peer sessions of a Request stage (RequestConfig.View) while it runs;
// its zero value is ready and shows none. Safe for concurrent use.
type PeerView struct {
	reg atomic.Pointer[registry]
}

// Snapshot returns the connected peers, by address. It costs a lock of each session and
// nothing between calls: rates come from the byte counters the sessions keep anyway and
// the marks earlier calls left (peerMeter).
func (v *PeerView) Snapshot() []PeerSnapshot {
	reg := v.reg.Load()
	if reg == nil {
		return nil
	}
	now := time.Now()
	ss := reg.snapshot()
	out := make([]PeerSnapshot, len(ss))
	for i, s := range ss {
		out[i] = s.snapshot(now)
	}
	slices.SortFunc(out, func(a, b PeerSnapshot) int {
		return cmp.Or(a.Addr.Addr().Compare(b.Addr.Addr()), cmp.Compare(a.Addr.Port(), b.Addr.Port()))
	})
	return out
}

// show makes v show reg until the func it returns is called.
func (v *PeerView) show(reg *registry) func() {
	if v == nil {
		return func() {}
	}
	v.reg.Store(reg)
	return func() { v.reg.CompareAndSwap(reg, nil) }
}

func (s *session) snapshot(now time.Time) PeerSnapshot {
	recv, sent := s.recvBytes.Load(), s.sentBytes.Load()
	ps := PeerSnapshot{Addr: s.c.Addr, PeerID: s.c.PeerID, Incoming: s.c.Incoming, Encrypted: cryptoOf(s.c) == "rc4",
		Downloaded: recv, Uploaded: sent, Since: s.meter.since}
	s.mu.Lock()
	ps.Client = s.meter.client
	ps.Interested, ps.Choked = s.interested, s.choked
	ps.PeerInterested, ps.PeerChoked = s.peerInterested, s.chokeSent
	ps.Snubbed = s.snubbed
	ps.Have = s.has.Count()
	s.mu.Unlock()
	if ps.Client == "" {
		ps.Client = peerid.Client(ps.PeerID)
	}
	if n := s.env.Info.NumPieces(); n > 0 {
		ps.Progress = float64(ps.Have) / float64(n)
	}
	ps.DownRate, ps.UpRate = s.meter.rates(now, recv, sent)
	if s.env.Peers != nil {
		if info, ok := s.env.Peers.Peer(s.c.Addr); ok {
			ps.From = info.From
		}
	}
	if ps.Incoming { // its entry may be under its listen port by now (BEP 10 "p")
		ps.From |= FromIncoming
	}
	return ps
}

// Rates of a snapshot: over the marks of the last rateWindow, one kept per rateStep.
const (
	rateWindow = 5 * time.Second
	rateStep   = 500 * time.Millisecond
	maxMarks   = int(rateWindow/rateStep) + 2
)

// peerMeter is what a session keeps for its snapshots: when it started, the name the peer
// gave, and the byte counters as earlier snapshots saw them. The rate of a snapshot is
// measured from the oldest mark within rateWindow, or from the newest mark when none is
// (snapshots taken seldom: the rate since the last one); so snapshots once a second give
// rates over five seconds, and nothing is done per block beyond the counters.
type peerMeter struct {
	since  time.Time
	client string // BEP 10 "v", cleaned (peerid.Clean); guarded by the session's mu

	mu    sync.Mutex
	marks []rateMark // oldest first; the first is the connection's start
}

func newPeerMeter(now time.Time) peerMeter {
	return peerMeter{since: now, marks: []rateMark{{at: now}}}
}

// rates returns the rates from and to the peer at now, whose counters stand at recv
// and sent, and marks them.
func (m *peerMeter) rates(now time.Time, recv, sent int64) (down, up float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	base := m.marks[len(m.marks)-1]
	for _, k := range m.marks {
		if now.Sub(k.at) <= rateWindow {
			base = k
			break
		}
	}
	if dt := now.Sub(base.at).Seconds(); dt > 0 {
		down, up = float64(recv-base.recv)/dt, float64(sent-base.sent)/dt
	}
	if now.Sub(m.marks[len(m.marks)-1].at) >= rateStep {
		m.marks = append(m.marks, rateMark{recv: recv, sent: sent, at: now})
		drop := 0
		for len(m.marks)-drop > maxMarks || (len(m.marks)-drop > 1 && now.Sub(m.marks[drop+1].at) > rateWindow) {
			drop++
		}
		m.marks = append(m.marks[:0], m.marks[drop:]...)
	}
	return down, up
}
