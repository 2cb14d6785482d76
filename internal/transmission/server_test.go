package transmission

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// rpc posts body to srv's RPC URL with header pairs and returns the status, the session id
// header and the body.
func rpc(t *testing.T, srv *httptest.Server, method, path, body string, header ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(SessionIDHeader), string(b)
}

// TestHTTPChecks: the handshake, authentication, Host and body checks, each on its own.
func TestHTTPChecks(t *testing.T) {
	s := NewServer(Config{Backend: newFake(), Username: "u", Password: "p w:x", AllowedHosts: []string{"box.lan"}, MaxBody: 1 << 10})
	srv := httptest.NewServer(s)
	defer srv.Close()
	sid := s.SessionID()
	if len(sid) < 32 {
		t.Fatalf("session id %q: too short to be unguessable", sid)
	}
	const stats = `{"method":"session-stats"}`
	auth := "Basic dTpwIHc6eA==" // u:p w:x
	wrongAuth := "Basic dTpw"    // u:p
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		header  []string
		status  int
		sidSent bool   // the reply carries the session id
		inBody  string // part of the reply's body
	}{
		{"ok", "POST", Path, stats, []string{"Authorization", auth, SessionIDHeader, sid}, 200, false, `"result":"success"`},
		{"trailing slash, as transmission-remote", "POST", Path + "/", stats, []string{"Authorization", auth, SessionIDHeader, sid}, 200, false, `"result":"success"`},
		{"no session id: 409 with it", "POST", Path, stats, []string{"Authorization", auth}, 409, true, "X-Transmission-Session-Id"},
		{"wrong session id", "POST", Path, stats, []string{"Authorization", auth, SessionIDHeader, sid + "x"}, 409, true, ""},
		{"no credentials", "POST", Path, stats, []string{SessionIDHeader, sid}, 401, false, "unauthorized"},
		{"wrong password", "POST", Path, stats, []string{"Authorization", wrongAuth, SessionIDHeader, sid}, 401, false, "unauthorized"},
		{"no credentials, no session id: 401 first", "POST", Path, stats, nil, 401, false, ""},
		{"rebinding host", "POST", Path, stats, []string{"Host", "evil.example:9091", "Authorization", auth, SessionIDHeader, sid}, 421, false, "evil.example"},
		{"rebinding host before auth", "POST", Path, stats, []string{"Host", "evil.example"}, 421, false, ""},
		{"localhost", "POST", Path, stats, []string{"Host", "localhost:9091", "Authorization", auth, SessionIDHeader, sid}, 200, false, "success"},
		{"localhost.", "POST", Path, stats, []string{"Host", "LOCALHOST.:9091", "Authorization", auth, SessionIDHeader, sid}, 200, false, "success"},
		{"IPv6 literal", "POST", Path, stats, []string{"Host", "[::1]:9091", "Authorization", auth, SessionIDHeader, sid}, 200, false, "success"},
		{"allowed name", "POST", Path, stats, []string{"Host", "box.lan:9091", "Authorization", auth, SessionIDHeader, sid}, 200, false, "success"},
		{"other name", "POST", Path, stats, []string{"Host", "box.lan.evil.example", "Authorization", auth, SessionIDHeader, sid}, 421, false, ""},
		{"GET refused", "GET", Path, "", []string{"Authorization", auth, SessionIDHeader, sid}, 405, false, "POST"},
		{"other path", "POST", "/transmission/web/", stats, []string{"Authorization", auth, SessionIDHeader, sid}, 404, false, ""},
		{"body too large", "POST", Path, `{"method":"torrent-add","arguments":{"metainfo":"` + strings.Repeat("A", 2<<10) + `"}}`,
			[]string{"Authorization", auth, SessionIDHeader, sid}, 413, false, "larger than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, gotSID, body := rpc(t, srv, tt.method, tt.path, tt.body, tt.header...)
			if status != tt.status {
				t.Errorf("status %d, want %d (body %q)", status, tt.status, body)
			}
			if (gotSID == sid) != tt.sidSent {
				t.Errorf("reply's session id %q, want sent=%v", gotSID, tt.sidSent)
			}
			if !strings.Contains(body, tt.inBody) {
				t.Errorf("body %q, want it to contain %q", body, tt.inBody)
			}
		})
	}
}

// TestNoAuth: without credentials configured, the handshake alone guards the RPC.
func TestNoAuth(t *testing.T) {
	s := NewServer(Config{Backend: newFake()})
	srv := httptest.NewServer(s)
	defer srv.Close()
	if status, sid, _ := rpc(t, srv, "POST", Path, `{"method":"session-stats"}`); status != 409 || sid != s.SessionID() {
		t.Fatalf("first request: %d with session id %q, want 409 with %q", status, sid, s.SessionID())
	}
	if status, _, body := rpc(t, srv, "POST", Path, `{"method":"session-stats"}`, SessionIDHeader, s.SessionID()); status != 200 || !strings.Contains(body, "success") {
		t.Fatalf("second request: %d %s", status, body)
	}
	// Two servers never share an id.
	if NewServer(Config{Backend: newFake()}).SessionID() == s.SessionID() {
		t.Fatal("two servers drew the same session id")
	}
}
