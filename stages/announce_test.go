package stages

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bitstorm/bitstorm/internal/tracker"
	"github.com/bitstorm/bitstorm/internal/trackerd"
	"github.com/reugn/go-streams"
)

// serveUDPTracker serves td over UDP only, on 127.0.0.1, until the test ends, and returns
// its announce URL.
func serveUDPTracker(t *testing.T, td *trackerd.Server) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- td.ServeUDP(ctx, pc) }()
	t.Cleanup(func() { cancel(); <-done; pc.Close() })
	return "udp://" + pc.LocalAddr().String() + "/announce"
}

// deadUDP returns a udp tracker URL where nothing listens: the kernel refuses at once.
func deadUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return "udp://" + pc.LocalAddr().String() + "/announce"
}

// failingHTTP returns an http tracker that answers 503 and counts the requests.
func failingHTTP(t *testing.T, hits *atomic.Int32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/announce"
}

// fastUDP retransmits after milliseconds: 5 ms * (2^13-1) is 41 s of patience.
func fastUDP() *tracker.UDPClient {
	return &tracker.UDPClient{Retransmit: 5 * time.Millisecond, MaxRetransmits: 12}
}

var testHash = [20]byte{'u', 'd', 'p', ' ', 't', 'i', 'e', 'r', 's'}

// seedAt registers a seeder at 127.0.0.1:port with the tracker at u.
func seedAt(t *testing.T, u string, port uint16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := fastUDP().Announce(ctx, u, tracker.Request{InfoHash: testHash, PeerID: [20]byte{'s', byte(port)}, Port: port}); err != nil {
		t.Fatal(err)
	}
}

// TestTrackerUDPBehindDeadTier runs the Tracker source against the embedded tracker
// serving UDP only, behind a first tier whose trackers (one udp, one http) are dead:
// the announce reaches the live tracker, whose peer comes out, and the stopped announce
// at the end reaches it too.
func TestTrackerUDPBehindDeadTier(t *testing.T) {
	td := trackerd.New(trackerd.Config{})
	live := serveUDPTracker(t, td)
	seedAt(t, live, 7001)
	var hits atomic.Int32
	src := &Tracker{
		Tiers:       [][]string{{deadUDP(t), failingHTTP(t, &hits)}, {live}},
		UDP:         fastUDP(),
		Timeout:     30 * time.Second,
		StopTimeout: 30 * time.Second,
	}
	failed := make(chan error, 1)
	sw := NewSwarm(testHash, [20]byte{'l'}, 7002, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(err error) { failed <- err })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := src.Open(ctx, sw).Out()
	select {
	case e := <-out:
		if a := e.(*PeerAddr).Addr; a != netip.MustParseAddrPort("127.0.0.1:7001") {
			t.Errorf("first peer %v, want the seeder 127.0.0.1:7001", a)
		}
	case err := <-failed:
		t.Fatalf("run failed: %v", err)
	case <-ctx.Done():
		t.Fatal("no peer within 30s")
	}
	if _, peers := td.Stats(); peers != 2 {
		t.Errorf("tracker holds %d peers, want 2 (the seeder and us)", peers)
	}
	if hits.Load() == 0 {
		t.Error("the dead http tracker of the first tier was never tried")
	}
	cancel()
	for range out { // closes after the stopped announce
	}
	if _, peers := td.Stats(); peers != 1 {
		t.Errorf("tracker holds %d peers after the run, want 1: stopped did not arrive", peers)
	}
}

