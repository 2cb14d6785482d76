package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackpal/bencode-go"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// webFile is a file of webTorrent: its path below the torrent's name, and its size.
type webFile struct {
	path []string
	size int64
}

// webTorrent is a multi-file torrent named name with files at nested paths, its payload
// seeded random data.
func webTorrent(t *testing.T, seed uint64, name string, pieceLen int64, files ...webFile) *stagetest.Torrent {
	t.Helper()
	var total int64
	var list []any
	for _, f := range files {
		var path []any
		for _, c := range f.path {
			path = append(path, c)
		}
		list = append(list, map[string]any{"length": f.size, "path": path})
		total += f.size
	}
	data := make([]byte, total)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var pieces []byte
	for off := int64(0); off < total; off += pieceLen {
		sum := sha1.Sum(data[off:min(off+pieceLen, total)])
		pieces = append(pieces, sum[:]...)
	}
	info := map[string]any{"name": name, "piece length": pieceLen, "pieces": string(pieces), "files": list}
	var raw bytes.Buffer
	if err := bencode.Marshal(&raw, map[string]any{"announce": "http://127.0.0.1:1/announce", "info": info}); err != nil {
		t.Fatal(err)
	}
	m, err := metainfo.Parse(bytes.NewReader(raw.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return &stagetest.Torrent{Meta: m, Raw: raw.Bytes(), Data: data}
}

// webDir writes tor's files as a web seed holds them (no padding; every byte flipped
// when corrupt) in a new directory.
func webDir(t *testing.T, tor *stagetest.Torrent, corrupt bool) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range tor.Meta.Info.Files {
		if !f.OnDisk() {
			continue
		}
		data := bytes.Clone(tor.Data[f.Offset : f.Offset+f.Length])
		if corrupt {
			for i := range data {
				data[i] ^= 0xA5
			}
		}
		name := filepath.Join(append([]string{dir}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// webServer serves h on 127.0.0.1 until the test ends.
func webServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// fastWebSeeds retries at once and drops a web seed after two failures in a row.
var fastWebSeeds = pipeline.WithWebSeedConfig(stages.WebSeedConfig{Backoff: time.Millisecond, MaxFailures: 2, Timeout: 10 * time.Second})

// webRun runs a download of tor into memory with opts and returns the storage, the
// pipeline (for its stats) and Run's error.
func webRun(t *testing.T, tor *stagetest.Torrent, opts ...pipeline.Option) (*stagetest.MemStorage, *pipeline.Pipeline, error) {
	t.Helper()
	store := stagetest.NewMemStorage(tor.Meta.Info.Length)
	opts = append([]pipeline.Option{pipeline.WithStorage(store), withConfig(pipeline.Config{NoListen: true})}, opts...)
	p, err := pipeline.New(tor.Meta, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return store, p, p.Run(ctx)
}

// onEvent calls f with the run's events of type E.
func onEvent[E stages.Event](f func(E)) pipeline.Option {
	return pipeline.WithEvents(func(e stages.Event) {
		if e, ok := e.(E); ok {
			f(e)
		}
	})
}

// TestWebSeedAlone downloads from a web seed and no peer: single-file torrents by the
// file's URL and by its folder's, a multi-file torrent with nested directories and names
// that need escaping, and one with BEP 47 padding, which the server does not have.
func TestWebSeedAlone(t *testing.T) {
	single := stagetest.NewTorrent(t, 90, "single file #1 ü%.bin", 32<<10, 300_001)
	nested := webTorrent(t, 91, "web seed ü&co", 32<<10,
		webFile{[]string{"a b.bin"}, 70_000},
		webFile{[]string{"sub dir", "deeper", "c#d%e?.bin"}, 100_003},
		webFile{[]string{"sub dir", "empty"}, 0},
		webFile{[]string{"x+y=z;1,2.bin"}, 5},
		webFile{[]string{"Ωmega", "last.bin"}, 40_000})
	padded := paddedTorrent(t)
	for _, tc := range []struct {
		name string
		tor  *stagetest.Torrent
		url  func(srv string) string
	}{
		{"single-file", single, func(srv string) string { return srv + "/" + url.PathEscape(single.Meta.Info.Name) }},
		{"single-file folder", single, func(srv string) string { return srv + "/" }},
		{"multi-file nested", nested, func(srv string) string { return srv }},
		{"padding", padded, func(srv string) string { return srv + "/" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			srv := webServer(t, http.FileServer(http.Dir(webDir(t, tc.tor, false))))
			store, p, err := webRun(t, tc.tor, pipeline.WithPeerSource(stages.StaticPeers(nil)),
				pipeline.WithWebSeeds(tc.url(srv.URL)), fastWebSeeds)
			if err != nil {
				t.Fatalf("Run() = %v, want nil", err)
			}
			if !bytes.Equal(store.Bytes(), tc.tor.Data) {
				t.Fatal("downloaded bytes differ from the payload")
			}
			st := p.WebSeedStats()
			if len(st) != 1 || st[0].Bytes == 0 || st[0].Bytes != p.Stats().Downloaded || st[0].Failures != 0 {
				t.Errorf("WebSeedStats() = %+v, want every byte downloaded (%d) from it, no failure", st, p.Stats().Downloaded)
			}
		})
	}
}

// TestWebSeedBesidePeer: a web seed and a peer both contribute to one download. The peer
// is dialed once the web seed's first piece is verified, and the server holds every
// request after the first until the peer has served a block, so each has a share however
// fast either is.
func TestWebSeedBesidePeer(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 92, "beside.bin", 32<<10, 1<<20)
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	files := http.FileServer(http.Dir(webDir(t, tor, false)))
	var requests atomic.Int64
	srv := webServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for n := requests.Add(1); n > 1 && peer.Served.Load() == 0; {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
		files.ServeHTTP(w, r)
	}))
	gate := make(chan struct{})
	var once atomic.Bool
	store, p, err := webRun(t, tor,
		pipeline.WithPeerSource(gatedPeers{then: []netip.AddrPort{peer.Addr()}, gate: gate}),
		pipeline.WithWebSeeds(srv.URL+"/"),
		pipeline.WithWebSeedConfig(stages.WebSeedConfig{RequestBytes: 32 << 10}),
		onEvent(func(stages.PieceVerified) {
			if once.CompareAndSwap(false, true) {
				close(gate)
			}
		}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) {
		t.Fatal("downloaded bytes differ from the payload")
	}
	st := p.WebSeedStats()[0]
	t.Logf("web seed: %d bytes in %d requests; peer: %d blocks", st.Bytes, st.Requests, peer.Served.Load())
	if st.Bytes == 0 || peer.Served.Load() == 0 {
		t.Errorf("web seed sent %d bytes, the peer %d blocks; want both > 0", st.Bytes, peer.Served.Load())
	}
	if st.Bytes+peer.Served.Load()*16<<10 < tor.Meta.Info.Length {
		t.Errorf("web seed %d bytes + peer %d blocks < %d bytes", st.Bytes, peer.Served.Load(), tor.Meta.Info.Length)
	}
}

// TestWebSeedFailing: a web seed that fails is dropped, and the download completes from a
// peer, dialed only once the web seed is dropped (or, for the one that hangs, has timed
// out once), so that the web seed's failure is certain to be seen.
func TestWebSeedFailing(t *testing.T) {
	tor := stagetest.NewTorrent(t, 93, "failing.bin", 16<<10, 400_000)
	for _, tc := range []struct {
		name    string
		handler func(t *testing.T, release <-chan struct{}) http.Handler
		cfg     stages.WebSeedConfig
		dropped bool // the peer waits for WebSeedDropped, else for WebSeedFailed
		check   func(t *testing.T, st stages.WebSeedStats, ev *eventLog)
	}{
		{"404", func(*testing.T, <-chan struct{}) http.Handler { return http.NotFoundHandler() },
			stages.WebSeedConfig{Backoff: time.Millisecond, MaxFailures: 2}, true,
			func(t *testing.T, st stages.WebSeedStats, _ *eventLog) {
				if st.Bytes != 0 || st.Failures != 2 || st.Dropped == nil {
					t.Errorf("WebSeedStats() = %+v, want no bytes, 2 failures, dropped", st)
				}
			}},
		{"wrong bytes", func(t *testing.T, _ <-chan struct{}) http.Handler {
			return http.FileServer(http.Dir(webDir(t, tor, true)))
		},
			stages.WebSeedConfig{RequestBytes: 16 << 10}, true,
			func(t *testing.T, st stages.WebSeedStats, ev *eventLog) {
				if st.Bytes == 0 || !errors.Is(st.Dropped, stages.ErrWebSeedBanned) {
					t.Errorf("WebSeedStats() = %+v, want bytes sent, then banned", st)
				}
				banned := 0
				for _, e := range ev.all() {
					if b, ok := e.(stages.PeerBanned); ok && b.Addr == st.Addr {
						banned++
					}
				}
				if banned != 1 {
					t.Errorf("%d PeerBanned events for the web seed %v, want 1", banned, st.Addr)
				}
			}},
		{"hang", func(_ *testing.T, release <-chan struct{}) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
		}, stages.WebSeedConfig{Timeout: 50 * time.Millisecond, Backoff: time.Millisecond}, false,
			func(t *testing.T, st stages.WebSeedStats, _ *eventLog) {
				if st.Bytes != 0 || st.Failures == 0 {
					t.Errorf("WebSeedStats() = %+v, want no bytes, timeouts", st)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
			release := make(chan struct{}) // ends the requests of a handler that hangs
			srv := webServer(t, tc.handler(t, release))
			t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handlers
			gate := make(chan struct{})
			var once atomic.Bool
			ev := &eventLog{}
			store, p, err := webRun(t, tor,
				pipeline.WithPeerSource(gatedPeers{then: []netip.AddrPort{peer.Addr()}, gate: gate}),
				pipeline.WithWebSeeds(srv.URL+"/"), pipeline.WithWebSeedConfig(tc.cfg),
				pipeline.WithEvents(func(e stages.Event) {
					ev.add(e)
					_, dropped := e.(stages.WebSeedDropped)
					_, failed := e.(stages.WebSeedFailed)
					if (dropped || failed && !tc.dropped) && once.CompareAndSwap(false, true) {
						close(gate)
					}
				}))
			if err != nil {
				t.Fatalf("Run() = %v, want nil", err)
			}
			if !bytes.Equal(store.Bytes(), tor.Data) {
				t.Fatal("downloaded bytes differ from the payload")
			}
			tc.check(t, p.WebSeedStats()[0], ev)
		})
	}
}

// TestWebSeedOnlyTorrent: a torrent whose only source is its url-list (no tracker, no
// peer given, no DHT) is accepted by New and downloads from the web seed.
func TestWebSeedOnlyTorrent(t *testing.T) {
	checkGoroutines(t)
	tor := stagetest.NewTorrent(t, 93, "urlonly.bin", 32<<10, 200_003)
	srv := webServer(t, http.FileServer(http.Dir(webDir(t, tor, false))))
	m := *tor.Meta
	m.Announce, m.AnnounceList, m.URLList = "", nil, []string{srv.URL + "/"}
	if len(m.Trackers()) != 0 {
		t.Fatalf("the torrent still has trackers: %v", m.Trackers())
	}
	store, p, err := webRun(t, &stagetest.Torrent{Meta: &m, Raw: tor.Raw, Data: tor.Data}, fastWebSeeds)
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if !bytes.Equal(store.Bytes(), tor.Data) || p.Stats().Pieces != m.Info.NumPieces() {
		t.Fatal("downloaded bytes differ from the payload")
	}
	if _, err := pipeline.New(&m, pipeline.WithWebSeeds()); err == nil {
		t.Error("New() of a torrent with no tracker, web seeds off and no peer = nil error, want one")
	}
}
