package trackerd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/tracker"
)

// startUDP serves s over UDP on addr until the test ends, checks that ServeUDP then
// returns nil, and returns the udp announce URL ("" if addr cannot be bound).
func startUDP(t *testing.T, addr string, s *Server) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeUDP(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeUDP after cancel = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("ServeUDP still running 10s after its context ended")
		}
		pc.Close()
	})
	return "udp://" + pc.LocalAddr().String() + "/announce"
}

// udpClient retransmits after milliseconds; 5 ms * (2^13-1) is 41 s of patience.
func udpClient() *tracker.UDPClient {
	return &tracker.UDPClient{Retransmit: 5 * time.Millisecond, MaxRetransmits: 12}
}

func udpCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestUDPTwoPeersSeeEachOther announces with the project's UDP client (internal/tracker):
// connect, then announces and a scrape over BEP 15.
func TestUDPTwoPeersSeeEachOther(t *testing.T) {
	s := New(Config{Interval: 10 * time.Minute, AllowedInfoHashes: map[[20]byte]bool{awkward: true}})
	u := startUDP(t, "127.0.0.1:0", s)
	c := udpClient()
	ctx := udpCtx(t)
	req := func(id byte, port uint16, left int64, ev tracker.Event) tracker.Request {
		return tracker.Request{InfoHash: awkward, PeerID: hash(id), Port: port, Left: left, Event: ev}
	}
	if _, err := c.Announce(ctx, u, req('s', 6881, 0, tracker.EventStarted)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Announce(ctx, u, req('l', 6882, 1000, tracker.EventStarted))
	if err != nil {
		t.Fatal(err)
	}
	if want := local(6881); !slices.Equal(r.Peers, want) || r.Interval != 10*time.Minute || r.Complete != 1 || r.Incomplete != 1 {
		t.Errorf("leecher got %+v, want peers %v, interval 10m, 1 seeder, 1 leecher", r, want)
	}
	sr := req('s', 6881, 0, tracker.EventNone)
	sr.NumWant = 1
	if r, err = c.Announce(ctx, u, sr); err != nil || !slices.Equal(r.Peers, local(6882)) {
		t.Errorf("seeder got %+v, %v, want the leecher", r, err)
	}
	if _, err := c.Announce(ctx, u, req('l', 6882, 0, tracker.EventCompleted)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Scrape(ctx, u, [][20]byte{awkward, hash(9)})
	if want := []tracker.ScrapeResult{{Seeders: 2, Completed: 1}, {}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Scrape = %+v, %v, want %+v (a torrent not allowed reads as zeros)", got, err, want)
	}
	if _, err := c.Announce(ctx, u, req('l', 6882, 0, tracker.EventStopped)); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 1, 1)

	other := req('x', 6883, 1, tracker.EventStarted)
	other.InfoHash = hash(7)
	var fe *tracker.FailureError
	if _, err := c.Announce(ctx, u, other); !errors.As(err, &fe) || fe.Reason != "info_hash: not allowed on this tracker" {
		t.Errorf("announce of a torrent not allowed: %v, want a *tracker.FailureError", err)
	}
}

// TestUDPSharesSwarmsWithHTTP: a peer announced over HTTP is handed out over UDP, and
// the other way round.
func TestUDPSharesSwarmsWithHTTP(t *testing.T) {
	s := New(Config{})
	base := start(t, s)
	u := startUDP(t, "127.0.0.1:0", s)
	announce(t, base, ann{ih: hash(1), id: hash('h'), port: 7001, left: 1})
	r, err := udpClient().Announce(udpCtx(t), u, tracker.Request{InfoHash: hash(1), PeerID: hash('u'), Port: 7002, Left: 1})
	if err != nil || !slices.Equal(r.Peers, local(7001)) {
		t.Errorf("UDP announce = %+v, %v, want the HTTP peer at 7001", r, err)
	}
	wantPeers(t, "HTTP peer", announce(t, base, ann{ih: hash(1), id: hash('h'), port: 7001, left: 1}), local(7002))
}

// TestUDPIPv6 announces over [::1]: peers come back 18 bytes each (BEP 15), and only
// IPv6 ones.
func TestUDPIPv6(t *testing.T) {
	s := New(Config{})
	u := startUDP(t, "[::1]:0", s)
	if u == "" {
		t.Skip("no IPv6 loopback")
	}
	base := start(t, s)
	announce(t, base, ann{ih: hash(1), id: hash('4'), port: 7004, left: 1}) // 127.0.0.1, left out
	c := udpClient()
	if _, err := c.Announce(udpCtx(t), u, tracker.Request{InfoHash: hash(1), PeerID: hash('a'), Port: 7001, Left: 1}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Announce(udpCtx(t), u, tracker.Request{InfoHash: hash(1), PeerID: hash('b'), Port: 7002, Left: 1})
	if want := []netip.AddrPort{netip.MustParseAddrPort("[::1]:7001")}; err != nil || !slices.Equal(r.Peers, want) {
		t.Errorf("announce over IPv6 = %+v, %v, want peers %v", r, err, want)
	}
}

// Requests built by hand, for what the client never sends.
func udpPacket(connID uint64, action, tid uint32, body ...[]byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, connID)
	b = binary.BigEndian.AppendUint32(b, action)
	b = binary.BigEndian.AppendUint32(b, tid)
	return append(b, bytes.Join(body, nil)...)
}

// udpAnnounceBody is an announce after the header: a leecher with 1 byte left.
func udpAnnounceBody(ih, id [20]byte, event, ip uint32, numWant int32, port uint16) []byte {
	b := append(ih[:], id[:]...)
	b = binary.BigEndian.AppendUint64(b, 0) // downloaded
	b = binary.BigEndian.AppendUint64(b, 1) // left
	b = binary.BigEndian.AppendUint64(b, 0) // uploaded
	b = binary.BigEndian.AppendUint32(b, event)
	b = binary.BigEndian.AppendUint32(b, ip)
	b = binary.BigEndian.AppendUint32(b, 0) // key
	b = binary.BigEndian.AppendUint32(b, uint32(numWant))
	return binary.BigEndian.AppendUint16(b, port)
}

// connectTo returns the connection ID s gives from at now.
func connectTo(t *testing.T, s *Server, from netip.AddrPort) uint64 {
	t.Helper()
	r := s.handleUDP(udpPacket(udpMagic, actionConnect, 1), from)
	if len(r) != 16 || binary.BigEndian.Uint32(r) != actionConnect || binary.BigEndian.Uint32(r[4:]) != 1 {
		t.Fatalf("connect reply % x", r)
	}
	return binary.BigEndian.Uint64(r[8:])
}

// errorOf returns the message of an error reply to transaction tid, or "" for another reply.
func errorOf(t *testing.T, r []byte, tid uint32) string {
	t.Helper()
	if len(r) < 8 || binary.BigEndian.Uint32(r[4:]) != tid {
		t.Fatalf("reply % x: not for transaction %d", r, tid)
	}
	if binary.BigEndian.Uint32(r) != actionError {
		return ""
	}
	return string(r[8:])
}

// TestUDPConnIDs checks that connection IDs are good for two minutes (BEP 15), from the
// address they were given to only, and not guessable from one server to another.
func TestUDPConnIDs(t *testing.T) {
	clk := newClock()
	s := New(Config{Now: clk.Now})
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	id := connectTo(t, s, from)
	announceWith := func(id uint64, from netip.AddrPort) string {
		return errorOf(t, s.handleUDP(udpPacket(id, actionAnnounce, 2, udpAnnounceBody(hash(1), hash(2), 0, 0, -1, 7000)), from), 2)
	}
	const expired = "connection id: unknown or expired, connect again"
	for _, tt := range []struct {
		name    string
		advance time.Duration
		id      uint64
		from    string
		want    string
	}{
		{name: "fresh", id: id, from: "127.0.0.1:5000"},
		{name: "another port of the same host", id: id, from: "127.0.0.1:5001"},
		{name: "another host", id: id, from: "127.0.0.2:5000", want: expired},
		{name: "a bit changed", id: id ^ 1, from: "127.0.0.1:5000", want: expired},
		{name: "issue time changed", id: id ^ 1<<48, from: "127.0.0.1:5000", want: expired},
		{name: "the magic", id: udpMagic, from: "127.0.0.1:5000", want: expired},
		{name: "2 minutes later", advance: 2 * time.Minute, id: id, from: "127.0.0.1:5000"},
		{name: "2 minutes 1 s later", advance: time.Second, id: id, from: "127.0.0.1:5000", want: expired},
		{name: "18 hours later", advance: 65536*time.Second - 2*time.Minute - time.Second, id: id, from: "127.0.0.1:5000", want: expired},
	} {
		clk.Add(tt.advance)
		if got := announceWith(tt.id, netip.MustParseAddrPort(tt.from)); got != tt.want {
			t.Errorf("%s: announce = error %q, want %q", tt.name, got, tt.want)
		}
	}
	if other := New(Config{Now: clk.Now}); connectTo(t, other, from) == connectTo(t, s, from) {
		t.Error("two servers gave the same connection ID: not keyed by a secret")
	}
}

func TestUDPRequestErrors(t *testing.T) {
	s := New(Config{AllowedInfoHashes: map[[20]byte]bool{hash(1): true}})
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	id := connectTo(t, s, from)
	ann := func(event, ip uint32, port uint16) []byte {
		return udpAnnounceBody(hash(1), hash(2), event, ip, -1, port)
	}
	huge := bytes.Repeat([]byte{0xff}, 8)
	tests := []struct {
		name string
		pkt  []byte
		want string // "" for no reply at all
	}{
		{name: "empty", pkt: nil},
		{name: "short", pkt: udpPacket(id, actionAnnounce, 3)[:15]},
		{name: "connect without the magic", pkt: udpPacket(12345, actionConnect, 3)},
		{name: "announce short", pkt: udpPacket(id, actionAnnounce, 3, ann(0, 0, 1)[:50]), want: "announce: 66 bytes, want 98"},
		{name: "unknown event", pkt: udpPacket(id, actionAnnounce, 3, ann(4, 0, 1)), want: "event: unknown event 4"},
		{name: "port 0", pkt: udpPacket(id, actionAnnounce, 3, ann(0, 0, 0)), want: "port: want 1-65535, got 0"},
		{name: "left beyond int64", pkt: udpPacket(id, actionAnnounce, 3, slices.Concat(ann(0, 0, 1)[:48], huge, ann(0, 0, 1)[56:])),
			want: "left: 18446744073709551615 is more than 2^63-1"},
		{name: "not allowed", pkt: udpPacket(id, actionAnnounce, 3, udpAnnounceBody(hash(3), hash(2), 0, 0, -1, 1)),
			want: "info_hash: not allowed on this tracker"},
		{name: "scrape of nothing", pkt: udpPacket(id, actionScrape, 3), want: "scrape: no info hash"},
		{name: "scrape of half a hash", pkt: udpPacket(id, actionScrape, 3, make([]byte, 30)),
			want: "scrape: 30 bytes of info hashes, not a multiple of 20"},
		{name: "scrape of too many", pkt: udpPacket(id, actionScrape, 3, make([]byte, 20*(MaxScrape+1))),
			want: "scrape: at most 1000 info hashes, got 1001"},
		{name: "unknown action", pkt: udpPacket(id, 9, 3), want: "action 9: unknown"},
		{name: "error action", pkt: udpPacket(id, actionError, 3), want: "action 3: unknown"},
		{name: "bad connection id first", pkt: udpPacket(id+1, 9, 3), want: "connection id: unknown or expired, connect again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.handleUDP(tt.pkt, from)
			if tt.want == "" {
				if r != nil {
					t.Errorf("reply % x, want none", r)
				}
				return
			}
			if got := errorOf(t, r, 3); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
	wantStats(t, s, 0, 0)
}

// TestUDPAnnounceFields checks what an announce registers: the IP address field, when
// set, replaces the source address, num_want bounds the peers, and each family gets
// only its own peers in its own format.
func TestUDPAnnounceFields(t *testing.T) {
	s := New(Config{})
	v4 := netip.MustParseAddrPort("127.0.0.1:5000")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5000")
	id4, id6 := connectTo(t, s, v4), connectTo(t, s, v6)
	announceFrom := func(from netip.AddrPort, id uint64, peer byte, ip uint32, numWant int32, port uint16) []byte {
		t.Helper()
		r := s.handleUDP(udpPacket(id, actionAnnounce, 4, udpAnnounceBody(hash(1), hash(peer), 2, ip, numWant, port)), from)
		if msg := errorOf(t, r, 4); msg != "" || len(r) < 20 {
			t.Fatalf("announce: error %q, reply % x", msg, r)
		}
		return r[20:]
	}
	announceFrom(v4, id4, 'a', 0x0a000001, -1, 7001) // registers 10.0.0.1:7001
	announceFrom(v6, id6, 'b', 0, -1, 7002)          // [2001:db8::1]:7002
	announceFrom(v4, id4, 'c', 0, -1, 7003)          // 127.0.0.1:7003
	if got := announceFrom(v4, id4, 'd', 0, -1, 7004); len(got) != 12 ||
		!bytes.Equal(got[:6], []byte{10, 0, 0, 1, 0x1b, 0x59}) && !bytes.Equal(got[6:], []byte{10, 0, 0, 1, 0x1b, 0x59}) {
		t.Errorf("IPv4 announce got peers % x, want 10.0.0.1:7001 and 127.0.0.1:7003, 6 bytes each", got)
	}
	if got := announceFrom(v4, id4, 'd', 0, 1, 7004); len(got) != 6 {
		t.Errorf("num_want 1 got peers % x, want one", got)
	}
	want := append(netip.MustParseAddr("2001:db8::1").AsSlice(), 0x1b, 0x5a)
	if got := announceFrom(v6, id6, 'e', 0, -1, 7005); !bytes.Equal(got, want) {
		t.Errorf("IPv6 announce got peers % x, want % x", got, want)
	}
}

// TestServeUDPStopsAtOnce checks that ServeUDP returns nil when its context ends first.
func TestServeUDPStopsAtOnce(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := New(Config{}).ServeUDP(ctx, pc); err != nil {
		t.Errorf("ServeUDP = %v, want nil", err)
	}
	pc.Close()
	if err := New(Config{}).ServeUDP(t.Context(), pc); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("ServeUDP on a closed socket = %v, want its error", err)
	}
}
