package pipeline

import "github.com/bitstorm/bitstorm/stages"

// The global connection cap: SessionConfig.MaxConns bounds the peer connections of a
// Session's torrents together, as Transmission's peer-limit-global does, while each
// torrent keeps its own bound (Config.MaxPeers). Every run's peer list draws from the
// session's stages.ConnBudget: while it is spent, no dial starts and an incoming peer is
// closed once its handshake is done; a connection's slot comes back when it closes.

// defaultMaxConns is SessionConfig.MaxConns's default: Transmission's peer-limit-global.
const defaultMaxConns = 200

// withConnBudget has the run's connections hold slots of a Session's budget.
func withConnBudget(b *stages.ConnBudget) Option { return func(p *Pipeline) { p.connBudget = b } }

// leaveBudget ends the use of the session's budget by a run that has ended. Every
// connection was closed by then, its slot given back; one still registered is a leak,
// whose slot is reclaimed here rather than lost to the other torrents.
func (p *Pipeline) leaveBudget(sw *stages.Swarm) {
	if n := sw.Peers.LeaveBudget(); n > 0 {
		p.log.Warn("connections still registered after the run ended: their slots are given back", "conns", n)
	}
}

// SetMaxConns changes the cap on the connections of the session's torrents together (0:
// no cap). Lowered below the connections open, it closes none: new ones wait until
// enough have ended.
func (s *Session) SetMaxConns(n int) { s.conns.SetMax(n) }

// MaxConns is the cap on the connections of the session's torrents together, 0 for none.
func (s *Session) MaxConns() int { return s.conns.Max() }

// Conns is the number of peer connections the session's torrents hold now.
func (s *Session) Conns() int { return s.conns.InUse() }

// PeakConns is the most peer connections the session's torrents held at once.
func (s *Session) PeakConns() int { return s.conns.Peak() }