// TestAnnounceTiersMixedTier tries one tier of dead udp, dead http and live udp trackers,
// in that order, then one of dead udp and live http: each announce reaches the live one,
// which moves to the front of its tier (BEP 12), so the next announce goes to it first.
func TestAnnounceTiersMixedTier(t *testing.T) {
	td := trackerd.New(trackerd.Config{})
	liveUDP := serveUDPTracker(t, td)
	seedAt(t, liveUDP, 7001)
	httpSrv := httptest.NewServer(td)
	t.Cleanup(httpSrv.Close)
	liveHTTP := httpSrv.URL + "/announce"
	var hits atomic.Int32
	deadU, deadH := deadUDP(t), failingHTTP(t, &hits)
	src := &Tracker{Timeout: 30 * time.Second}
	c := &tracker.Client{HTTP: &http.Client{Timeout: 30 * time.Second}, UDP: fastUDP()}
	req := tracker.Request{InfoHash: testHash, PeerID: [20]byte{'l'}, Port: 7002, Left: 1}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	var failed []TrackerFailed // announceTiers reports from the calling goroutine
	sw := &Swarm{Events: func(e Event) {
		if f, ok := e.(TrackerFailed); ok {
			failed = append(failed, f)
		}
	}}
	failedURLs := func() []string { // "TIER URL" of each
		var urls []string
		for _, f := range failed {
			if f.Err == nil {
				t.Errorf("%+v, want an error", f)
			}
			urls = append(urls, fmt.Sprint(f.Tier, " ", f.URL))
		}
		failed = nil
		return urls
	}

	tiers := [][]string{{deadU, deadH, liveUDP}}
	for round := range 2 {
		resp, err := src.announceTiers(ctx, sw, c, tiers, req)
		if err != nil || !slices.Equal(resp.Peers, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7001")}) {
			t.Fatalf("round %d: announceTiers = %+v, %v, want the seeder", round, resp, err)
		}
		if want := []string{liveUDP, deadU, deadH}; !slices.Equal(tiers[0], want) {
			t.Errorf("round %d: tier = %q, want %q", round, tiers[0], want)
		}
		want := []string{"0 " + deadU, "0 " + deadH} // the first round; the second goes to the live one first
		if round == 1 {
			want = nil
		}
		if got := failedURLs(); !slices.Equal(got, want) {
			t.Errorf("round %d: TrackerFailed for %q, want %q", round, got, want)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("the dead http tracker was tried %d times, want once: the live one moved to the front", hits.Load())
	}

	tiers = [][]string{{deadU, liveHTTP}}
	resp, err := src.announceTiers(ctx, sw, c, tiers, req)
	if err != nil || len(resp.Peers) != 1 || tiers[0][0] != liveHTTP {
		t.Errorf("announceTiers over http after a dead udp = %+v, %v, tier %q", resp, err, tiers[0])
	}
	if got := failedURLs(); !slices.Equal(got, []string{"0 " + deadU}) {
		t.Errorf("TrackerFailed for %q, want the dead udp tracker only", got)
	}

	tiers = [][]string{{deadU}, {deadH}}
	if _, err := src.announceTiers(ctx, sw, c, tiers, req); err == nil {
		t.Error("announceTiers with only dead trackers succeeded")
	}
	if got, want := failedURLs(), []string{"0 " + deadU, "1 " + deadH}; !slices.Equal(got, want) {
		t.Errorf("TrackerFailed for %q, want %q", got, want)
	}
}

func TestUsableTiers(t *testing.T) {
	in := [][]string{
		{"wss://t.example/announce", "udp://t.example:6969/announce"},
		{"dht://x", "::not a url"},
		{"http://a/announce", "https://b/announce", "UDP://c:1"},
	}
	got := usableTiers(in, slog.New(slog.NewTextHandler(io.Discard, nil)))
	want := [][]string{{"udp://t.example:6969/announce"}, {"http://a/announce", "https://b/announce", "UDP://c:1"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("usableTiers = %q, want %q", got, want)
	}
	shuffleTiers(got)
	if in[2][0] != "http://a/announce" || in[2][2] != "UDP://c:1" {
		t.Errorf("shuffling the kept tiers changed the torrent's: %q", in[2])
	}
}

// TestShuffleTiers checks that shuffling keeps the tiers in order and each tier's
// trackers, and that every tracker of a tier comes first now and then (BEP 12).
func TestShuffleTiers(t *testing.T) {
	first := map[string]int{}
	for range 300 {
		tiers := shuffleTiers([][]string{{"a"}, {"b", "c", "d"}, {"e", "f"}})
		if tiers[0][0] != "a" || !slices.Equal(slices.Sorted(slices.Values(tiers[1])), []string{"b", "c", "d"}) ||
			!slices.Equal(slices.Sorted(slices.Values(tiers[2])), []string{"e", "f"}) {
			t.Fatalf("shuffleTiers = %q", tiers)
		}
		first[tiers[1][0]]++
		first[tiers[2][0]]++
	}
	for _, u := range []string{"b", "c", "d", "e", "f"} {
		if first[u] == 0 { // each has a chance of 1/3 or 1/2 per shuffle
			t.Errorf("%s never came first in 300 shuffles: %v", u, first)
		}
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// scriptedTracker is an HTTP tracker without a network, for testing/synctest: it answers
// every announce with body and records when each came and its event.
type scriptedTracker struct {
	body   string
	mu     sync.Mutex
	at     []time.Time
	events []string
}

func (st *scriptedTracker) client() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		st.mu.Lock()
		st.at = append(st.at, time.Now())
		st.events = append(st.events, r.URL.Query().Get("event"))
		st.mu.Unlock()
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(st.body)), ContentLength: int64(len(st.body)), Request: r}, nil
	})}
}

