package tracker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// binaryHash holds bytes that must be escaped and bytes that must not.
var binaryHash = [20]byte{0x00, 0x01, 0x7f, 0x80, 0xff, 'a', 'Z', '0', '-', '.', '_', '~', ' ', '+', '/', '%', '&', '=', '?', '#'}

const binaryHashEscaped = "%00%01%7F%80%FFaZ0-._~%20%2B%2F%25%26%3D%3F%23"

func peerID() [20]byte { return [20]byte([]byte("-BS0001-abcdefghijkl")) }

func TestAnnounceURL(t *testing.T) {
	base := Request{InfoHash: binaryHash, PeerID: peerID(), Port: 6881, Uploaded: 1, Downloaded: 2, Left: 3}
	with := func(f func(*Request)) Request { r := base; f(&r); return r }
	const params = "info_hash=" + binaryHashEscaped + "&peer_id=-BS0001-abcdefghijkl" +
		"&port=6881&uploaded=1&downloaded=2&left=3&compact=1"
	tests := []struct {
		name string
		base string
		req  Request
		want string
	}{
		{name: "plain", base: "http://127.0.0.1:6969/announce", req: base,
			want: "http://127.0.0.1:6969/announce?" + params},
		{name: "existing query", base: "https://t.example/announce?passkey=s3cr3t&x=1", req: base,
			want: "https://t.example/announce?passkey=s3cr3t&x=1&" + params},
		{name: "empty query", base: "http://t.example/announce?", req: base,
			want: "http://t.example/announce?" + params},
		{name: "fragment dropped", base: "http://t.example/announce#frag", req: base,
			want: "http://t.example/announce?" + params},
		{name: "passkey in path", base: "http://t.example/0123abcd/announce", req: base,
			want: "http://t.example/0123abcd/announce?" + params},
		{name: "event started", base: "http://t.example/a", req: with(func(r *Request) { r.Event = EventStarted }),
			want: "http://t.example/a?" + params + "&event=started"},
		{name: "event completed", base: "http://t.example/a", req: with(func(r *Request) { r.Event = EventCompleted }),
			want: "http://t.example/a?" + params + "&event=completed"},
		{name: "event stopped", base: "http://t.example/a", req: with(func(r *Request) { r.Event = EventStopped }),
			want: "http://t.example/a?" + params + "&event=stopped"},
		{name: "numwant, key and trackerid", base: "http://t.example/a",
			req:  with(func(r *Request) { r.NumWant = 50; r.Key = "k y"; r.TrackerID = "id&1" }),
			want: "http://t.example/a?" + params + "&numwant=50&key=k%20y&trackerid=id%261"},
		{name: "zero values", base: "http://t.example/a", req: Request{},
			want: "http://t.example/a?info_hash=" + strings.Repeat("%00", 20) + "&peer_id=" + strings.Repeat("%00", 20) +
				"&port=0&uploaded=0&downloaded=0&left=0&compact=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AnnounceURL(tt.base, tt.req)
			if err != nil || got != tt.want {
				t.Fatalf("AnnounceURL(%q) = %q, %v\nwant %q", tt.base, got, err, tt.want)
			}
			// A tracker decoding the query byte by byte gets the hash back.
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if h := q.Get("info_hash"); h != string(tt.req.InfoHash[:]) {
				t.Errorf("info_hash decodes to %q, want %q", h, tt.req.InfoHash)
			}
			if id := q.Get("peer_id"); id != string(tt.req.PeerID[:]) {
				t.Errorf("peer_id decodes to %q, want %q", id, tt.req.PeerID)
			}
		})
	}
}

