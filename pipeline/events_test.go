package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// eventLog records a run's typed events (pipeline.WithEvents).
type eventLog struct {
	mu sync.Mutex
	es []stages.Event
}

func (l *eventLog) add(e stages.Event) {
	l.mu.Lock()
	l.es = append(l.es, e)
	l.mu.Unlock()
}

func (l *eventLog) all() []stages.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stages.Event(nil), l.es...)
}

// eventsOf returns l's events of type E that match.
func eventsOf[E stages.Event](l *eventLog, match func(E) bool) []E {
	var out []E
	for _, e := range l.all() {
		if e, ok := e.(E); ok && match(e) {
			out = append(out, e)
		}
	}
	return out
}

// peerEvents formats l's events about peers (all but pieces verified), for failure
// messages.
func peerEvents(l *eventLog) string {
	var b strings.Builder
	for _, e := range l.all() {
		switch e.(type) {
		case stages.PieceVerified, stages.PieceFailed:
			continue
		}
		fmt.Fprintf(&b, "\n\t%T%+v", e, e)
	}
	return b.String()
}

// TestEvents: a download from an honest peer and a peer whose every block is corrupt
// reports each piece verified exactly once, the corrupt pieces failed, the corrupt peer
// banned once it has sent its share of bad pieces, and completion once, in typed events.
func TestEvents(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 71, "events", 32<<10, 600_001)
	n := tor.Meta.Info.NumPieces()
	honest := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	// The corrupt peer alone first, so that it is blamed for whole pieces and banned, then
	// the honest one.
	gate := make(chan struct{})
	bad := stagetest.NewHostilePeer(t, tor, stagetest.RightHandshake, stagetest.CorruptData)
	log := &eventLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	p, err := pipeline.New(tor.Meta, pipeline.WithStorage(store),
		pipeline.WithPeerSource(gatedPeers{first: []netip.AddrPort{bad.Addr()}, gate: gate, then: []netip.AddrPort{honest.Addr()}}),
		pipeline.WithEvents(func(e stages.Event) {
			log.add(e)
			if b, ok := e.(stages.PeerBanned); ok && b.Addr == bad.Addr() {
				close(gate)
			}
		}),
		pipeline.WithConfig(pipeline.Config{NoListen: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	verified := make(map[int]int)
	failed, banned, completed := 0, 0, 0
	connected, droppedForFault := map[netip.AddrPort]int{}, map[netip.AddrPort]bool{}
	for _, e := range log.all() {
		switch e := e.(type) {
		case stages.PieceVerified:
			verified[e.Piece]++
		case stages.PieceFailed:
			failed++
		case stages.PeerBanned:
			banned++
			if e.Addr != bad.Addr() {
				t.Errorf("banned %v, want only the corrupt peer %v", e.Addr, bad.Addr())
			}
		case stages.Completed:
			completed++
		case stages.Failed:
			t.Errorf("a Failed event (%v) from a run that completed", e.Err)
		case stages.PeerConnected:
			connected[e.Addr]++
		case stages.PeerDropped:
			if e.Fault {
				droppedForFault[e.Addr] = true
			}
		}
	}
	if connected[bad.Addr()] != 1 || connected[honest.Addr()] != 1 {
		t.Errorf("PeerConnected events: %v, want the corrupt and the honest peer once each", connected)
	}
	if !droppedForFault[bad.Addr()] || droppedForFault[honest.Addr()] {
		t.Errorf("dropped for a fault: %v, want the corrupt peer only", droppedForFault)
	}
	for i := range n {
		if verified[i] != 1 {
			t.Errorf("piece %d verified %d times in the events, want once", i, verified[i])
		}
	}
	if failed == 0 || banned != 1 || completed != 1 {
		t.Errorf("events: %d pieces failed, %d peers banned, %d completions; want some, 1, 1", failed, banned, completed)
	}
}
