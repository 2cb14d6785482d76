package trackerd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackpal/bencode-go"
)

// client bounds every request a test makes.
var client = &http.Client{Timeout: 5 * time.Second}

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start serves s on 127.0.0.1 until the test ends and returns its base URL.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL
}

// startOn serves s on addr until the test ends and returns its base URL, or "" if addr
// cannot be listened on.
func startOn(t *testing.T, addr string, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return ""
	}
	ts := httptest.NewUnstartedServer(s)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

// hash returns a 20-byte ID filled with b.
func hash(b byte) [20]byte {
	var h [20]byte
	for i := range h {
		h[i] = b
	}
	return h
}

// awkward is an info hash holding every byte a query parser could mangle.
var awkward = [20]byte{0x00, '+', '%', '&', '=', ' ', ';', '#', '?', '/', 0x7f, 0x80, 0xff, 'a', 'Z', '~', '.', '-', '_', 0x20}

// esc percent-encodes an ID for a query.
func esc(h [20]byte) string { return url.QueryEscape(string(h[:])) }

// ann is one announce; zero fields take defaults in query.
type ann struct {
	ih, id [20]byte
	port   int
	left   int64
	event  string
	extra  string // appended raw: "&numwant=3"
}

func (a ann) query() string {
	return fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&event=%s%s",
		esc(a.ih), esc(a.id), a.port, a.left, a.event, a.extra)
}

// fetch GETs target and decodes the bencoded reply.
func fetch(target string) (map[string]any, error) {
	resp, err := client.Get(target)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %q", target, resp.Status, body)
	}
	v, err := bencode.Decode(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("GET %s: decode %q: %w", target, body, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("GET %s: reply %q is not a dictionary", target, body)
	}
	return m, nil
}

// get is fetch failing the test on an error.
func get(t *testing.T, target string) map[string]any {
	t.Helper()
	m, err := fetch(target)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// announce sends a and fails the test on a failure reason.
func announce(t *testing.T, base string, a ann) map[string]any {
	t.Helper()
	m := get(t, base+"/announce?"+a.query())
	if f, ok := m["failure reason"]; ok {
		t.Fatalf("announce %+v: failure reason %q", a, f)
	}
	return m
}

// peersOf returns the compact peers and peers6 of a reply, sorted.
func peersOf(t *testing.T, m map[string]any) []netip.AddrPort {
	t.Helper()
	var out []netip.AddrPort
	for _, f := range []struct {
		key  string
		size int
	}{{"peers", 6}, {"peers6", 18}} {
		v, ok := m[f.key]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok || len(s)%f.size != 0 {
			t.Fatalf("%s = %q: not compact", f.key, v)
		}
		for b := []byte(s); len(b) > 0; b = b[f.size:] {
			ip, _ := netip.AddrFromSlice(b[:f.size-2])
			out = append(out, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[f.size-2:])))
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}

func local(ports ...int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range ports {
		out = append(out, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p)))
	}
	return out
}

func wantPeers(t *testing.T, who string, m map[string]any, want []netip.AddrPort) {
	t.Helper()
	if got := peersOf(t, m); !slices.Equal(got, want) {
		t.Errorf("%s got peers %v, want %v", who, got, want)
	}
}

func wantInt(t *testing.T, m map[string]any, key string, want int64) {
	t.Helper()
	if got, _ := m[key].(int64); got != want {
		t.Errorf("%s = %v, want %d", key, m[key], want)
	}
}

func wantStats(t *testing.T, s *Server, torrents, peers int) {
	t.Helper()
	if gt, gp := s.Stats(); gt != torrents || gp != peers {
		t.Errorf("Stats() = %d torrents, %d peers; want %d, %d", gt, gp, torrents, peers)
	}
}

