package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fastUDP retransmits after milliseconds, often enough that a test never runs out of
// tries however slow the machine: 5 ms * (2^13 - 1) is 41 s of patience in all.
func fastUDP() *UDPClient { return &UDPClient{Retransmit: 5 * time.Millisecond, MaxRetransmits: 12} }

// fakeLogic answers like a BEP 15 tracker: a connect gets a new connection ID, and an
// announce or scrape carrying the latest one gets an answer; any other ID an error.
// It counts transactions, not packets: a retransmission (the same transaction ID) gets
// the same answer again, so that a slow machine, which retransmits more, counts the same.
type fakeLogic struct {
	mu                           sync.Mutex
	id                           uint64 // the latest connection ID issued; 0 before any
	connects, announces, scrapes int
	issued                       map[uint32]uint64 // connection ID by connect transaction
	announced                    map[uint32][]byte // announce packets by transaction
	firstAnnounce                []byte
	peers                        []byte // compact peers to answer with
}

func (l *fakeLogic) reply(pkt []byte) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(pkt) < 16 {
		return nil
	}
	id, action, tid := binary.BigEndian.Uint64(pkt), binary.BigEndian.Uint32(pkt[8:]), binary.BigEndian.Uint32(pkt[12:])
	if action == actionConnect {
		if id != udpMagic {
			return nil
		}
		if l.issued == nil {
			l.issued = make(map[uint32]uint64)
		}
		if _, ok := l.issued[tid]; !ok {
			l.connects++
			l.id = 1000 + uint64(l.connects)
			l.issued[tid] = l.id
		}
		return connectReply(tid, l.issued[tid])
	}
	if id != l.id || l.id == 0 {
		return errorReply(tid, fmt.Sprintf("connection id %d, want %d", id, l.id))
	}
	switch action {
	case actionAnnounce:
		if l.announced == nil {
			l.announced = make(map[uint32][]byte)
			l.firstAnnounce = pkt
		}
		if _, ok := l.announced[tid]; !ok {
			l.announces++
			l.announced[tid] = pkt
		}
		return announceReply(tid, 900, 1, 2, l.peers...)
	case actionScrape:
		l.scrapes++
		out := cat(be32(actionScrape), be32(tid))
		for i := range (len(pkt) - 16) / 20 {
			out = cat(out, be32(uint32(i)), be32(uint32(10+i)), be32(uint32(20+i)))
		}
		return out
	}
	return errorReply(tid, "unknown action")
}

func (l *fakeLogic) counts() (connects, announces int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connects, l.announces
}

// fakeUDP is a UDP tracker on loopback whose reply function decides the answer to the
// n-th packet it receives (from 0); nil drops the packet.
type fakeUDP struct {
	url  string // udp://ADDR/announce
	host string

	mu    sync.Mutex
	count int
}

