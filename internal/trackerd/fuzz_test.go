package trackerd

import (
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
