// Package transmission serves Transmission's RPC protocol (transmission 3.00, RPC version
// 16: JSON requests POSTed to /transmission/rpc) over a Backend, so that
// transmission-remote, the Transmission web client and the many apps written for
// transmission-daemon can drive another client.
//
// As in transmission's libtransmission/rpcimpl.cc, each method is one handler in one
// table (methods.go) and torrent-get's fields are one table of functions of a torrent
// snapshot (fields.go). The package knows nothing of how torrents are downloaded: the
// daemon implements Backend.
//
// Every request passes, in order: the Host check against DNS rebinding (421), HTTP Basic
// authentication when configured (401), the X-Transmission-Session-Id handshake against
// cross-site requests (409, with the id in the reply's header), and a cap on the body
// (413). Nothing here reads or writes a file.
package transmission

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Path is where the RPC is served; transmission-remote posts to Path + "/".
const Path = "/transmission/rpc"

// SessionIDHeader carries the CSRF token (spec 2.3.1).
const SessionIDHeader = "X-Transmission-Session-Id"

// DefaultMaxBody bounds a request body: a torrent-add's base64 .torrent of up to 12 MiB.
const DefaultMaxBody = 16 << 20

// RPCVersion is the protocol version served: transmission 3.00's.
const RPCVersion = 16

// Config sets up a Server.
type Config struct {
	Backend Backend
	// Username and Password, when either is set, are required of every request (HTTP
	// Basic, spec 2.3.3).
	Username, Password string
	// AllowedHosts are host names a request's Host header may carry besides localhost
	// and IP addresses (spec 2.3.2); "*" allows any.
	AllowedHosts []string
	MaxBody      int64            // default DefaultMaxBody
	Now          func() time.Time // the clock, for tests (default time.Now)
}

// Server is the RPC endpoint, an http.Handler.
type Server struct {
	cfg       Config
	b         Backend
	sessionID string

	mu      sync.Mutex
	removed []removal // recently removed ids, for torrent-get's "removed"
}

type removal struct {
	id int
	at time.Time
}

// NewServer returns a Server for cfg, with a new random session id.
func NewServer(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var id [36]byte
	rand.Read(id[:])
	return &Server{cfg: cfg, b: cfg.Backend, sessionID: base64.RawURLEncoding.EncodeToString(id[:])}
}

// SessionID is the value requests must send in SessionIDHeader.
func (s *Server) SessionID() string { return s.sessionID }

// ServeHTTP answers RPC requests at Path (with or without a trailing slash).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "BitStorm")
	if !s.hostAllowed(r.Host) {
		// DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
		http.Error(w, "transmission: Host header "+fmt.Sprintf("%q", r.Host)+" is not an allowed name; add it with --rpc-host-whitelist", http.StatusMisdirectedRequest)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="BitStorm RPC", charset="UTF-8"`)
		http.Error(w, "unauthorized: user name or password wrong", http.StatusUnauthorized)
		return
	}
	if r.URL.Path != Path && r.URL.Path != Path+"/" {
		http.NotFound(w, r)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(SessionIDHeader)), []byte(s.sessionID)) != 1 {
		w.Header().Set(SessionIDHeader, s.sessionID)
		http.Error(w, "409 Conflict: missing or wrong "+SessionIDHeader+"; resend the request with the header of this reply", http.StatusConflict)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST a JSON request", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	reply := s.Call(body)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Write(reply)
}

// hostAllowed reports whether a request's Host may reach us (spec 2.3.2): an IP address
// (DNS rebinding needs a name), localhost, or a name of AllowedHosts.
func (s *Server) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || host == "localhost" {
		return true
	}
	for _, a := range s.cfg.AllowedHosts {
		a = strings.ToLower(strings.TrimSuffix(a, "."))
		if a == "*" || a == host {
			return true
		}
	}
	return false
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Username == "" && s.cfg.Password == "" {
		return true
	}
	user, pass, ok := r.BasicAuth()
	// Both compared whatever the first gives, in constant time.
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password))
	return ok && u&p == 1
}

// request is an RPC request (spec 2.1).
type request struct {
	Method    string          `json:"method"`
	Arguments json.RawMessage `json:"arguments"`
	Tag       json.RawMessage `json:"tag,omitempty"`
}

// response is an RPC response (spec 2.2).
type response struct {
	Arguments any             `json:"arguments"`
	Result    string          `json:"result"`
	Tag       json.RawMessage `json:"tag,omitempty"`
}

// Call runs one JSON request and returns the JSON response, past the HTTP checks.
func (s *Server) Call(body []byte) []byte {
	var req request
	resp := response{Arguments: struct{}{}, Result: "success"}
	if err := json.Unmarshal(body, &req); err != nil {
		resp.Result = "malformed JSON request: " + err.Error()
		return marshal(resp)
	}
	resp.Tag = req.Tag
	h, ok := methods[req.Method]
	if !ok {
		resp.Result = fmt.Sprintf("method name not recognized: %q", req.Method)
		return marshal(resp)
	}
	args := req.Arguments
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	out, err := h(s, args)
	if err != nil {
		resp.Result = err.Error()
		return marshal(resp)
	}
	if out != nil {
		resp.Arguments = out
	}
	return marshal(resp)
}

// marshal encodes r with appendJSON (encode.go).
func marshal(r response) []byte {
	b, err := r.appendJSON(nil)
	if err != nil { // a NaN or an infinity in a field: say so rather than send nothing
		b, _ = response{Arguments: struct{}{}, Result: "encoding the reply: " + err.Error()}.appendJSON(nil)
	}
	return b
}

// appendJSON appends r as encoding/json would encode it.
func (r response) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"arguments":`...)
	b, err := appendJSON(b, r.Arguments)
	if err != nil {
		return nil, err
	}
	b = appendString(append(b, `,"result":`...), r.Result)
	if len(r.Tag) > 0 {
		b = append(append(b, `,"tag":`...), r.Tag...)
	}
	return append(b, '}'), nil
}

// recentlyActive is how long a torrent counts as recently active or removed (transmission's
// RECENTLY_ACTIVE_SECONDS).
const recentlyActive = 60 * time.Second

// noteRemoved records that id was removed, for torrent-get's "removed".
func (s *Server) noteRemoved(id int) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.removed[:0]
	for _, r := range s.removed {
		if now.Sub(r.at) < recentlyActive {
			kept = append(kept, r)
		}
	}
	s.removed = append(kept, removal{id, now})
}

// recentlyRemoved are the ids removed within recentlyActive.
func (s *Server) recentlyRemoved() []int {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []int{}
	for _, r := range s.removed {
		if now.Sub(r.at) < recentlyActive {
			ids = append(ids, r.id)
		}
	}
	return ids
}