func startFakeUDP(t *testing.T, addr string, reply func(n int, pkt []byte) []byte) *fakeUDP {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		if strings.HasPrefix(addr, "[::1]") {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	f := &fakeUDP{host: pc.LocalAddr().String()}
	f.url = "udp://" + f.host + "/announce"
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			i := f.count
			f.count++
			f.mu.Unlock()
			if out := reply(i, append([]byte(nil), buf[:n]...)); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return f
}

func (f *fakeUDP) received() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

// udpCtx bounds a test's requests.
func udpCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUDPAnnounce(t *testing.T) {
	l := &fakeLogic{peers: []byte{127, 0, 0, 1, 0x1a, 0xe1}}
	f := startFakeUDP(t, "127.0.0.1:0", func(_ int, pkt []byte) []byte { return l.reply(pkt) })
	c := fastUDP()
	req := Request{InfoHash: binaryHash, PeerID: peerID(), Port: 7001, Left: 10, Uploaded: 1, Downloaded: 2,
		Event: EventStarted, NumWant: 30, Key: "abcd"}
	r, err := c.Announce(udpCtx(t), f.url+"?passkey=s3cr3t", req)
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs("127.0.0.1:6881"); !slices.Equal(r.Peers, want) || r.Interval != 15*time.Minute ||
		r.Incomplete != 1 || r.Complete != 2 {
		t.Errorf("Announce = %+v, want peers %v, interval 15m, 1 leecher, 2 seeders", r, want)
	}
	l.mu.Lock()
	pkt := l.firstAnnounce
	l.mu.Unlock()
	want := announcePacket(1001, binary.BigEndian.Uint32(pkt[12:]), req, "/announce?passkey=s3cr3t")
	if !slices.Equal(pkt, want) {
		t.Errorf("tracker got\n% x\nwant\n% x", pkt, want)
	}
}

func TestUDPScrape(t *testing.T) {
	l := &fakeLogic{}
	f := startFakeUDP(t, "127.0.0.1:0", func(_ int, pkt []byte) []byte { return l.reply(pkt) })
	c := fastUDP()
	got, err := c.Scrape(udpCtx(t), f.url, [][20]byte{{1}, {2}})
	want := []ScrapeResult{{Seeders: 0, Completed: 10, Leechers: 20}, {Seeders: 1, Completed: 11, Leechers: 21}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Scrape = %+v, %v, want %+v", got, err, want)
	}
	if _, err := c.Scrape(udpCtx(t), f.url, nil); err == nil || err.Error() != "tracker: udp scrape: no info hash" {
		t.Errorf("Scrape(none) = %v", err)
	}
	if _, err := c.Scrape(udpCtx(t), f.url, make([][20]byte, 75)); err == nil ||
		err.Error() != "tracker: udp scrape: 75 info hashes, at most 74 at once" {
		t.Errorf("Scrape(75) = %v", err)
	}
}

// TestUDPIPv6 reaches the tracker over [::1], so that its peers are 18 bytes (BEP 15).
func TestUDPIPv6(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::7").As16()
	l := &fakeLogic{peers: append(v6[:], 0x1b, 0x59)}
	f := startFakeUDP(t, "[::1]:0", func(_ int, pkt []byte) []byte { return l.reply(pkt) })
	c := fastUDP()
	r, err := c.Announce(udpCtx(t), f.url, Request{Port: 1, Left: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs("[2001:db8::7]:7001"); !slices.Equal(r.Peers, want) {
		t.Errorf("peers = %v, want %v", r.Peers, want)
	}
}

// TestUDPRetransmit drops the first packets: two connects and then an announce. The
// client sends each again until it gets through.
func TestUDPRetransmit(t *testing.T) {
	l := &fakeLogic{peers: []byte{127, 0, 0, 1, 0x1a, 0xe1}}
	var dropped atomic.Int32
	f := startFakeUDP(t, "127.0.0.1:0", func(_ int, pkt []byte) []byte {
		action := binary.BigEndian.Uint32(pkt[8:])
		connects, announces := l.counts()
		if d := dropped.Load(); action == actionConnect && d < 2 || action == actionAnnounce && connects > 0 && announces == 0 && d < 3 {
			dropped.Add(1)
			return nil
		}
		return l.reply(pkt)
	})
	c := fastUDP()
	r, err := c.Announce(udpCtx(t), f.url, Request{Port: 1, Left: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Peers) != 1 || dropped.Load() != 3 {
		t.Errorf("Announce = %+v after %d dropped packets, want one peer after 3", r, dropped.Load())
	}
	// A slow machine may send more copies than needed, never fewer.
	if n := f.received(); n < 5 {
		t.Errorf("tracker received %d packets, want at least 5 (3 dropped, a connect, an announce)", n)
	}
}

// TestUDPBadReplies checks what each malformed or hostile reply to the connect gives.
func TestUDPBadReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply func(tid uint32) []byte
		check func(error) bool
		want  string
	}{
		{name: "garbage", reply: func(uint32) []byte { return []byte("hi!") },
			check: func(err error) bool { return errors.Is(err, ErrBadResponse) },
			want:  "tracker: bad response: udp connect reply: 3 bytes, want at least 8"},
		{name: "wrong action", reply: func(tid uint32) []byte { return announceReply(tid, 1, 1, 1) },
			check: func(err error) bool { return errors.Is(err, ErrBadResponse) },
			want:  "tracker: bad response: udp connect reply: action 1 (announce), want 0"},
		{name: "error action", reply: func(tid uint32) []byte { return errorReply(tid, "banned") },
			check: func(err error) bool { var fe *FailureError; return errors.As(err, &fe) && fe.Reason == "banned" },
			want:  "tracker: failure reason: banned"},
		{name: "other transaction only", reply: func(tid uint32) []byte { return connectReply(tid+1, 5) },
			check: func(err error) bool { return errors.Is(err, ErrNoReply) && !errors.Is(err, ErrBadResponse) },
			want:  "tracker: no reply from HOST to udp connect after 3 sends (ignored a packet: tracker: bad response: udp connect reply: reply to another transaction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeUDP(t, "127.0.0.1:0", func(_ int, pkt []byte) []byte {
				return tt.reply(binary.BigEndian.Uint32(pkt[12:]))
			})
			c := UDPClient{Retransmit: time.Millisecond, MaxRetransmits: 2}
			r, err := c.Announce(udpCtx(t), f.url, Request{Port: 1})
			want := strings.ReplaceAll(tt.want, "HOST", f.host)
			if err == nil || !strings.HasPrefix(err.Error(), want) || !tt.check(err) {
				t.Errorf("Announce = %+v, %v (%T), want %q", r, err, err, want)
			}
		})
	}
}