func TestAnnounceTwoPeersSeeEachOther(t *testing.T) {
	s := New(Config{Interval: 20 * time.Minute})
	base := start(t, s)
	a := ann{ih: awkward, id: hash('a'), port: 1001, left: 100, event: "started"}
	b := ann{ih: awkward, id: hash('b'), port: 1002, left: 100, event: "started"}

	m := announce(t, base, a)
	wantPeers(t, "a, alone,", m, nil)
	wantInt(t, m, "interval", 1200)
	wantInt(t, m, "min interval", 600)
	wantInt(t, m, "incomplete", 1)
	if p, ok := m["peers"].(string); !ok || p != "" {
		t.Errorf(`"peers" = %q, want an empty string`, m["peers"])
	}
	if _, ok := m["peers6"]; ok {
		t.Errorf(`"peers6" = %q, want none`, m["peers6"])
	}

	wantPeers(t, "b", announce(t, base, b), local(1001))
	a.event = ""
	m = announce(t, base, a)
	wantPeers(t, "a", m, local(1002))
	wantInt(t, m, "complete", 0)
	wantInt(t, m, "incomplete", 2)
	wantStats(t, s, 1, 2)

	// The raw bytes of the info hash survived the query: a scrape names it.
	files := get(t, base+"/scrape")["files"].(map[string]any)
	if _, ok := files[string(awkward[:])]; !ok || len(files) != 1 {
		t.Errorf("scrape files = %q, want only %q", files, awkward)
	}
}

func TestAnnounceDictionary(t *testing.T) {
	base := start(t, New(Config{}))
	announce(t, base, ann{ih: hash(1), id: hash('a'), port: 1001, left: 1})
	ip6 := ann{ih: hash(1), id: hash('6'), port: 1006, left: 1, extra: "&ip=2001:db8::6"}
	announce(t, base, ip6)

	tests := []struct {
		name   string
		extra  string
		wantID bool
	}{
		{"compact=0", "&compact=0", true},
		{"compact=0 no_peer_id=1", "&compact=0&no_peer_id=1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := announce(t, base, ann{ih: hash(1), id: hash('b'), port: 1002, left: 1, extra: tt.extra})
			list, ok := m["peers"].([]any)
			if !ok {
				t.Fatalf(`"peers" = %q, want a list`, m["peers"])
			}
			if _, ok := m["peers6"]; ok {
				t.Errorf(`"peers6" in a dictionary reply`)
			}
			got := map[string]map[string]any{}
			for _, e := range list {
				d := e.(map[string]any)
				got[d["ip"].(string)] = d
			}
			want := map[string]struct {
				port int64
				id   [20]byte
			}{"127.0.0.1": {1001, hash('a')}, "2001:db8::6": {1006, hash('6')}}
			if len(got) != len(want) {
				t.Fatalf("peers = %q, want %d", list, len(want))
			}
			for ip, w := range want {
				d := got[ip]
				if d["port"] != w.port {
					t.Errorf("%s: port = %v, want %d", ip, d["port"], w.port)
				}
				id, has := d["peer id"]
				if has != tt.wantID || has && id != string(w.id[:]) {
					t.Errorf("%s: peer id = %q (present %v), want %q (present %v)", ip, id, has, w.id, tt.wantID)
				}
			}
		})
	}
}

func TestAnnounceIPParam(t *testing.T) {
	tests := []struct {
		name string
		ip   string
		want string // the address the others see
		v6   bool   // in peers6
	}{
		{"ipv6", "2001:db8::1", "[2001:db8::1]:7000", true},
		{"ipv6 loopback", "::1", "[::1]:7000", true},
		{"ipv4", "10.1.2.3", "10.1.2.3:7000", false},
		{"ipv4-mapped counts as ipv4", "::ffff:10.1.2.3", "10.1.2.3:7000", false},
		{"not an ip", "example.com", "127.0.0.1:7000", false},
		{"unspecified", "0.0.0.0", "127.0.0.1:7000", false},
		{"multicast", "ff02::1", "127.0.0.1:7000", false},
		{"zone", "fe80::1%25eth0", "127.0.0.1:7000", false},
		{"empty", "", "127.0.0.1:7000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := start(t, New(Config{}))
			announce(t, base, ann{ih: hash(1), id: hash('a'), port: 7000, left: 1, extra: "&ip=" + tt.ip})
			m := announce(t, base, ann{ih: hash(1), id: hash('b'), port: 7001, left: 1})
			wantPeers(t, "b", m, []netip.AddrPort{netip.MustParseAddrPort(tt.want)})
			p6, _ := m["peers6"].(string)
			if got := len(p6) == 18; got != tt.v6 {
				t.Errorf("peers6 = %q: holds the peer %v, want %v", p6, got, tt.v6)
			}
		})
	}
}