// open runs a Tracker source of st for a swarm until ctx ends.
func (st *scriptedTracker) open(ctx context.Context) (*Swarm, streams.Source) {
	sw := NewSwarm(testHash, [20]byte{'s'}, 7003, slog.New(slog.NewTextHandler(io.Discard, nil)), func(error) {})
	return sw, (&Tracker{Tiers: [][]string{{"http://tracker.test/announce"}}, Client: st.client()}).Open(ctx, sw)
}

// TestTrackerIntervalJitter runs the Tracker source for a fake hour against a tracker
// asking for an announce every 100 s: each re-announce comes at least 100 s and at most
// 110 s after the one before, and not all at the same spacing, so that torrents started
// together drift apart.
func TestTrackerIntervalJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &scriptedTracker{body: "d8:intervali100e5:peers0:e"}
		ctx, cancel := context.WithCancel(t.Context())
		_, src := tr.open(ctx)
		time.Sleep(time.Hour)
		synctest.Wait()
		cancel()
		for range src.Out() {
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		at := tr.at
		if len(at) < 30 {
			t.Fatalf("%d announces in an hour at 100 s intervals, want at least 30", len(at))
		}
		gaps := map[time.Duration]bool{}
		for i := 1; i < len(at)-1; i++ { // the last is the stopped announce
			gap := at[i].Sub(at[i-1])
			if gap < 100*time.Second || gap > 110*time.Second {
				t.Errorf("announce %d came %v after the one before, want 100 s to 110 s", i, gap)
			}
			gaps[gap] = true
		}
		if len(gaps) < 2 {
			t.Errorf("every re-announce came at the same spacing %v: no jitter", gaps)
		}
	})
}

// TestTrackerReannounce: Swarm.Reannounce has the Tracker source announce at once, not
// at the tracker's hour.
func TestTrackerReannounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &scriptedTracker{body: "d8:intervali3600e5:peers0:e"}
		ctx, cancel := context.WithCancel(t.Context())
		sw, src := tr.open(ctx)
		synctest.Wait() // started
		time.Sleep(time.Minute)
		sw.Reannounce()
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		cancel()
		for range src.Out() {
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		at, events := tr.at, tr.events
		// started at 0, the reannounce at 1 min, stopped at 2 min: nothing at the hour.
		if len(at) != 3 || at[1].Sub(at[0]) != time.Minute || events[0] != "started" || events[1] != "" || events[2] != "stopped" {
			t.Errorf("announces %v with events %q, want started, one re-announce a minute later, then stopped", at, events)
		}
	})
}