// fakeClock is a settable UDPClient.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestUDPConnIDReuse announces again and again: the connection ID is reused for a
// minute after it arrived, then fetched anew (BEP 15), and the tracker, which answers
// only its latest ID, sees each announce carry the right one.
func TestUDPConnIDReuse(t *testing.T) {
	l := &fakeLogic{}
	f := startFakeUDP(t, "127.0.0.1:0", func(_ int, pkt []byte) []byte { return l.reply(pkt) })
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := fastUDP()
	c.Now = clock.Now
	steps := []struct {
		advance      time.Duration
		wantConnects int
	}{
		{0, 1},                // first announce: connect
		{30 * time.Second, 1}, // reused
		{29 * time.Second, 1}, // 59 s: reused
		{time.Second, 2},      // 60 s: expired, connect again
		{59 * time.Second, 2}, // 59 s into the second ID
		{24 * time.Hour, 3},   // long after
		{-48 * time.Hour, 4},  // the clock went back: not trusted
	}
	for i, s := range steps {
		clock.Add(s.advance)
		if _, err := c.Announce(udpCtx(t), f.url, Request{Port: 1}); err != nil {
			t.Fatalf("announce %d: %v", i, err)
		}
		if connects, announces := l.counts(); connects != s.wantConnects || announces != i+1 {
			t.Fatalf("after announce %d: %d connects and %d announces, want %d and %d",
				i, connects, announces, s.wantConnects, i+1)
		}
	}
}

