package dhtnode

import (
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

// Bounds of the peer store: what other nodes announce to us is theirs to choose, so it
// is capped, and forgotten after peerTTL (BEP 5 peers re-announce well within it).
const (
	maxTorrents      = 4096
	maxPeersPerHash  = 100
	maxPeersReturned = 50 // a get_peers reply must fit a UDP datagram: 50 * 6 bytes
	peerTTL          = 30 * time.Minute
)

// peerStore keeps the peers announced to this node (announce_peer), so that it answers
// get_peers as BEP 5 asks of every node. The library's in-memory store never forgets.
type peerStore struct {
	mu    sync.Mutex
	peers map[peer_store.InfoHash]map[netip.AddrPort]time.Time
	now   func() time.Time
}

var _ peer_store.Interface = (*peerStore)(nil)

func newPeerStore() *peerStore {
	return &peerStore{peers: make(map[peer_store.InfoHash]map[netip.AddrPort]time.Time), now: time.Now}
}

// AddPeer records that a peer announced itself for ih.
func (s *peerStore) AddPeer(ih peer_store.InfoHash, na krpc.NodeAddr) {
	ip, ok := netip.AddrFromSlice(na.IP)
	if !ok || na.Port <= 0 || na.Port > 65535 {
		return
	}
	a := netip.AddrPortFrom(ip.Unmap(), uint16(na.Port))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	m := s.peers[ih]
	if m == nil {
		if len(s.peers) >= maxTorrents {
			s.expire(now)
			if len(s.peers) >= maxTorrents {
				return
			}
		}
		m = make(map[netip.AddrPort]time.Time)
		s.peers[ih] = m
	}
	if _, ok := m[a]; !ok && len(m) >= maxPeersPerHash {
		expireIn(m, now)
		if len(m) >= maxPeersPerHash {
			return
		}
	}
	m[a] = now
}

// GetPeers returns up to maxPeersReturned peers announced for ih within peerTTL.
func (s *peerStore) GetPeers(ih peer_store.InfoHash) []krpc.NodeAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.peers[ih]
	if m == nil {
		return nil
	}
	if expireIn(m, s.now()); len(m) == 0 {
		delete(s.peers, ih)
		return nil
	}
	var out []krpc.NodeAddr
	for a := range m { // map order: a different sample each time
		if len(out) == maxPeersReturned {
			break
		}
		out = append(out, krpc.NodeAddr{IP: a.Addr().AsSlice(), Port: int(a.Port())})
	}
	return out
}

// expire drops every peer older than peerTTL, and the torrents left without one.
func (s *peerStore) expire(now time.Time) {
	for ih, m := range s.peers {
		if expireIn(m, now); len(m) == 0 {
			delete(s.peers, ih)
		}
	}
}

func expireIn(m map[netip.AddrPort]time.Time, now time.Time) {
	for a, t := range m {
		if now.Sub(t) > peerTTL {
			delete(m, a)
		}
	}
}
