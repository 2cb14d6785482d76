package main

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bitstorm/bitstorm/stages"
)

// jsonWriter prints --json's objects on stdout, one per line, in the order they were
// put. Events come from the stages' goroutines, which must not block, so put only queues
// the line; one goroutine writes, and a slow reader of stdout holds back nobody.
type jsonWriter struct {
	w    io.Writer
	mu   sync.Mutex
	q    [][]byte
	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func newJSONWriter(w io.Writer) *jsonWriter {
	j := &jsonWriter{w: w, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go j.loop()
	return j
}

// kv is one field of an object, kept in order.
type kv struct {
	k string
	v any
}

// put queues the object {"time", "torrent", "event", fields...}.
func (j *jsonWriter) put(torrent, event string, fields ...kv) {
	line := encodeObject(time.Now(), torrent, event, fields)
	j.mu.Lock()
	j.q = append(j.q, line)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

func (j *jsonWriter) loop() {
	defer close(j.done)
	for {
		select {
		case <-j.wake:
			j.flush()
		case <-j.quit:
			j.flush()
			return
		}
	}
}

func (j *jsonWriter) flush() {
	j.mu.Lock()
	q := j.q
	j.q = nil
	j.mu.Unlock()
	if len(q) > 0 {
		j.w.Write(bytes.Join(q, nil))
	}
}

// close writes what is queued and stops the writer.
func (j *jsonWriter) close() {
	j.once.Do(func() { close(j.quit) })
	<-j.done
}

func encodeObject(t time.Time, torrent, event string, fields []kv) []byte {
	b := []byte(`{"time":`)
	b = appendJSON(b, t.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"torrent":`...)
	b = appendJSON(b, torrent)
	b = append(b, `,"event":`...)
	b = appendJSON(b, event)
	for _, f := range fields {
		b = append(b, ',')
		b = appendJSON(b, f.k)
		b = append(b, ':')
		b = appendJSON(b, f.v)
	}
	return append(b, "}\n"...)
}

func appendJSON(b []byte, v any) []byte {
	if err, ok := v.(error); ok {
		v = err.Error()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "a->b" stays readable
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		enc.Encode(err.Error())
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// errText is err's message, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// eventJSON is the name and the fields of e in --json's objects; README.md's table lists
// them. An event type added to stages without a case here still comes out, under its
// type name in snake case with its fields likewise (eventFields).
func eventJSON(e stages.Event) (string, []kv) {
	switch e := e.(type) {
	case stages.PeerConnected:
		return "peer_connected", []kv{{"peer", e.Addr}, {"incoming", e.Incoming}}
	case stages.PeerDropped:
		return "peer_dropped", []kv{{"peer", e.Addr}, {"reason", errText(e.Reason)}, {"fault", e.Fault}}
	case stages.PeerSnubbed:
		return "peer_snubbed", []kv{{"peer", e.Addr}}
	case stages.DialFailed:
		return "dial_failed", []kv{{"peer", e.Addr}, {"error", errText(e.Err)}}
	case stages.HandshakeFailed:
		return "handshake_failed", []kv{{"peer", e.Addr}, {"error", errText(e.Err)}}
	case stages.PeerBanned:
		return "peer_banned", []kv{{"peer", e.Addr}, {"reason", e.Reason}}
	case stages.PieceVerified:
		return "piece_verified", []kv{{"piece", e.Piece}}
	case stages.PieceFailed:
		return "piece_failed", []kv{{"piece", e.Piece}}
	case stages.TrackerReply:
		return "tracker_reply", []kv{{"url", e.URL}, {"tier", e.Tier}, {"peers", e.Peers}, {"seeders", e.Seeders}, {"leechers", e.Leechers}}
	case stages.TrackerFailed:
		return "tracker_failed", []kv{{"url", e.URL}, {"tier", e.Tier}, {"error", errText(e.Err)}}
	case stages.PeerListFull:
		return "peer_list_full", []kv{{"discarded", e.Discarded}}
	case stages.Resumed:
		return "resumed", []kv{{"pieces", e.Pieces}, {"from_record", e.FromRecord}}
	case stages.MetadataReceived:
		return "metadata_received", []kv{{"peer", e.Peer}, {"size", e.Size}}
	case stages.Completed:
		return "completed", nil
	case stages.Failed:
		return "failed", []kv{{"error", errText(e.Err)}}
	case stages.SeedingDone:
		return "seeding_done", []kv{{"limit", e.Limit.String()}, {"uploaded", e.Uploaded}}
	case stages.WebSeedFailed:
		return "web_seed_failed", []kv{{"url", e.URL}, {"error", errText(e.Err)}}
	case stages.WebSeedDropped:
		return "web_seed_dropped", []kv{{"url", e.URL}, {"peer", e.Addr}, {"reason", errText(e.Reason)}}
	}
	return eventFields(e)
}

// eventFields names e and its exported fields in snake case, errors as their text.
func eventFields(e any) (string, []kv) {
	v := reflect.ValueOf(e)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	name := snake(v.Type().Name())
	if v.Kind() != reflect.Struct {
		return name, nil
	}
	var fields []kv
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		val := v.Field(i).Interface()
		if err, ok := val.(error); ok || (v.Field(i).Kind() == reflect.Interface && v.Field(i).IsNil() && f.Type.Implements(errorType)) {
			val = errText(err)
		}
		fields = append(fields, kv{snake(f.Name), val})
	}
	return name, fields
}

var errorType = reflect.TypeFor[error]()

// snake turns a Go name into snake case: "WebSeedFailed" is "web_seed_failed", "URL" "url".
func snake(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