// TestUDPErrorDropsConnID checks that an error reply, which a tracker that restarted
// sends for an ID it no longer knows, makes the next announce connect again.
func TestUDPErrorDropsConnID(t *testing.T) {
	l := &fakeLogic{}
	f := startFakeUDP(t, "127.0.0.1:0", func(_ int, pkt []byte) []byte { return l.reply(pkt) })
	c := fastUDP()
	if _, err := c.Announce(udpCtx(t), f.url, Request{Port: 1}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.id = 77 // the tracker restarted
	l.mu.Unlock()
	var fe *FailureError
	if _, err := c.Announce(udpCtx(t), f.url, Request{Port: 1}); !errors.As(err, &fe) {
		t.Fatalf("announce with a forgotten ID = %v, want a *FailureError", err)
	}
	if _, err := c.Announce(udpCtx(t), f.url, Request{Port: 1}); err != nil {
		t.Fatalf("announce after the error = %v", err)
	}
	if connects, announces := l.counts(); connects != 2 || announces != 2 {
		t.Errorf("%d connects and %d announces, want 2 and 2", connects, announces)
	}
}

// TestUDPNoAnswer checks that the context bounds a request to a tracker that never
// answers, with BEP 15's own timers (hours of retransmissions).
func TestUDPNoAnswer(t *testing.T) {
	f := startFakeUDP(t, "127.0.0.1:0", func(int, []byte) []byte { return nil })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var c UDPClient
	done := make(chan error, 1)
	go func() {
		_, err := c.Announce(ctx, f.url, Request{Port: 1})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "tracker: announce to "+f.host+": ") {
			t.Errorf("Announce = %v, want context.DeadlineExceeded naming %s", err, f.host)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Announce still running 20 s after its context ended")
	}
}

// TestUDPRefused announces to a port nobody listens on: the kernel's port unreachable
// ends the request without waiting out the retransmissions, and the error names the
// host but not the passkey.
func TestUDPRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := pc.LocalAddr().String()
	pc.Close()
	var c UDPClient
	_, err = c.Announce(udpCtx(t), "udp://"+host+"/s3cr3t/announce", Request{Port: 1})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.HasPrefix(err.Error(), "tracker: announce to "+host+": ") {
		t.Errorf("Announce to a closed port = %v, want an error naming %s without the passkey", err, host)
	}
}

func TestUDPBadURL(t *testing.T) {
	var c UDPClient
	for raw, want := range map[string]string{
		"udp://t.example/announce":       `tracker: announce url "udp://t.example/announce": want a port 1-65535, got ""`,
		"udp://t.example:0":              `tracker: announce url "udp://t.example:0": want a port 1-65535, got "0"`,
		"udp://:6969":                    `tracker: announce url "udp://:6969": no host`,
		"http://t.example:6969/announce": `tracker: announce url "http://t.example:6969/announce": scheme "http" is not udp`,
	} {
		if _, err := c.Announce(t.Context(), raw, Request{}); err == nil || err.Error() != want {
			t.Errorf("Announce(%q) = %v, want %q", raw, err, want)
		}
	}
	if _, err := c.Announce(t.Context(), "udp://127.0.0.1:1", Request{Left: -1}); err == nil ||
		err.Error() != "tracker: request.left: -1 is negative" {
		t.Errorf("Announce(left -1) = %v", err)
	}
}

// pipeTracker serves a UDPClient through net.Pipe inside a synctest bubble, where the
// clock is virtual: it records when each packet arrived, and answers through reply.
type pipeTracker struct {
	start time.Time
	reply func(pkt []byte) []byte

	mu  sync.Mutex
	log []string // "12s connect", in order
}

func (p *pipeTracker) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

func (p *pipeTracker) dial(ctx context.Context, network, address string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := server.Read(buf)
			if err != nil {
				return
			}
			pkt := append([]byte(nil), buf[:n]...)
			p.mu.Lock()
			p.log = append(p.log, fmt.Sprintf("%v %s", time.Since(p.start), actionName(binary.BigEndian.Uint32(pkt[8:]))))
			p.mu.Unlock()
			if out := p.reply(pkt); out != nil {
				if _, err := server.Write(out); err != nil {
					return
				}
			}
		}
	}()
	return client, nil
}