func TestStoppedRemoves(t *testing.T) {
	s := New(Config{})
	base := start(t, s)
	a := ann{ih: hash(1), id: hash('a'), port: 1001, left: 1}
	b := ann{ih: hash(1), id: hash('b'), port: 1002, left: 1}
	announce(t, base, a)
	announce(t, base, b)
	wantStats(t, s, 1, 2)

	b.event = "stopped"
	m := announce(t, base, b)
	wantPeers(t, "b stopping", m, nil)
	wantInt(t, m, "incomplete", 1)
	wantPeers(t, "a", announce(t, base, a), nil)
	wantStats(t, s, 1, 1)

	a.event = "stopped"
	announce(t, base, a)
	wantStats(t, s, 0, 0)
	// Stopping again, or an unknown torrent, is harmless and creates nothing.
	announce(t, base, a)
	announce(t, base, ann{ih: hash(2), id: hash('c'), port: 1003, event: "stopped"})
	wantStats(t, s, 0, 0)
}

func TestSeedersGetOnlyLeechers(t *testing.T) {
	s := New(Config{})
	base := start(t, s)
	s1 := ann{ih: hash(1), id: hash(1), port: 1001, left: 0}
	s2 := ann{ih: hash(1), id: hash(2), port: 1002, left: 0}
	l1 := ann{ih: hash(1), id: hash(3), port: 1003, left: 5}
	announce(t, base, s1)
	announce(t, base, s2)
	announce(t, base, l1)

	m := announce(t, base, s1)
	wantPeers(t, "seeder", m, local(1003))
	wantInt(t, m, "complete", 2)
	wantInt(t, m, "incomplete", 1)
	wantPeers(t, "leecher", announce(t, base, l1), local(1001, 1002))

	// completed makes l1 a seeder even if its left lags; then no seeder needs anyone.
	l1.event = "completed"
	m = announce(t, base, l1)
	wantPeers(t, "completed", m, nil)
	wantInt(t, m, "complete", 3)
	wantInt(t, m, "incomplete", 0)
	wantPeers(t, "seeder", announce(t, base, s2), nil)
	// A repeated completed is not a second download.
	announce(t, base, l1)

	f := get(t, base+"/scrape?info_hash="+esc(hash(1)))["files"].(map[string]any)
	h := hash(1)
	wantInt(t, f[string(h[:])].(map[string]any), "downloaded", 1)

	// Announcing left>0 without an event makes it a leecher again.
	l1.event, l1.left = "", 7
	wantPeers(t, "leecher again", announce(t, base, l1), local(1001, 1002))
}

