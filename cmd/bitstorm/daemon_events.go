package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitstorm/bitstorm/internal/transmission"
)

// The web page's live updates: server-sent events at eventsPath. Each event's data is
// {"list": torrent-get's reply for the fields the page names, "stats": session-stats'},
// made by the RPC itself (rpc.Call), sent when it differs from the last one, looked at
// once a second. A stream is guarded as the RPC is: the Host check and the credentials
// by rpcGate, then the session id, which an EventSource cannot send as a header and
// sends as the query parameter session-id. It ends when the client goes away, when a
// write stalls, and when the daemon shuts down (close, registered with the HTTP
// server's Shutdown, which does not wait for streams by itself).

const eventsPath = "/events"

// Tunables of the event streams.
const (
	eventsTick      = time.Second      // how often a stream looks for a change
	eventsKeepAlive = 15 * time.Second // a comment after this long without an event, so a dead client is noticed
	eventsWriteWait = 30 * time.Second // a write that takes longer ends the stream
	maxEventStreams = 32               // streams at once; more are refused (503)
	maxEventFields  = 100
)

// eventStreams serves the event streams of one RPC server.
type eventStreams struct {
	rpc  *transmission.Server
	done chan struct{} // closed by close: every stream ends
	once sync.Once
	live atomic.Int32 // streams being served
	wg   sync.WaitGroup
}

func newEventStreams(rpc *transmission.Server) *eventStreams {
	return &eventStreams{rpc: rpc, done: make(chan struct{})}
}

// close ends every stream and refuses new ones; wait waits until they have returned.
func (es *eventStreams) close() { es.once.Do(func() { close(es.done) }) }
func (es *eventStreams) wait()  { es.wg.Wait() }

// serve answers one request for a stream that passed rpcGate.
func (es *eventStreams) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("session-id")), []byte(es.rpc.SessionID())) != 1 {
		// As the RPC answers a request without the id: the page takes it and comes back.
		w.Header().Set(transmission.SessionIDHeader, es.rpc.SessionID())
		http.Error(w, "409 Conflict: missing or wrong session-id parameter; send the id of this reply's "+transmission.SessionIDHeader+" header", http.StatusConflict)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	fields := strings.Split(q.Get("fields"), ",")
	if len(fields) > maxEventFields {
		http.Error(w, "too many fields", http.StatusBadRequest)
		return
	}
	list, err := json.Marshal(map[string]any{"method": "torrent-get", "arguments": map[string]any{"fields": fields}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case <-es.done:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	if es.live.Add(1) > maxEventStreams {
		es.live.Add(-1)
		http.Error(w, "too many event streams", http.StatusServiceUnavailable)
		return
	}
	es.wg.Add(1)
	defer es.wg.Done()
	defer es.live.Add(-1)

	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{}) // the server's ReadTimeout would end the stream, and cancel its context
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	es.stream(r.Context(), w, rc, list)
}

// stream sends events until ctx ends, the daemon shuts down or a write fails.
func (es *eventStreams) stream(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, list []byte) {
	stats := []byte(`{"method":"session-stats"}`)
	tick := time.NewTicker(eventsTick)
	defer tick.Stop()
	var last []byte
	lastSent := time.Now()
	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(eventsWriteWait))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The first write says how long the browser waits before it reconnects on its own.
	if !send([]byte("retry: 3000\n\n")) {
		return
	}
	for {
		ev := make([]byte, 0, len(last)+64)
		ev = append(ev, `data: {"list":`...)
		ev = append(ev, es.rpc.Call(list)...)
		ev = append(ev, `,"stats":`...)
		ev = append(ev, es.rpc.Call(stats)...)
		ev = append(ev, "}\n\n"...) // the replies are JSON without raw newlines: one data line
		switch {
		case string(ev) != string(last):
			if !send(ev) {
				return
			}
			last, lastSent = ev, time.Now()
		case time.Since(lastSent) >= eventsKeepAlive:
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
			lastSent = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-es.done:
			return
		case <-tick.C:
		}
	}
}
