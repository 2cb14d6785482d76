package trackerd

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/tracker"
)

// TestTrackerClient announces with the project's own client (internal/tracker), which
// escapes binary IDs byte by byte and asks for compact peers.
func TestTrackerClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s := New(Config{Interval: 10 * time.Minute, AllowedInfoHashes: map[[20]byte]bool{awkward: true}})
	announceURL := start(t, s) + "/announce"

	req := func(id byte, port uint16, left int64, ev tracker.Event) tracker.Request {
		return tracker.Request{InfoHash: awkward, PeerID: hash(id), Port: port, Left: left, Event: ev, Key: "k+y"}
	}
	if _, err := tracker.Announce(ctx, client, announceURL, req('s', 6881, 0, tracker.EventStarted)); err != nil {
		t.Fatal(err)
	}
	r, err := tracker.Announce(ctx, client, announceURL, req('l', 6882, 1000, tracker.EventStarted))
	if err != nil {
		t.Fatal(err)
	}
	if want := local(6881); !slices.Equal(r.Peers, want) {
		t.Errorf("leecher got peers %v, want %v", r.Peers, want)
	}
	if r.Interval != 10*time.Minute || r.MinInterval != 5*time.Minute || r.Complete != 1 || r.Incomplete != 1 {
		t.Errorf("reply = %+v, want interval 10m, min interval 5m, 1 seeder, 1 leecher", r)
	}

	// A numwant the client sends is honoured; the seeder sees the leecher only.
	sr := req('s', 6881, 0, tracker.EventNone)
	sr.NumWant = 1
	if r, err = tracker.Announce(ctx, client, announceURL, sr); err != nil {
		t.Fatal(err)
	}
	if want := local(6882); !slices.Equal(r.Peers, want) {
		t.Errorf("seeder got peers %v, want %v", r.Peers, want)
	}

	if _, err := tracker.Announce(ctx, client, announceURL, req('l', 6882, 0, tracker.EventStopped)); err != nil {
		t.Fatal(err)
	}
	wantStats(t, s, 1, 1)

	other := req('x', 6883, 1, tracker.EventStarted)
	other.InfoHash = hash(7)
	_, err = tracker.Announce(ctx, client, announceURL, other)
	var fe *tracker.FailureError
	if !errors.As(err, &fe) || fe.Reason != "info_hash: not allowed on this tracker" {
		t.Errorf("announce of a torrent not allowed: %v, want a *tracker.FailureError", err)
	}
}

// TestTrackerClientIPv6 announces over [::1] when the host has IPv6 loopback, so that the
// peer's address comes from the connection and reaches the other side in peers6.
func TestTrackerClientIPv6(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	base := startOn(t, "[::1]:0", New(Config{}))
	if base == "" {
		t.Skip("no IPv6 loopback")
	}
	ih := hash(6)
	if _, err := tracker.Announce(ctx, client, base+"/announce",
		tracker.Request{InfoHash: ih, PeerID: hash(1), Port: 7001, Left: 1}); err != nil {
		t.Fatal(err)
	}
	r, err := tracker.Announce(ctx, client, base+"/announce",
		tracker.Request{InfoHash: ih, PeerID: hash(2), Port: 7002, Left: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("[::1]:7001")}; !slices.Equal(r.Peers, want) {
		t.Errorf("peers = %v, want %v", r.Peers, want)
	}
}
