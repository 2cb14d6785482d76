package trackerd

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzParseAnnounce checks that parseAnnounce never panics and that what it accepts is
// within bounds.
func FuzzParseAnnounce(f *testing.F) {
	for _, seed := range []string{
		ann{ih: awkward, id: hash('a'), port: 6881, left: 1, event: "started"}.query(),
		ann{ih: hash(1), id: hash(2), port: 1, extra: "&compact=0&no_peer_id=1&numwant=999&ip=2001:db8::1"}.query(),
		ann{ih: hash(1), id: hash(2), port: 65535, extra: "&ip=::ffff:1.2.3.4&numwant=-1"}.query(),
		"info_hash=%zz",
		"info_hash=a&info_hash=b;port=1",
		"",
	} {
		f.Add(seed)
	}
	remote := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, q string) {
		req, err := parseAnnounce(q, remote, 50, 200)
		if err != nil {
			return
		}
		a := req.addr.Addr()
		if req.addr.Port() == 0 || !a.IsValid() || a.Is4In6() || !usable(a) {
			t.Fatalf("parseAnnounce(%q): address %v", q, req.addr)
		}
		if req.numWant < 0 || req.numWant > 200 || req.uploaded < 0 || req.downloaded < 0 || req.left < 0 {
			t.Fatalf("parseAnnounce(%q) = %+v", q, req)
		}
		switch req.event {
		case "", "started", "completed", "stopped":
		default:
			t.Fatalf("parseAnnounce(%q): event %q", q, req.event)
		}
	})
}

// FuzzParseUDP checks that parseUDP never panics, keeps what it accepts within bounds,
// and that the server answers any packet with a reply no larger than a full announce
// reply, never to a packet too short to name a transaction.
func FuzzParseUDP(f *testing.F) {
	for _, seed := range [][]byte{
		udpPacket(udpMagic, actionConnect, 7),
		udpPacket(1, actionAnnounce, 7, udpAnnounceBody(hash(1), hash(2), 2, 0, -1, 6881)),
		udpPacket(1, actionAnnounce, 7, udpAnnounceBody(hash(1), hash(2), 9, 0x7f000001, 1<<30, 0), []byte{2, 3, '/', 'a', 'b', 0}),
		udpPacket(1, actionScrape, 7, make([]byte, 40)),
		udpPacket(1, actionScrape, 7, make([]byte, 7)),
		udpPacket(1, 9, 7),
		{1, 2, 3},
	} {
		f.Add(seed, true)
	}
	s := New(Config{NumWantMax: 50, MaxPeers: 1000, MaxTorrents: 100})
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		from := netip.MustParseAddrPort("127.0.0.1:5000")
		if v6 {
			from = netip.MustParseAddrPort("[2001:db8::1]:5000")
		}
		req, err := parseUDP(b, from, 20, 50)
		if err == nil {
			switch req.action {
			case actionConnect:
			case actionAnnounce:
				a := req.announce
				if a.addr.Port() == 0 || !usable(a.addr.Addr()) || a.numWant < 0 || a.numWant > 50 ||
					a.left < 0 || a.uploaded < 0 || a.downloaded < 0 || a.family != 4 && a.family != 6 {
					t.Fatalf("parseUDP(% x) = %+v", b, a)
				}
			case actionScrape:
				if len(req.hashes) == 0 || len(req.hashes) > MaxScrape || len(req.hashes)*20 > len(b) {
					t.Fatalf("parseUDP(% x): %d hashes", b, len(req.hashes))
				}
			default:
				t.Fatalf("parseUDP(% x) accepted action %d", b, req.action)
			}
		}
		// The connection ID in b is almost never valid: give it one now and then.
		if len(b) >= 16 && b[15]&1 == 1 {
			binary.BigEndian.PutUint64(b, s.connID(from.Addr(), s.cfg.Now()))
		}
		r := s.handleUDP(b, from)
		if len(b) < 16 && r != nil || len(r) > 20+18*50 && len(r) > 8+12*MaxScrape {
			t.Fatalf("handleUDP(% x) = % x", b, r)
		}
	})
}
