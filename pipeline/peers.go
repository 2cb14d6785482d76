package pipeline

import "github.com/bitstorm/bitstorm/stages"

// Peers returns the peers connected to the run now, by address: what each session is
// doing and its rates over the last few seconds (stages.PeerSnapshot). Nil when the run
// has no piece graph: before Run, during a magnet link's metadata phase, after Run.
// Safe to call while Run runs; it costs nothing between calls.
func (p *Pipeline) Peers() []stages.PeerSnapshot { return p.peers.Snapshot() }

// Peers returns the peers of the torrent's run (Pipeline.Peers); nil when it does not run.
func (t *Torrent) Peers() []stages.PeerSnapshot {
	t.mu.Lock()
	p := t.p
	t.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Peers()
}

// Reannounce asks the run's trackers for peers now rather than at their interval
// (Transmission's torrent-reannounce); false when it does not run.
func (p *Pipeline) Reannounce() bool {
	sw := p.swarm.Load()
	if sw == nil {
		return false
	}
	sw.Reannounce()
	return true
}

// Reannounce asks the torrent's trackers for peers now (Pipeline.Reannounce); false when
// it does not run.
func (t *Torrent) Reannounce() bool {
	t.mu.Lock()
	p := t.p
	t.mu.Unlock()
	return p != nil && p.Reannounce()
}
