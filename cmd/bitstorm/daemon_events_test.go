package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/transmission"
)

// stubBackend answers torrent-get and session-stats with one torrent whose progress the
// test sets; the event streams call nothing else.
type stubBackend struct {
	transmission.Backend
	mu   sync.Mutex
	left int64
}

func (b *stubBackend) setLeft(n int64) {
	b.mu.Lock()
	b.left = n
	b.mu.Unlock()
}

func (b *stubBackend) Torrents() []*transmission.Torrent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return []*transmission.Torrent{{ID: 1, Name: "stub", HasMetadata: true, Status: transmission.StatusDownload,
		TotalSize: 1000, SizeWhenDone: 1000, LeftUntilDone: b.left}}
}

func (b *stubBackend) Stats() transmission.SessionStats {
	return transmission.SessionStats{TorrentCount: 1, DownloadSpeed: 500}
}

// eventsServer serves webHandler over a stub backend on 127.0.0.1, as the daemon does:
// the streams end when the server shuts down.
func eventsServer(t *testing.T, b transmission.Backend) (*httptest.Server, *eventStreams, *transmission.Server) {
	t.Helper()
	rpc := transmission.NewServer(transmission.Config{Backend: b})
	es := newEventStreams(rpc)
	srv := httptest.NewUnstartedServer(webHandler(rpc, es))
	srv.Config.RegisterOnShutdown(es.close)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, es, rpc
}

// sseReader reads a stream's events.
type sseReader struct {
	resp *http.Response
	r    *bufio.Reader
}

func openEvents(t *testing.T, ctx context.Context, base, sid, fields string) *sseReader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+eventsPath+"?session-id="+url.QueryEscape(sid)+"&fields="+fields, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s, want 200 text/event-stream", eventsPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseReader{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the data of the next event, skipping comments and the retry field.
func (s *sseReader) next() (string, error) {
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if blank, err := s.r.ReadString('\n'); err != nil || blank != "\n" {
				return "", errors.New("an event of more than one line")
			}
			return strings.TrimSuffix(data, "\n"), nil
		}
	}
}

