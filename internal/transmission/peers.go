package transmission

import (
	"encoding/json"
	"strconv"
)

// From is where a peer came from, as transmission's tr_peer_from tells it.
type From int8

// Where peers come from; FromOther is a source transmission has no name for (a peer
// given on the command line or in a magnet link), counted nowhere.
const (
	FromOther From = iota
	FromIncoming
	FromTracker
	FromDHT
	FromPEX
)

// Peer is one connected peer of a torrent, as torrent-get's "peers" reports it
// (transmission's tr_peer_stat). "Client" is us: ClientIsChoked is true when the peer
// chokes us, PeerIsChoked when we choke the peer.
type Peer struct {
	Address            string // the peer's IP address
	Port               int
	ClientName         string
	ClientIsChoked     bool
	ClientIsInterested bool
	PeerIsChoked       bool
	PeerIsInterested   bool
	IsEncrypted        bool
	IsIncoming         bool
	From               From    // where we heard of it first, as transmission counts it (peersFrom, flags H and X)
	Progress           float64 // the share of the pieces the peer has, 0 to 1
	RateToClient       int64   // bytes/s of piece data from the peer
	RateToPeer         int64   // bytes/s of piece data to the peer
}

// IsDownloadingFrom reports whether the peer may send us pieces now: we are interested
// and it does not choke us (transmission's tr_peerMsgsIsActive, peer to client).
func (p Peer) IsDownloadingFrom() bool { return p.ClientIsInterested && !p.ClientIsChoked }

// IsUploadingTo reports whether we may send the peer pieces now: it is interested and we
// do not choke it.
func (p Peer) IsUploadingTo() bool { return p.PeerIsInterested && !p.PeerIsChoked }

// FlagStr is the peer's flags as transmission writes them (libtransmission/peer-mgr.c,
// shown by transmission-remote -pi): D downloading from it, d we want to but it chokes
// us, U uploading to it, u it wants to but we choke it, K it unchokes us and we are not
// interested, ? we unchoke it and it is not interested, E encrypted, X from PEX, H from
// the DHT, I incoming. (O, the optimistic unchoke, and T, uTP, are not told.)
func (p Peer) FlagStr() string {
	var b []byte
	switch {
	case p.IsDownloadingFrom():
		b = append(b, 'D')
	case p.ClientIsInterested:
		b = append(b, 'd')
	}
	switch {
	case p.IsUploadingTo():
		b = append(b, 'U')
	case p.PeerIsInterested:
		b = append(b, 'u')
	}
	if !p.ClientIsChoked && !p.ClientIsInterested {
		b = append(b, 'K')
	}
	if !p.PeerIsChoked && !p.PeerIsInterested {
		b = append(b, '?')
	}
	if p.IsEncrypted {
		b = append(b, 'E')
	}
	switch p.From {
	case FromPEX:
		b = append(b, 'X')
	case FromDHT:
		b = append(b, 'H')
	}
	if p.IsIncoming {
		b = append(b, 'I')
	}
	return string(b)
}

// peers is torrent-get's "peers": every field of tr_peer_stat that RPC version 16 lists.
func peers(t *Torrent) any {
	out := make([]map[string]any, len(t.Peers))
	for i, p := range t.Peers {
		out[i] = map[string]any{
			"address": p.Address, "port": p.Port, "clientName": p.ClientName,
			"clientIsChoked": p.ClientIsChoked, "clientIsInterested": p.ClientIsInterested,
			"peerIsChoked": p.PeerIsChoked, "peerIsInterested": p.PeerIsInterested,
			"isDownloadingFrom": p.IsDownloadingFrom(), "isUploadingTo": p.IsUploadingTo(),
			"isEncrypted": p.IsEncrypted, "isIncoming": p.IsIncoming, "isUTP": false,
			"flagStr": p.FlagStr(), "progress": p.Progress,
			"rateToClient": p.RateToClient, "rateToPeer": p.RateToPeer,
		}
	}
	return out
}

// peersFrom counts the connected peers by where they came from (Peer.From); a peer from
// a source transmission has no name for is not counted.
func peersFrom(t *Torrent) any {
	var n [FromPEX + 1]int
	for _, p := range t.Peers {
		n[p.From]++
	}
	if n[FromIncoming]+n[FromTracker]+n[FromDHT]+n[FromPEX] == 0 {
		return peersFromNone
	}
	return json.RawMessage(`{"fromCache":0,"fromDht":` + strconv.Itoa(n[FromDHT]) + `,"fromIncoming":` + strconv.Itoa(n[FromIncoming]) +
		`,"fromLpd":0,"fromLtep":0,"fromPex":` + strconv.Itoa(n[FromPEX]) + `,"fromTracker":` + strconv.Itoa(n[FromTracker]) + `}`)
}
