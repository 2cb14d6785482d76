package stagetest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/jackpal/bencode-go"
)

// FakeTracker is an HTTP tracker on 127.0.0.1 that answers every announce with a fixed peer
// list (compact, BEP 23) and records the events it was sent.
type FakeTracker struct {
	srv *httptest.Server

	mu     sync.Mutex
	peers  []netip.AddrPort
	events []string
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

// Events returns the event parameter of every announce so far ("" for regular ones).
func (ft *FakeTracker) Events() []string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]string(nil), ft.events...)
}

func (ft *FakeTracker) serve(w http.ResponseWriter, r *http.Request) {
	ft.mu.Lock()
	ft.events = append(ft.events, r.URL.Query().Get("event"))
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