// TestUDPRetransmitSchedule runs BEP 15's own timers in virtual time: a connect nobody
// answers goes out at 0, 15, 45, ... 3825 s (15 * 2^n apart, n up to 8), and the client
// gives up 3840 s after the last.
func TestUDPRetransmitSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &pipeTracker{start: time.Now(), reply: func([]byte) []byte { return nil }}
		c := UDPClient{Dial: p.dial}
		_, err := c.Announce(t.Context(), "udp://tracker.example:6969/announce", Request{Port: 1})
		if !errors.Is(err, ErrNoReply) || !strings.Contains(err.Error(), "after 9 sends") {
			t.Errorf("Announce = %v, want ErrNoReply after 9 sends", err)
		}
		if took := time.Since(p.start); took != 7665*time.Second {
			t.Errorf("gave up after %v, want 7665s", took)
		}
		want := []string{"0s connect", "15s connect", "45s connect", "1m45s connect", "3m45s connect",
			"7m45s connect", "15m45s connect", "31m45s connect", "1h3m45s connect"}
		if got := p.seen(); !slices.Equal(got, want) {
			t.Errorf("tracker saw %q\nwant %q", got, want)
		}
	})
}

// TestUDPConnIDExpiresWhileRetransmitting: the announce goes unanswered past the
// minute its connection ID is good for, so the next retransmission connects first and
// carries the new ID (BEP 15: "it is necessary to rerequest a connection ID when it has
// expired").
func TestUDPConnIDExpiresWhileRetransmitting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLogic{}
		p := &pipeTracker{start: time.Now()}
		p.reply = func(pkt []byte) []byte {
			if binary.BigEndian.Uint32(pkt[8:]) == actionAnnounce && time.Since(p.start) < time.Minute {
				return nil
			}
			return l.reply(pkt)
		}
		c := UDPClient{Dial: p.dial}
		if _, err := c.Announce(t.Context(), "udp://tracker.example:6969/announce", Request{Port: 1}); err != nil {
			t.Fatal(err)
		}
		want := []string{"0s connect", "0s announce", "15s announce", "45s announce", "1m45s connect", "1m45s announce"}
		if got := p.seen(); !slices.Equal(got, want) {
			t.Errorf("tracker saw %q\nwant %q", got, want)
		}
		if connects, announces := l.counts(); connects != 2 || announces != 1 {
			t.Errorf("%d connects, %d announces answered; want 2 and 1", connects, announces)
		}
	})
}

func TestClientDispatch(t *testing.T) {
	l := &fakeLogic{peers: []byte{127, 0, 0, 1, 0x1a, 0xe1}}
	udp := startFakeUDP(t, "127.0.0.1:0", func(_ int, pkt []byte) []byte { return l.reply(pkt) })
	httpURL := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("d8:intervali1800e5:peers6:\x7f\x00\x00\x02\x1a\xe2e")) // 127.0.0.2:6882
	})
	c := &Client{UDP: fastUDP()}
	for _, tt := range []struct{ url, peer string }{
		{udp.url, "127.0.0.1:6881"},
		{httpURL, "127.0.0.2:6882"},
		{strings.Replace(udp.url, "udp:", "UDP:", 1), "127.0.0.1:6881"}, // schemes are case-insensitive
	} {
		r, err := c.Announce(udpCtx(t), tt.url, Request{Port: 1})
		if err != nil || !slices.Equal(r.Peers, addrs(tt.peer)) {
			t.Errorf("Announce(%s) = %+v, %v, want peer %s", tt.url, r, err, tt.peer)
		}
	}
	for raw, want := range map[string]string{
		"wss://t.example/announce": `tracker: announce url "wss://t.example/announce": unsupported scheme "wss" (want http, https or udp)`,
		"t.example:6969":           `tracker: announce url "t.example:6969": unsupported scheme "t.example" (want http, https or udp)`,
		"/announce":                `tracker: announce url "/announce": unsupported scheme "" (want http, https or udp)`,
	} {
		if _, err := c.Announce(t.Context(), raw, Request{}); err == nil || err.Error() != want {
			t.Errorf("Announce(%q) = %v, want %q", raw, err, want)
		}
	}
}