func TestNumWant(t *testing.T) {
	s := New(Config{NumWantDefault: 7, NumWantMax: 10})
	base := start(t, s)
	for i := range 30 {
		announce(t, base, ann{ih: hash(1), id: hash(byte(i)), port: 2000 + i, left: 1})
	}
	tests := []struct {
		extra string
		want  int
	}{
		{"", 7},
		{"&numwant=5", 5},
		{"&numwant=0", 0},
		{"&numwant=1000", 10},
		{"&numwant=-1", 7},
		{"&numwant=lots", 7},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			me := ann{ih: hash(1), id: hash(0), port: 2000, left: 1, extra: tt.extra}
			got := peersOf(t, announce(t, base, me))
			if len(got) != tt.want {
				t.Fatalf("got %d peers, want %d", len(got), tt.want)
			}
			if slices.Contains(got, local(2000)[0]) {
				t.Errorf("peers %v include the asking peer", got)
			}
			if len(slices.Compact(got)) != len(got) {
				t.Errorf("peers %v repeat", got)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	clk := newClock()
	s := New(Config{Interval: 5 * time.Minute, PeerTTL: 10 * time.Minute, Now: clk.Now})
	base := start(t, s)
	a := ann{ih: hash(1), id: hash('a'), port: 1001, left: 1}
	b := ann{ih: hash(1), id: hash('b'), port: 1002, left: 1}
	c := ann{ih: hash(1), id: hash('c'), port: 1003, left: 1}
	other := ann{ih: hash(2), id: hash('o'), port: 1009, left: 1}
	announce(t, base, a)
	announce(t, base, b)
	announce(t, base, other)
	wantStats(t, s, 2, 3)

	clk.Add(6 * time.Minute)
	announce(t, base, a) // a keeps itself alive; b and other do not
	clk.Add(6 * time.Minute)
	m := announce(t, base, c)
	wantPeers(t, "c", m, local(1001))
	wantInt(t, m, "incomplete", 2)
	wantStats(t, s, 2, 3) // other's torrent is untouched until a sweep

	s.Sweep()
	wantStats(t, s, 1, 2)
	clk.Add(11 * time.Minute)
	s.Sweep()
	wantStats(t, s, 0, 0)
}

func TestScrape(t *testing.T) {
	s := New(Config{})
	base := start(t, s)
	announce(t, base, ann{ih: hash(1), id: hash(1), port: 1001, left: 0})
	announce(t, base, ann{ih: hash(1), id: hash(2), port: 1002, left: 3, event: "completed"})
	announce(t, base, ann{ih: hash(1), id: hash(3), port: 1003, left: 3})
	announce(t, base, ann{ih: hash(2), id: hash(4), port: 1004, left: 3})

	q := func(hs ...[20]byte) string {
		v := url.Values{}
		for _, h := range hs {
			v.Add("info_hash", string(h[:]))
		}
		return base + "/scrape?" + v.Encode()
	}
	type counts struct{ complete, downloaded, incomplete int64 }
	tests := []struct {
		name   string
		target string
		want   map[[20]byte]counts
	}{
		{"one", q(hash(1)), map[[20]byte]counts{hash(1): {2, 1, 1}}},
		{"two and an unknown", q(hash(1), hash(2), hash(9)),
			map[[20]byte]counts{hash(1): {2, 1, 1}, hash(2): {0, 0, 1}, hash(9): {}}},
		{"all", base + "/scrape", map[[20]byte]counts{hash(1): {2, 1, 1}, hash(2): {0, 0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, ok := get(t, tt.target)["files"].(map[string]any)
			if !ok || len(files) != len(tt.want) {
				t.Fatalf("files = %q, want %d entries", files, len(tt.want))
			}
			for h, w := range tt.want {
				f, _ := files[string(h[:])].(map[string]any)
				got := counts{f["complete"].(int64), f["downloaded"].(int64), f["incomplete"].(int64)}
				if got != w {
					t.Errorf("files[%x] = %+v, want %+v", h, got, w)
				}
			}
		})
	}
	wantStats(t, s, 2, 4) // a scrape of an unknown torrent creates nothing
}

func TestScrapeAllIsCapped(t *testing.T) {
	s := New(Config{})
	s.mu.Lock()
	for i := range MaxScrape + 5 {
		var h [20]byte
		binary.BigEndian.PutUint32(h[:], uint32(i))
		sw := newSwarm()
		sw.add(&peer{id: h, addr: local(1000)[0], last: time.Now()})
		s.torrents[h] = sw
		s.peers++
	}
	s.mu.Unlock()
	files := get(t, start(t, s)+"/scrape")["files"].(map[string]any)
	if len(files) != MaxScrape {
		t.Errorf("scrape listed %d torrents, want %d", len(files), MaxScrape)
	}
}

func TestFailures(t *testing.T) {
	ok := ann{ih: hash(1), id: hash(2), port: 1001, left: 1}.query()
	tests := []struct {
		name, path, query string
		want              string // in the failure reason
	}{
		{"no info_hash", "/announce", strings.Replace(ok, "info_hash=", "x=", 1), "info_hash: missing"},
		{"short info_hash", "/announce", "info_hash=abc&" + ok, "info_hash: want 20 bytes, got 3"},
		{"long peer_id", "/announce", "peer_id=" + strings.Repeat("p", 21) + "&" + ok, "peer_id: want 20 bytes, got 21"},
		{"port 0", "/announce", "port=0&" + ok, "port: want 1-65535"},
		{"port 65536", "/announce", "port=65536&" + ok, "port: want 1-65535"},
		{"port not a number", "/announce", "port=http&" + ok, "port: want 1-65535"},
		{"no port", "/announce", strings.Replace(ok, "port=", "x=", 1), "port: want 1-65535"},
		{"negative left", "/announce", "left=-1&" + ok, "left: want a non-negative integer"},
		{"no uploaded", "/announce", strings.Replace(ok, "uploaded=", "x=", 1), "uploaded: want a non-negative integer"},
		{"bad event", "/announce", strings.Replace(ok, "event=", "event=bogus", 1), `event: unknown event "bogus"`},
		{"bad escape", "/announce", "info_hash=%zz&" + ok, "query: malformed percent-escape"},
		{"short scrape hash", "/scrape", "info_hash=abc", "info_hash: want 20 bytes, got 3"},
		{"scrape too many", "/scrape", strings.Repeat("info_hash="+esc(awkward)+"&", MaxScrape+1),
			fmt.Sprintf("info_hash: at most %d per scrape", MaxScrape)},
	}
	s := New(Config{})
	base := start(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := get(t, base+tt.path+"?"+tt.query)
			reason, _ := m["failure reason"].(string)
			if !strings.Contains(reason, tt.want) {
				t.Errorf("failure reason = %q, want it to contain %q (reply %q)", reason, tt.want, m)
			}
		})
	}
	wantStats(t, s, 0, 0)
}

func TestAllowList(t *testing.T) {
	s := New(Config{AllowedInfoHashes: map[[20]byte]bool{hash(1): true, hash(3): false}})
	base := start(t, s)
	announce(t, base, ann{ih: hash(1), id: hash('a'), port: 1001, left: 1})
	for _, h := range [][20]byte{hash(2), hash(3)} {
		m := get(t, base+"/announce?"+ann{ih: h, id: hash('a'), port: 1001, left: 1}.query())
		if m["failure reason"] != "info_hash: not allowed on this tracker" {
			t.Errorf("announce of %x: reply %q, want a failure", h, m)
		}
	}
	wantStats(t, s, 1, 1)
	files := get(t, base+"/scrape?info_hash="+esc(hash(1))+
		"&info_hash="+esc(hash(2)))["files"].(map[string]any)
	h := hash(1)
	if _, ok := files[string(h[:])]; !ok || len(files) != 1 {
		t.Errorf("scrape files = %q, want only the allowed torrent", files)
	}
}

func TestLimits(t *testing.T) {
	failure := func(t *testing.T, base string, a ann, want string) {
		t.Helper()
		if m := get(t, base+"/announce?"+a.query()); m["failure reason"] != want {
			t.Errorf("announce %x/%x: reply %q, want failure %q", a.ih[0], a.id[0], m, want)
		}
	}
	t.Run("peers per torrent", func(t *testing.T) {
		s := New(Config{MaxPeersPerTorrent: 2})
		base := start(t, s)
		announce(t, base, ann{ih: hash(1), id: hash(1), port: 1001, left: 1})
		announce(t, base, ann{ih: hash(1), id: hash(2), port: 1002, left: 1})
		failure(t, base, ann{ih: hash(1), id: hash(3), port: 1003, left: 1}, "info_hash: torrent full, 2 peers")
		announce(t, base, ann{ih: hash(1), id: hash(2), port: 1002, left: 1}) // known peers still announce
		announce(t, base, ann{ih: hash(2), id: hash(3), port: 1003, left: 1})
		wantStats(t, s, 2, 3)
	})
	t.Run("torrents, room made by expiry", func(t *testing.T) {
		clk := newClock()
		s := New(Config{MaxTorrents: 1, PeerTTL: time.Minute, Now: clk.Now})
		base := start(t, s)
		announce(t, base, ann{ih: hash(1), id: hash(1), port: 1001, left: 1})
		failure(t, base, ann{ih: hash(2), id: hash(2), port: 1002, left: 1}, "tracker: full, 1 torrents")
		clk.Add(2 * time.Minute)
		announce(t, base, ann{ih: hash(2), id: hash(2), port: 1002, left: 1})
		wantStats(t, s, 1, 1)
	})
	t.Run("peers", func(t *testing.T) {
		s := New(Config{MaxPeers: 2})
		base := start(t, s)
		announce(t, base, ann{ih: hash(1), id: hash(1), port: 1001, left: 1})
		announce(t, base, ann{ih: hash(2), id: hash(2), port: 1002, left: 1})
		failure(t, base, ann{ih: hash(3), id: hash(3), port: 1003, left: 1}, "tracker: full, 2 peers")
		wantStats(t, s, 2, 2)
	})
}

func TestSameAddressNewIDReplaces(t *testing.T) {
	s := New(Config{})
	base := start(t, s)
	announce(t, base, ann{ih: hash(1), id: hash('a'), port: 1001, left: 1})
	other := ann{ih: hash(1), id: hash('o'), port: 1009, left: 1}
	announce(t, base, other)
	// The client at :1001 restarts with a new peer ID: it must not be told about itself.
	wantPeers(t, "restarted", announce(t, base, ann{ih: hash(1), id: hash('b'), port: 1001, left: 1}), local(1009))
	wantPeers(t, "other", announce(t, base, other), local(1001))
	wantStats(t, s, 1, 2)
	// A known peer moving onto an address in use takes it over too.
	announce(t, base, ann{ih: hash(1), id: hash('b'), port: 1009, left: 1})
	wantStats(t, s, 1, 1)
}

func TestHTTPErrors(t *testing.T) {
	base := start(t, New(Config{}))
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/announce/x", http.StatusNotFound},
		{http.MethodPost, "/announce", http.StatusMethodNotAllowed},
		{http.MethodHead, "/scrape", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		})
	}
}

func TestConcurrentAnnounces(t *testing.T) {
	clk := newClock()
	s := New(Config{PeerTTL: time.Minute, Now: clk.Now})
	base := start(t, s)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				a := ann{ih: hash(byte(i % 3)), id: hash(byte(g*20 + i)), port: 1000 + g*20 + i, left: int64(i % 2)}
				if i%5 == 4 {
					a.event = "stopped"
				}
				for _, target := range []string{base + "/announce?" + a.query(), base + "/scrape"} {
					if m, err := fetch(target); err != nil || m["failure reason"] != nil {
						t.Errorf("GET %s: %q, %v", target, m, err)
						return
					}
				}
				if i%7 == 0 {
					s.Sweep()
				}
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	n := 0
	for _, sw := range s.torrents {
		checkSwarm(t, sw)
		n += sw.len()
	}
	s.mu.Unlock()
	wantStats(t, s, 3, n)
	clk.Add(2 * time.Minute)
	s.Sweep()
	wantStats(t, s, 0, 0)
}
