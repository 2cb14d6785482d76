package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/stages"
)

// reporter shows a command's torrents to scripts and monitors: --json's events on stdout
// (json.go) and --metrics over HTTP (metrics.go). Without either it only keeps the
// torrents for the progress view.
type reporter struct {
	json    *jsonWriter    // nil without --json
	metrics *metricsServer // nil without --metrics

	mu       sync.Mutex
	torrents []*tracked // in the order of the command line
}

// newReporter sets up --json and --metrics; the metrics listener opens here, so that a
// bad address fails before anything starts, and serves from start.
func newReporter(c *cli.Context, log *slog.Logger) (*reporter, error) {
	r := &reporter{}
	if addr := c.String("metrics"); addr != "" {
		m, err := listenMetrics(addr, r, log)
		if err != nil {
			return nil, fmt.Errorf("%s: --metrics %s: %w", c.Command.Name, addr, err)
		}
		r.metrics = m
	}
	if c.Bool("json") {
		r.json = newJSONWriter(os.Stdout)
	}
	return r, nil
}

// active reports whether anything outside the process watches the torrents.
func (r *reporter) active() bool { return r.json != nil || r.metrics != nil }

// start serves the metrics, once every torrent is tracked and attached.
func (r *reporter) start() {
	if r.metrics != nil {
		r.metrics.serve()
	}
}

// close stops the metrics server and writes the JSON objects still queued.
func (r *reporter) close() {
	if r.metrics != nil {
		r.metrics.close()
	}
	if r.json != nil {
		r.json.close()
	}
}

// list returns the tracked torrents.
func (r *reporter) list() []*tracked {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracked(nil), r.torrents...)
}

// track starts keeping the torrent of the command line argument arg: m, or the magnet
// link mag.
func (r *reporter) track(arg string, m *metainfo.MetaInfo, mag *magnet.Magnet) *tracked {
	t := &tracked{r: r, arg: arg}
	if m != nil {
		t.hash, t.name = m.InfoHash, m.Info.Name
	} else {
		t.hash, t.name, t.magnet = mag.InfoHash, mag.Name, true
	}
	t.hex = hex.EncodeToString(t.hash[:])
	r.mu.Lock()
	r.torrents = append(r.torrents, t)
	r.mu.Unlock()
	return t
}

// torrentView is what a tracked torrent reads of its run: a *pipeline.Pipeline or a
// *pipeline.Torrent of a session.
type torrentView interface {
	Meta() *metainfo.MetaInfo
	Stats() stages.Stats
}

// The states of a tracked torrent.
const (
	running int32 = iota
	finished
	failed
	stopped // interrupted
)

var stateNames = [...]string{"running", "finished", "failed", "stopped"}

// tracked is one torrent of the command line as the progress view, --json and --metrics
// see it.
type tracked struct {
	r      *reporter
	arg    string
	hash   [20]byte
	hex    string
	name   string // the torrent's, or a magnet link's dn ("" when it has none)
	magnet bool
	view   torrentView // set by attach, before anything reads it
	start  time.Time

	piecesVerified atomic.Int64 // PieceVerified events
	piecesFailed   atomic.Int64 // PieceFailed events
	peersBanned    atomic.Int64 // PeerBanned events
	trackerFails   atomic.Int64 // TrackerFailed events
	peersDiscarded atomic.Int64 // addresses of PeerListFull events
	state          atomic.Int32
}

// attach gives t its run, started at start.
func (t *tracked) attach(v torrentView, start time.Time) {
	if t != nil {
		t.view, t.start = v, start
	}
}

// event counts e and prints it with --json; from the stages' goroutines.
func (t *tracked) event(e stages.Event) {
	switch e := e.(type) {
	case stages.PieceVerified:
		t.piecesVerified.Add(1)
	case stages.PieceFailed:
		t.piecesFailed.Add(1)
	case stages.PeerBanned:
		t.peersBanned.Add(1)
	case stages.TrackerFailed:
		t.trackerFails.Add(1)
	case stages.PeerListFull:
		t.peersDiscarded.Add(int64(e.Discarded))
	}
	if t.r.json != nil {
		name, fields := eventJSON(e)
		t.r.json.put(t.hex, name, fields...)
	}
}

// end records the outcome of t's run, err, and prints its last JSON object: done, or
// error.
func (t *tracked) end(err error) {
	if t == nil {
		return
	}
	st := finished
	switch {
	case errors.Is(err, context.Canceled):
		st = stopped
	case err != nil:
		st = failed
	}
	t.state.Store(st)
	if t.r.json == nil || t.view == nil {
		return
	}
	if err != nil {
		fields := []kv{{"error", err.Error()}}
		if m := t.view.Meta(); m != nil {
			fields = append([]kv{{"name", m.Info.Name}}, fields...)
		}
		t.r.json.put(t.hex, "error", fields...)
		return
	}
	m, st2 := t.view.Meta(), t.view.Stats()
	t.r.json.put(t.hex, "done", kv{"name", m.Info.Name}, kv{"bytes", m.Info.Length},
		kv{"downloaded", st2.Downloaded}, kv{"uploaded", st2.Uploaded},
		kv{"seconds", time.Since(t.start).Seconds()})
}

// label is how t is shown: its name (a magnet link's dn until the metadata is known), or
// its info hash.
func (t *tracked) label() string {
	if t.view != nil {
		if m := t.view.Meta(); m != nil {
			return m.Info.Name
		}
	}
	if t.name != "" {
		return t.name
	}
	return t.hex
}

// stats is t's progress; zeros before it runs.
func (t *tracked) stats() stages.Stats {
	if t.view == nil {
		return stages.Stats{}
	}
	return t.view.Stats()
}