// eventOf decodes an event's data.
func eventOf(t *testing.T, data string) (torrents []map[string]any, stats map[string]any) {
	t.Helper()
	var ev struct {
		List struct {
			Arguments struct {
				Torrents []map[string]any `json:"torrents"`
			} `json:"arguments"`
			Result string `json:"result"`
		} `json:"list"`
		Stats struct {
			Arguments map[string]any `json:"arguments"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.List.Result != "success" {
		t.Fatalf("event %s: %v", data, err)
	}
	return ev.List.Arguments.Torrents, ev.Stats.Arguments
}

// waitStreams waits until es serves n streams (bounded by ctx).
func waitStreams(t *testing.T, ctx context.Context, es *eventStreams, n int32) {
	t.Helper()
	for es.live.Load() != n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d event streams served, want %d", es.live.Load(), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestEventStream: a stream sends the list with the fields asked and the totals, then
// an event when the list changes; it ends when its client goes away, and when the server
// shuts down, whose Shutdown then does not wait for it; no goroutine is left.
func TestEventStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	base := runtime.NumGoroutine()
	b := &stubBackend{left: 1000}
	srv, es, rpc := eventsServer(t, b)

	cctx, hangUp := context.WithCancel(ctx)
	s := openEvents(t, cctx, srv.URL, rpc.SessionID(), "id,percentDone,nothing")
	data, err := s.next()
	if err != nil {
		t.Fatal(err)
	}
	torrents, stats := eventOf(t, data)
	if len(torrents) != 1 || len(torrents[0]) != 2 || torrents[0]["id"] != 1.0 || torrents[0]["percentDone"] != 0.0 || stats["downloadSpeed"] != 500.0 {
		t.Fatalf("first event %s: want torrent 1 with id and percentDone 0, and the totals", data)
	}
	b.setLeft(250)
	if data, err = s.next(); err != nil {
		t.Fatal(err)
	}
	if torrents, _ := eventOf(t, data); torrents[0]["percentDone"] != 0.75 {
		t.Fatalf("event after the change: %s, want percentDone 0.75", data)
	}
	// The client goes away: its stream ends.
	hangUp()
	s.resp.Body.Close()
	waitStreams(t, ctx, es, 0)

	// The server shuts down with a client still reading: its stream ends, and
	// Shutdown returns before its deadline.
	s = openEvents(t, ctx, srv.URL, rpc.SessionID(), "id")
	if _, err := s.next(); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := srv.Config.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown with a stream open: %v, want nil", err)
	}
	for {
		if _, err := s.next(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("the stream after Shutdown: %v, want its end", err)
			}
			break
		}
	}
	s.resp.Body.Close()
	es.wait()
	if n := es.live.Load(); n != 0 {
		t.Errorf("%d streams still served after Shutdown", n)
	}
	srv.Close()
	http.DefaultClient.CloseIdleConnections()
	for runtime.NumGoroutine() > base {
		select {
		case <-ctx.Done():
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left:\n%s", runtime.NumGoroutine()-base, buf[:runtime.Stack(buf, true)])
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestEventStreamRefused: without the session id a stream is refused as the RPC refuses
// a call (409, with the id); past maxEventStreams, and once the server shuts down, with 503.
func TestEventStreamRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, es, rpc := eventsServer(t, &stubBackend{})
	for _, sid := range []string{"", "wrong"} {
		resp, err := http.Get(srv.URL + eventsPath + "?fields=id&session-id=" + sid)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || resp.Header.Get(transmission.SessionIDHeader) != rpc.SessionID() {
			t.Errorf("session id %q: %d, want 409 with the id", sid, resp.StatusCode)
		}
	}
	var streams []*sseReader
	for range maxEventStreams {
		streams = append(streams, openEvents(t, ctx, srv.URL, rpc.SessionID(), "id"))
	}
	resp, err := http.Get(srv.URL + eventsPath + "?fields=id&session-id=" + url.QueryEscape(rpc.SessionID()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("stream %d: %d, want 503", maxEventStreams+1, resp.StatusCode)
	}
	for _, s := range streams {
		s.resp.Body.Close()
	}
	waitStreams(t, ctx, es, 0)
	es.close()
	resp, err = http.Get(srv.URL + eventsPath + "?fields=id&session-id=" + url.QueryEscape(rpc.SessionID()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream after close: %d, want 503", resp.StatusCode)
	}
}

// TestEventStreamGuarded: the daemon's event stream is guarded as its RPC: without the
// credentials of --rpc-auth it is 401 (with the challenge), with a foreign Host 421,
// without the session id 409; with all three it streams, and the daemon still stops
// cleanly with the stream open.
func TestEventStreamGuarded(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	addr := startDaemonApp(t, "--download-dir", t.TempDir(), "--state-dir", t.TempDir(),
		"--rpc-auth", "admin:s3cret", "--rpc-host-whitelist", "box.lan")
	c := &rpcClient{addr: addr, user: "admin", pass: "s3cret"}
	if res, _ := c.call(t, "session-stats", nil); res != "success" { // the handshake gives c the session id
		t.Fatalf("session-stats: %s", res)
	}
	get := func(user, pass, host, sid string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+eventsPath+"?fields=id,name&session-id="+url.QueryEscape(sid), nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		name, user, pass, host, sid string
		want                        int
	}{
		{"no credentials", "", "", "", c.sid, http.StatusUnauthorized},
		{"wrong password", "admin", "guess", "", c.sid, http.StatusUnauthorized},
		{"foreign Host", "admin", "s3cret", "evil.example:9091", c.sid, http.StatusMisdirectedRequest},
		{"no session id", "admin", "s3cret", "", "", http.StatusConflict},
		{"whitelisted Host", "admin", "s3cret", "box.lan:9091", c.sid, http.StatusOK},
	} {
		resp := get(tc.user, tc.pass, tc.host, tc.sid)
		body := ""
		if tc.want != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || strings.Contains(body, "data:") {
			t.Errorf("%s: %d %.80q, want %d and no event", tc.name, resp.StatusCode, body, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: no Basic challenge", tc.name)
		}
		if tc.want != http.StatusConflict && resp.Header.Get(transmission.SessionIDHeader) != "" {
			t.Errorf("%s: the reply gives the session id", tc.name)
		}
	}
	resp := get("admin", "s3cret", "", c.sid)
	defer resp.Body.Close()
	s := &sseReader{resp: resp, r: bufio.NewReader(resp.Body)}
	data, err := s.next()
	if err != nil {
		t.Fatal(err)
	}
	if torrents, _ := eventOf(t, data); len(torrents) != 0 {
		t.Errorf("event %s: want an empty list", data)
	}
	// The test's cleanup stops the daemon with the stream open: it must end in time.
}
