package main

import (
	"context"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

// What the daemon follows of each torrent: its run's events, and once a second its
// counters, rates and times, for torrent-get and session-stats.

// event follows each torrent's run: pieces verified (per-file progress), completion,
// failures, peers (at Debug).
func (d *daemon) event(t *pipeline.Torrent, ev stages.Event) {
	d.mu.Lock()
	e := d.byHash[t.InfoHash()]
	d.mu.Unlock()
	if e == nil {
		return
	}
	switch ev := ev.(type) {
	case stages.PieceVerified:
		e.mu.Lock()
		if e.have == nil {
			if m := t.Meta(); m != nil {
				e.have = wire.NewBitfield(m.Info.NumPieces())
			}
		}
		if e.have != nil && ev.Piece < len(e.have)*8 {
			e.have.Set(ev.Piece)
		}
		e.mu.Unlock()
	case stages.Completed:
		e.mu.Lock()
		first := e.done.IsZero()
		if first {
			e.done = time.Now()
		}
		e.mu.Unlock()
		if first {
			d.note(evCompleted, e)
			d.goWait(d.save)
		}
	case stages.TrackerReply:
		now := time.Now()
		e.setTracker(ev.URL, transmission.TrackerStat{LastAnnounce: now, Succeeded: true, Result: "Success", PeerCount: ev.Peers,
			NextAnnounce: now.Add(ev.Interval), Seeders: ev.Seeders, Leechers: ev.Leechers})
	case stages.TrackerFailed:
		e.setTracker(ev.URL, transmission.TrackerStat{LastAnnounce: time.Now(), Result: errText(ev.Err)})
	case stages.Resumed:
		d.note(evResumed, e, "pieces", ev.Pieces, "from_record", ev.FromRecord)
	case stages.SeedingDone:
		d.note(evSeedingDone, e, "limit", ev.Limit.String(), "uploaded", ev.Uploaded)
		d.seedingDone(e) // daemon_seed.go
	}
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		// Every other event of the run, under its --json name (json.go), at Debug.
		switch ev.(type) {
		case stages.Completed, stages.Resumed, stages.SeedingDone: // noted above
		default:
			name, fields := eventJSON(ev)
			attrs := []any{"event", name, "id", e.id}
			for _, f := range fields {
				attrs = append(attrs, f.k, f.v)
			}
			d.log.Debug("swarm "+name, attrs...)
		}
	}
}

func (e *entry) label() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.name != "" {
		return e.name
	}
	return hex.EncodeToString(e.hash[:])
}

// sample updates each torrent's rates and counters, once a second.
func (d *daemon) sample(now time.Time, dt time.Duration) {
	for _, e := range d.list() {
		e.mu.Lock()
		t := e.t
		e.mu.Unlock()
		state := t.State() // first: a run started since has its own Stats
		st := t.Stats()
		e.samplePeers(t)
		e.mu.Lock()
		switch {
		case state == pipeline.Queued && !e.stale:
			// Its run has ended, and the queue starts the next one: its counters go to
			// base now, and the next run's count from zero.
			e.downBase, e.upBase, e.stale = e.downBase+st.Downloaded, e.upBase+st.Uploaded, true
		case state == pipeline.Running && e.stale:
			e.stale = false // the queue started it: these are the new run's
		}
		down, up := e.ever(st)
		dd, du := max(down-e.lastDown, 0), max(up-e.lastUp, 0)
		e.lastDown, e.lastUp = down, up
		secs := max(dt.Seconds(), 1e-3)
		e.rateDown = (e.rateDown + float64(dd)/secs) / 2 // half the last second, half before
		e.rateUp = (e.rateUp + float64(du)/secs) / 2
		if dd+du > 0 {
			e.active = now
		}
		if state == pipeline.Running {
			if complete(st) {
				e.secsSeed++
			} else {
				e.secsDown++
			}
		}
		if complete(st) && e.done.IsZero() && state != pipeline.Running {
			// A verify found it complete. A run's Completed event sets it, and logs it:
			// taking it here first would lose that record.
			e.done = now
		}
		logFail := state == pipeline.Failed && !e.failed
		e.failed = state == pipeline.Failed
		e.mu.Unlock()
		if logFail {
			d.note(evFailed, e, "err", t.Err())
		}
	}
}

// ever is the torrent's downloaded and uploaded bytes over all its runs. Called with e.mu.
func (e *entry) ever(st stages.Stats) (down, up int64) {
	if e.stale {
		return e.downBase, e.upBase
	}
	return e.downBase + st.Downloaded, e.upBase + st.Uploaded
}

func complete(st stages.Stats) bool { return st.Total > 0 && st.Left() == 0 }

// current is this run's session-stats block: bytes moved since the daemon started.
func (d *daemon) current(entries []*entry) transmission.StatsBlock {
	b := transmission.StatsBlock{SessionCount: 1, SecondsActive: int64(time.Since(d.began).Seconds())}
	d.mu.Lock()
	b.FilesAdded = d.added
	d.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		b.DownloadedBytes += e.lastDown - e.down0
		b.UploadedBytes += e.lastUp - e.up0
		e.mu.Unlock()
	}
	return b
}

// setTracker keeps st as what the tracker at url last answered.
func (e *entry) setTracker(url string, st transmission.TrackerStat) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.trackers == nil {
		e.trackers = make(map[string]transmission.TrackerStat)
	}
	e.trackers[url] = st
}
