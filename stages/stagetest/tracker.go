package stagetest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/jackpal/bencode-go"
)

// FakeTracker is an HTTP tracker on 127.0.0.1 that answers every announce with a fixed peer
// list (compact, BEP 23) and records the events it was sent.
type FakeTracker struct {
	srv *httptest.Server

	mu        sync.Mutex
	peers     []netip.AddrPort
	announces []Announce
	// Interval is the re-announce interval in seconds sent to clients.
	Interval int
	// Status, when not 0 or 200, is returned instead of an answer (a broken tracker).
	Status int
}

// NewFakeTracker starts a tracker that hands out peers; it stops when the test ends.
func NewFakeTracker(tb testing.TB, peers ...netip.AddrPort) *FakeTracker {
	ft := &FakeTracker{peers: peers, Interval: 1800}
	ft.srv = httptest.NewServer(http.HandlerFunc(ft.serve))
	tb.Cleanup(ft.srv.Close)
	return ft
}

// URL is the announce URL.
func (ft *FakeTracker) URL() string { return ft.srv.URL + "/announce" }

// Announce is what a client reported in one announce (BEP 3).
type Announce struct {
	Event                      string // "started", "completed", "stopped", or "" for a regular one
	Uploaded, Downloaded, Left int64  // -1 when missing or not a number
	Port                       int64  // the port the client listens on; -1 when missing
}

// Events returns the event parameter of every announce so far ("" for regular ones).
func (ft *FakeTracker) Events() []string {
	var ev []string
	for _, a := range ft.Announces() {
		ev = append(ev, a.Event)
	}
	return ev
}

// Announces returns every announce so far, in order.
func (ft *FakeTracker) Announces() []Announce {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]Announce(nil), ft.announces...)
}

func (ft *FakeTracker) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(k string) int64 {
		n, err := strconv.ParseInt(q.Get(k), 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	ft.mu.Lock()
	ft.announces = append(ft.announces, Announce{Event: q.Get("event"),
		Uploaded: num("uploaded"), Downloaded: num("downloaded"), Left: num("left"), Port: num("port")})
	status, peers, interval := ft.Status, ft.peers, ft.Interval
	ft.mu.Unlock()
	if status != 0 && status != http.StatusOK {
		http.Error(w, "broken", status)
		return
	}
	var compact []byte
	for _, p := range peers {
		ip := p.Addr().As4()
		compact = append(compact, ip[:]...)
		compact = append(compact, byte(p.Port()>>8), byte(p.Port()))
	}
	var buf bytes.Buffer
	bencode.Marshal(&buf, map[string]any{"interval": interval, "peers": string(compact)})
	w.Write(buf.Bytes())
}
