package main

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/stages"
)

var jsonPeer = netip.MustParseAddrPort("10.0.0.1:6881")

// jsonEventCases are every stages.Event type and its --json line after "event"; the
// README's table documents the same fields.
var jsonEventCases = []struct {
	e    stages.Event
	want string
}{
	{stages.PeerConnected{Addr: jsonPeer, Incoming: true}, `"event":"peer_connected","peer":"10.0.0.1:6881","incoming":true}`},
	{stages.PeerDropped{Addr: jsonPeer, Reason: errors.New("a->b: eof"), Fault: true}, `"event":"peer_dropped","peer":"10.0.0.1:6881","reason":"a->b: eof","fault":true}`},
	{stages.PeerDropped{Addr: jsonPeer}, `"event":"peer_dropped","peer":"10.0.0.1:6881","reason":"","fault":false}`},
	{stages.PeerSnubbed{Addr: jsonPeer}, `"event":"peer_snubbed","peer":"10.0.0.1:6881"}`},
	{stages.DialFailed{Addr: jsonPeer, Err: errors.New("handshake: i/o timeout")}, `"event":"dial_failed","peer":"10.0.0.1:6881","error":"handshake: i/o timeout"}`},
	{stages.HandshakeFailed{Addr: jsonPeer, Err: errors.New("handshake: info hash mismatch")}, `"event":"handshake_failed","peer":"10.0.0.1:6881","error":"handshake: info hash mismatch"}`},
	{stages.PeerBanned{Addr: jsonPeer, Reason: "corrupt piece 3"}, `"event":"peer_banned","peer":"10.0.0.1:6881","reason":"corrupt piece 3"}`},
	{stages.PieceVerified{Piece: 7}, `"event":"piece_verified","piece":7}`},
	{stages.PieceFailed{Piece: 0}, `"event":"piece_failed","piece":0}`},
	{stages.TrackerReply{URL: "http://t/announce", Tier: 0, Peers: 50, Seeders: 7, Leechers: 3, Interval: time.Hour}, `"event":"tracker_reply","url":"http://t/announce","tier":0,"peers":50,"seeders":7,"leechers":3}`},
	{stages.TrackerFailed{URL: "udp://t:6969/announce", Tier: 1, Err: errors.New("no reply")}, `"event":"tracker_failed","url":"udp://t:6969/announce","tier":1,"error":"no reply"}`},
	{stages.PeerListFull{Discarded: 300}, `"event":"peer_list_full","discarded":300}`},
	{stages.Resumed{Pieces: 12, FromRecord: true}, `"event":"resumed","pieces":12,"from_record":true}`},
	{stages.MetadataReceived{Peer: jsonPeer, Size: 12345}, `"event":"metadata_received","peer":"10.0.0.1:6881","size":12345}`},
	{stages.Completed{}, `"event":"completed"}`},
	{stages.SeedingDone{Limit: stages.SeedRatio, Uploaded: 1 << 20}, `"event":"seeding_done","limit":"ratio","uploaded":1048576}`},
	{stages.Failed{Err: errors.New("no peers")}, `"event":"failed","error":"no peers"}`},
	{stages.WebSeedFailed{URL: "http://w/x", Err: errors.New("404")}, `"event":"web_seed_failed","url":"http://w/x","error":"404"}`},
	{stages.WebSeedDropped{URL: "http://w/x", Addr: jsonPeer, Reason: errors.New("5 failures")}, `"event":"web_seed_dropped","url":"http://w/x","peer":"10.0.0.1:6881","reason":"5 failures"}`},
}

// TestEventJSON encodes each event type: one JSON object per line, its fields in the
// documented order.
func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 5, time.UTC)
	for _, tc := range jsonEventCases {
		name, fields := eventJSON(tc.e)
		got := string(encodeObject(at, "ab", name, fields))
		want := `{"time":"2026-05-01T12:00:00.000000005Z","torrent":"ab",` + tc.want + "\n"
		if got != want {
			t.Errorf("%T: %s, want %s", tc.e, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%T: %s is not JSON", tc.e, got)
		}
	}
}

// TestEventJSONCoversEvents: every type of stages/events.go with an event method has a
// case in jsonEventCases (and so, unless it comes out by eventFields, in eventJSON and
// in the README's table).
func TestEventJSONCoversEvents(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../stages/events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tc := range jsonEventCases {
		covered[reflect.TypeOf(tc.e).Name()] = true
	}
	n := 0
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "event" || fd.Recv == nil {
			continue
		}
		n++
		typ := fd.Recv.List[0].Type
		if st, ok := typ.(*ast.StarExpr); ok {
			typ = st.X
		}
		if name := typ.(*ast.Ident).Name; !covered[name] {
			t.Errorf("stages.%s has no --json case: add it to eventJSON (json.go), jsonEventCases and README.md's table", name)
		}
	}
	if n == 0 {
		t.Fatal("no event methods found in stages/events.go")
	}
}

// someEvent stands for an event type added to stages without a case in eventJSON
// (stages.Event has an unexported method: only stages can add one).
type someEvent struct {
	WebSeedURL string
	Addr       netip.AddrPort
	Err        error
	Reason     error
	hidden     int
}

func TestEventFieldsFallback(t *testing.T) {
	name, fields := eventFields(someEvent{WebSeedURL: "u", Addr: jsonPeer, Err: errors.New("x"), hidden: 1})
	got := string(encodeObject(time.Time{}, "", name, fields))
	if want := `"event":"some_event","web_seed_url":"u","addr":"10.0.0.1:6881","err":"x","reason":""}`; !strings.HasSuffix(got, want+"\n") {
		t.Errorf("eventFields: %s, want ...%s", got, want)
	}
}
