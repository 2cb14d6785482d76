package main

import (
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

// The peers of each torrent, for torrent-get's "peers" and its counts: taken once a
// second by the sampler (daemon_stats.go), so that a torrent-get of many torrents costs
// no session lock, and the peers' rates are measured over the same few seconds whoever
// asks (stages.PeerSnapshot).

// samplePeers takes the peers of e's run.
func (e *entry) samplePeers(t *pipeline.Torrent) {
	ps := rpcPeers(t.Peers())
	e.mu.Lock()
	e.peers = ps
	e.mu.Unlock()
}

// rpcPeers is ps as torrent-get reports them.
func rpcPeers(ps []stages.PeerSnapshot) []transmission.Peer {
	if len(ps) == 0 {
		return nil
	}
	out := make([]transmission.Peer, len(ps))
	for i, p := range ps {
		out[i] = transmission.Peer{
			Address: p.Addr.Addr().Unmap().String(), Port: int(p.Addr.Port()), ClientName: p.Client,
			ClientIsChoked: p.Choked, ClientIsInterested: p.Interested,
			PeerIsChoked: p.PeerChoked, PeerIsInterested: p.PeerInterested,
			IsEncrypted: p.Encrypted, IsIncoming: p.Incoming, From: rpcFrom(p), Progress: p.Progress,
			RateToClient: int64(p.DownRate), RateToPeer: int64(p.UpRate),
		}
	}
	return out
}

// rpcFrom is the one origin transmission gives a peer: incoming for a peer that connected
// to us, else the first source that named it, in the order tracker, DHT, PEX.
func rpcFrom(p stages.PeerSnapshot) transmission.From {
	switch {
	case p.Incoming:
		return transmission.FromIncoming
	case p.From&stages.FromTracker != 0:
		return transmission.FromTracker
	case p.From&stages.FromDHT != 0:
		return transmission.FromDHT
	case p.From&stages.FromPEX != 0:
		return transmission.FromPEX
	}
	return transmission.FromOther
}

// peerCounts are torrent-get's counts of ps: connected, sending to us, getting from us.
func peerCounts(ps []transmission.Peer) (connected, sending, getting int) {
	for _, p := range ps {
		if p.IsDownloadingFrom() {
			sending++
		}
		if p.IsUploadingTo() {
			getting++
		}
	}
	return len(ps), sending, getting
}
