package main

import (
	"cmp"
	"slices"

	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/pipeline"
)

// The RPC's session limits on connections and on active torrents: peer-limit-global is
// the session's connection cap (pipeline.SessionConfig.MaxConns), and the download and
// seed queues (download-queue-enabled and -size, seed-queue-enabled and -size) its
// MaxActiveDownloads and MaxActiveSeeds. session-set changes them at once; they are kept
// in the state file with the other settings. A queued torrent is listed with status 3
// (queued to download) or 5 (queued to seed), as transmission numbers them.

// Transmission's defaults for the queue sizes (tr_sessionGetQueueSize); the queues
// themselves are off until enabled.
const (
	defaultDownloadQueue = 5
	defaultSeedQueue     = 10
)

// queueDefaults gives s the default queue sizes where it has none (a first start, or a
// state file from before the queues).
func queueDefaults(s *transmission.SessionSettings) {
	if s.DownloadQueueSize <= 0 {
		s.DownloadQueueSize = defaultDownloadQueue
	}
	if s.SeedQueueSize <= 0 {
		s.SeedQueueSize = defaultSeedQueue
	}
}

// sessionQueue is the session's connection cap and its limits on active downloads and
// seeds that s asks for: a disabled queue is no limit (0), and so is a peer-limit-global
// of 0 (-1 for a SessionConfig, where 0 is the default).
func sessionQueue(s transmission.SessionSettings) (conns, downloads, seeds int) {
	conns = s.PeerLimitGlobal
	if conns <= 0 {
		conns = -1
	}
	if s.DownloadQueueEnabled {
		downloads = s.DownloadQueueSize
	}
	if s.SeedQueueEnabled {
		seeds = s.SeedQueueSize
	}
	return conns, downloads, seeds
}

// applyQueue has the session use s's connection cap and queue limits.
func (d *daemon) applyQueue(s transmission.SessionSettings) {
	conns, downloads, seeds := sessionQueue(s)
	d.sess.SetMaxConns(max(conns, 0))
	d.sess.SetQueueLimits(downloads, seeds)
}

// queueStatus is the status of a queued torrent: waiting to seed when complete.
func queueStatus(t *pipeline.Torrent) transmission.Status {
	if t.QueuedToSeed() {
		return transmission.StatusSeedWait
	}
	return transmission.StatusDownloadWait
}

// numberQueue sets each torrent's queuePosition: transmission gives every torrent one,
// the next to start lowest. The queued ones come first, in their order in the queue
// (view set theirs); the others follow by id.
func numberQueue(ts []*transmission.Torrent) {
	queued := 0
	for _, t := range ts {
		if t.QueuePosition >= 0 {
			queued++
		}
	}
	next := queued
	for _, t := range ts {
		if t.QueuePosition < 0 {
			t.QueuePosition = next
			next++
		}
	}
}

// SetQueuePosition moves a queued torrent in the queue (queue-move-top, -up, -down,
// -bottom); one that is not queued stays where it is. A move is saved at once, so that
// the order survives a kill as well as a stop.
func (d *daemon) SetQueuePosition(id, pos int) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	if e.torrent().SetQueuePosition(pos) {
		d.save()
	}
	return nil
}

// queueRecord is e's place in the queue for the state file, nil when it is not queued.
// The session's Close takes every torrent out of the queue (it pauses them) before the
// daemon's last save: one paused that way, not by the user, keeps the place the save
// before found. Called with e.mu.
func (e *entry) queueRecord() *int {
	if e.t == nil {
		return nil
	}
	if pos := e.t.QueuePosition(); pos >= 0 {
		e.queued = &pos
	} else if e.paused || e.t.State() != pipeline.Paused {
		e.queued = nil
	}
	return e.queued
}

// restoreOrder is the order torrents are added back in after a restart, so that the
// queue comes back as it was: those that were not queued first, by id (the ones that ran
// take the slots again), then the queued ones in their order in the queue.
func restoreOrder(recs []torrentRecord) []torrentRecord {
	out := slices.Clone(recs)
	slices.SortStableFunc(out, func(a, b torrentRecord) int {
		switch {
		case a.Queue == nil && b.Queue == nil:
			return cmp.Compare(a.ID, b.ID)
		case a.Queue == nil:
			return -1
		case b.Queue == nil:
			return 1
		}
		return cmp.Compare(*a.Queue, *b.Queue)
	})
	return out
}