func TestAnnounceURLErrors(t *testing.T) {
	ok := Request{Left: 1}
	tests := []struct {
		name string
		base string
		req  Request
		want string
	}{
		{name: "udp tracker", base: "udp://t.example:6969/announce", req: ok,
			want: `tracker: announce url "udp://t.example:6969/announce": scheme "udp" is not http or https`},
		{name: "not a url", base: "http://[::1", req: ok, want: "tracker: announce url: parse "},
		{name: "no host", base: "http:///announce", req: ok, want: `tracker: announce url "http:///announce": no host`},
		{name: "relative", base: "/announce", req: ok, want: `tracker: announce url "/announce": scheme "" is not http or https`},
		{name: "negative left", base: "http://t/a", req: Request{Left: -1}, want: "tracker: request.left: -1 is negative"},
		{name: "negative uploaded", base: "http://t/a", req: Request{Uploaded: -1}, want: "tracker: request.uploaded: -1 is negative"},
		{name: "negative downloaded", base: "http://t/a", req: Request{Downloaded: -2}, want: "tracker: request.downloaded: -2 is negative"},
		{name: "negative numwant", base: "http://t/a", req: Request{NumWant: -1}, want: "tracker: request.numwant: -1 is negative"},
		{name: "unknown event", base: "http://t/a", req: Request{Event: "paused"}, want: `tracker: request.event: unknown event "paused"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AnnounceURL(tt.base, tt.req)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("AnnounceURL(%q) = %q, %v, want error %q", tt.base, got, err, tt.want)
			}
		})
	}
}

// serve starts a tracker on 127.0.0.1 answering with h.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/announce"
}

func TestAnnounce(t *testing.T) {
	req := Request{InfoHash: binaryHash, PeerID: peerID(), Port: 6881, Left: 100, Event: EventStarted, NumWant: 30}
	var got url.Values
	base := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query()
		w.Write([]byte("d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e")) // 127.0.0.1:6881
	})
	resp, err := Announce(t.Context(), nil, base+"?passkey=abc", req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Interval != 30*time.Minute || len(resp.Peers) != 1 || resp.Peers[0].String() != "127.0.0.1:6881" {
		t.Errorf("Announce = %+v", resp)
	}
	for key, want := range map[string]string{
		"passkey": "abc", "info_hash": string(binaryHash[:]), "peer_id": "-BS0001-abcdefghijkl", "port": "6881",
		"uploaded": "0", "downloaded": "0", "left": "100", "compact": "1", "event": "started", "numwant": "30",
	} {
		if got.Get(key) != want {
			t.Errorf("tracker got %s = %q, want %q", key, got.Get(key), want)
		}
	}
}

func TestAnnounceErrors(t *testing.T) {
	req := Request{InfoHash: binaryHash, PeerID: peerID(), Port: 6881, Left: 100}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(error) bool
		want    string
	}{
		{
			name: "http 500",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(strings.Repeat("x", 1000)))
			},
			check: func(err error) bool {
				var se *StatusError
				return errors.As(err, &se) && se.StatusCode == 500 && len(se.Body) == maxStatusBody
			},
			want: `tracker: http status 500 Internal Server Error: "xxxx`,
		},
		{
			name:    "http 404 without body",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) },
			check:   func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.StatusCode == 404 },
			want:    "tracker: http status 404 Not Found",
		},
		{
			name: "failure reason",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("d14:failure reason19:torrent not allowede"))
			},
			check: func(err error) bool {
				var fe *FailureError
				return errors.As(err, &fe) && fe.Reason == "torrent not allowed"
			},
			want: "tracker: failure reason: torrent not allowed",
		},
		{
			name: "garbage",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("<html>hello</html>"))
			},
			check: func(err error) bool { return errors.Is(err, ErrBadResponse) },
			want:  "tracker: bad response: bencode: offset 0: invalid character '<'",
		},
		{
			name: "body too large",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(strings.Repeat("l", MaxResponseSize+1)))
			},
			check: func(err error) bool { return errors.Is(err, ErrBadResponse) },
			want:  "tracker: bad response: body larger than 4194304 bytes",
		},
		{
			name: "endless body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				chunk := []byte(strings.Repeat("l", 64<<10))
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			check: func(err error) bool { return errors.Is(err, ErrBadResponse) },
			want:  "tracker: bad response: body larger than 4194304 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := serve(t, tt.handler)
			resp, err := Announce(t.Context(), http.DefaultClient, base, req)
			if err == nil {
				t.Fatalf("Announce = %+v, want error %q", resp, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) || !tt.check(err) {
				t.Errorf("Announce = %v (%T), want %q", err, err, tt.want)
			}
		})
	}
}

func TestAnnounceBodyExactlyAtLimit(t *testing.T) {
	// "d8:intervali60e" (15) + "3:pad" (5) + "<n>:" + n + "e" (1) == MaxResponseSize.
	n := MaxResponseSize - 15 - 5 - 1 - len("1234567:")
	body := "d8:intervali60e3:pad" + bstr(strings.Repeat("x", n)) + "e"
	if len(body) != MaxResponseSize {
		t.Fatalf("body is %d bytes, want %d", len(body), MaxResponseSize)
	}
	base := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
	if _, err := Announce(t.Context(), nil, base, Request{}); err != nil {
		t.Errorf("Announce(%d-byte body) = %v", len(body), err)
	}
}

// TestAnnounceCancel checks that Announce returns once ctx is done, whether the tracker
// never answers or stalls in the middle of the body.
func TestAnnounceCancel(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{name: "no reply", handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{name: "stalled body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("d8:intervali60e5:peers6:"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := serve(t, tt.handler)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := Announce(ctx, nil, base, Request{})
				done <- err
			}()
			time.Sleep(50 * time.Millisecond) // let the request reach the handler; not required
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Announce after cancel = %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Announce did not return after ctx was cancelled")
			}
		})
	}
}

func TestAnnounceTransportErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + "/s3cr3tpath/announce?passkey=s3cr3t"
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there now
	_, err := Announce(t.Context(), nil, base, Request{})
	if err == nil {
		t.Fatal("Announce to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "tracker: announce to "+host+": ") {
		t.Errorf("Announce = %q, want the host %s and no passkey", err, host)
	}
}

func TestAnnounceBadURL(t *testing.T) {
	_, err := Announce(t.Context(), nil, "udp://t.example:6969", Request{})
	if err == nil || !strings.Contains(err.Error(), `scheme "udp"`) {
		t.Errorf("Announce(udp) = %v, want a scheme error", err)
	}
}
