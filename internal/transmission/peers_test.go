package transmission

import "testing"

// TestPeerFlagStr: the flags are transmission's (peer-mgr.c), in its order.
func TestPeerFlagStr(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Peer
		want string
	}{
		{"a new connection: both choked, neither interested", Peer{ClientIsChoked: true, PeerIsChoked: true}, ""},
		{"downloading from a seeder", Peer{ClientIsInterested: true, PeerIsChoked: true}, "D"},
		{"it chokes us, we want its pieces", Peer{ClientIsChoked: true, ClientIsInterested: true, PeerIsChoked: true}, "d"},
		{"uploading to it, incoming", Peer{ClientIsChoked: true, PeerIsInterested: true, IsIncoming: true}, "UI"},
		{"we choke it, it wants ours", Peer{ClientIsChoked: true, PeerIsChoked: true, PeerIsInterested: true}, "u"},
		{"it unchokes us, we want nothing", Peer{PeerIsChoked: true}, "K"},
		{"we unchoke it, it wants nothing, encrypted", Peer{ClientIsChoked: true, IsEncrypted: true}, "?E"},
		{"both ways", Peer{ClientIsInterested: true, PeerIsInterested: true, IsEncrypted: true, IsIncoming: true, From: FromIncoming}, "DUEI"},
		{"from PEX, encrypted", Peer{ClientIsInterested: true, PeerIsChoked: true, IsEncrypted: true, From: FromPEX}, "DEX"},
		{"from the DHT", Peer{ClientIsInterested: true, PeerIsChoked: true, From: FromDHT}, "DH"},
	} {
		if got := tc.p.FlagStr(); got != tc.want {
			t.Errorf("%s: FlagStr() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestTorrentGetPeers: torrent-get's "peers" has every field of tr_peer_stat that
// transmission-remote -pi and the web clients read, and the counts and peersFrom go
// with them.
func TestTorrentGetPeers(t *testing.T) {
	f := newFake()
	f.torrents[0].Peers = []Peer{
		{Address: "10.0.0.7", Port: 51413, ClientName: "libtorrent (Rasterbar) 2.0.8", ClientIsInterested: true,
			PeerIsChoked: true, Progress: 1, RateToClient: 1048576, From: FromDHT},
		{Address: "2001:db8::1", Port: 6881, ClientName: "µTorrent 3.5.5", ClientIsChoked: true, PeerIsInterested: true,
			IsEncrypted: true, IsIncoming: true, From: FromIncoming, Progress: 0.25, RateToPeer: 2000},
	}
	f.torrents[0].PeersConnected, f.torrents[0].PeersSendingToUs, f.torrents[0].PeersGettingFromUs = 2, 1, 1
	s := NewServer(Config{Backend: f})
	got := string(s.Call([]byte(`{"method":"torrent-get","arguments":{"ids":[1],"fields":["id","peers","peersConnected","peersSendingToUs","peersGettingFromUs","peersFrom"]}}`)))
	want := `{"arguments":{"torrents":[{"id":1,"peers":[
		{"address":"10.0.0.7","clientIsChoked":false,"clientIsInterested":true,"clientName":"libtorrent (Rasterbar) 2.0.8",
		 "flagStr":"DH","isDownloadingFrom":true,"isEncrypted":false,"isIncoming":false,"isUTP":false,"isUploadingTo":false,
		 "peerIsChoked":true,"peerIsInterested":false,"port":51413,"progress":1,"rateToClient":1048576,"rateToPeer":0},
		{"address":"2001:db8::1","clientIsChoked":true,"clientIsInterested":false,"clientName":"µTorrent 3.5.5",
		 "flagStr":"UEI","isDownloadingFrom":false,"isEncrypted":true,"isIncoming":true,"isUTP":false,"isUploadingTo":true,
		 "peerIsChoked":false,"peerIsInterested":true,"port":6881,"progress":0.25,"rateToClient":0,"rateToPeer":2000}],
		"peersConnected":2,"peersSendingToUs":1,"peersGettingFromUs":1,
		"peersFrom":{"fromCache":0,"fromDht":1,"fromIncoming":1,"fromLpd":0,"fromLtep":0,"fromPex":0,"fromTracker":0}}]},"result":"success"}`
	if !jsonEqual(t, got, want) {
		t.Errorf("torrent-get peers:\n got %s\nwant %s", got, want)
	}
	// Without peers: an empty list, never null (the web client iterates it).
	got = string(s.Call([]byte(`{"method":"torrent-get","arguments":{"ids":[2],"fields":["peers","peersFrom"]}}`)))
	want = `{"arguments":{"torrents":[{"peers":[],"peersFrom":{"fromCache":0,"fromDht":0,"fromIncoming":0,"fromLpd":0,"fromLtep":0,"fromPex":0,"fromTracker":0}}]},"result":"success"}`
	if got != want {
		t.Errorf("torrent-get peers of a stopped torrent:\n got %s\nwant %s", got, want)
	}
}
