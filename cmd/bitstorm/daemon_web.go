package main

import (
	"bytes"
	"embed"
	"io/fs"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/bitstorm/bitstorm/internal/transmission"
)

// The daemon's web page: plain HTML, CSS and JavaScript from web/, embedded in the binary,
// served beside the RPC at the same address (at / and /web/). The page is a client of
// the RPC and nothing more: it follows the torrent list through server-sent events
// (daemon_events.go), polling torrent-get every second when they fail, adds with torrent-add
// (a .torrent read in the browser and sent as base64 metainfo, or a magnet link) and
// acts with torrent-stop, -start, -remove and -set, doing the session-id handshake
// itself. The browser holds the Basic credentials, never the script.

//go:embed web
var webFiles embed.FS

// webCSP lets the page load its own script, style and RPC only: no inline script, no
// other origin, no framing. Torrent names are the remote's text; the script writes them
// with textContent, and this keeps a slip from running anything.
const webCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webHandler serves rpc at transmission.Path, the page's event streams at eventsPath and
// the page everywhere else. The page and the streams are guarded as the RPC is: a request
// for them passes only if rpc lets the same request through its Host check and
// authentication (rpcGate).
func webHandler(rpc *transmission.Server, events *eventStreams) http.Handler {
	sub, _ := fs.Sub(webFiles, "web")
	files := http.StripPrefix("/web/", http.FileServerFS(sub))
	index, _ := fs.ReadFile(sub, "index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		if r.URL.Path == transmission.Path || strings.HasPrefix(r.URL.Path, transmission.Path+"/") {
			h.Set("Cache-Control", "no-store") // torrent lists and the session id
			rpc.ServeHTTP(w, r)
			return
		}
		if !rpcGate(rpc, w, r) {
			return
		}
		if r.URL.Path == eventsPath {
			events.serve(w, r) // daemon_events.go
			return
		}
		h.Set("Content-Security-Policy", webCSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // a new binary's page at once; it is small
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/web/":
			http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(index))
		case strings.HasPrefix(r.URL.Path, "/web/"):
			files.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// rpcGate asks rpc whether r may pass its Host check and authentication: the same request,
// bodiless, sent to the RPC's path without a session id must come back 409 Conflict,
// the answer of a request past both. Any other answer (421 for a foreign Host, 401
// without the credentials, with its WWW-Authenticate so the browser prompts) is written
// to w, and rpcGate returns false. So the page can never be guarded less than the RPC:
// were the RPC's checks to change order, the page would be refused, not opened.
func rpcGate(rpc *transmission.Server, w http.ResponseWriter, r *http.Request) bool {
	probe := r.Clone(r.Context())
	probe.Method, probe.Body, probe.ContentLength = http.MethodPost, http.NoBody, 0
	probe.URL.Path, probe.URL.RawPath = transmission.Path, ""
	probe.Header.Del(transmission.SessionIDHeader)
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	rpc.ServeHTTP(rec, probe)
	if rec.status == http.StatusConflict {
		return true
	}
	rec.header.Del(transmission.SessionIDHeader)
	maps.Copy(w.Header(), rec.header)
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
	return false
}

// recorder keeps a response in memory (httptest.ResponseRecorder, without the test
// package in the binary).
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
