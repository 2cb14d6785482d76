package main

import (
	"math"
	"time"

	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/pipeline"
)

// Seed limits (Transmission's RPC spec, torrent-set's seedRatioLimit, seedRatioMode,
// seedIdleLimit and seedIdleMode; session-set's seedRatioLimit, seedRatioLimited,
// idle-seeding-limit and idle-seeding-limit-enabled): a torrent's mode 0 takes the
// session's limit when it is enabled, 1 its own, 2 none; idle limits are in minutes. A
// seeding torrent that reaches one stops (pipeline.Torrent.SetSeedLimits, which the
// settings reach at once, and at a restart through its Config) and shows as finished:
// isFinished, status stopped. It stays stopped across restarts, as transmission keeps it
// (a torrent stopped by its ratio is saved not running). Its ratio is uploadedEver over
// sizeWhenDone; transmission 3.00 divides by downloadedEver instead when that is not 0
// (tr_torrentGetSeedRatioBytes), which only differs for a torrent that downloaded more
// than its wanted bytes (pieces fetched twice).

// The seed limit modes of torrent-set (tr_ratiolimit, tr_idlelimit).
const (
	seedModeSession   = 0
	seedModeTorrent   = 1
	seedModeUnlimited = 2
)

// seedLimits are the ratio and idle limits of a torrent with settings ts in a session
// with settings s; 0: none.
func seedLimits(s transmission.SessionSettings, ts transmission.TorrentSettings) (ratio float64, idle time.Duration) {
	switch {
	case ts.SeedRatioMode == seedModeTorrent:
		ratio = ts.SeedRatioLimit
	case ts.SeedRatioMode == seedModeSession && s.SeedRatioLimited:
		ratio = s.SeedRatioLimit
	}
	switch {
	case ts.SeedIdleMode == seedModeTorrent:
		idle = time.Duration(ts.SeedIdleLimit) * time.Minute
	case ts.SeedIdleMode == seedModeSession && s.IdleSeedingLimitEnabled:
		idle = time.Duration(s.IdleSeedingLimit) * time.Minute
	}
	return max(ratio, 0), max(idle, 0)
}

// applySeedLimits gives e's torrent its seed limits under session settings s.
func (e *entry) applySeedLimits(s transmission.SessionSettings) error {
	e.mu.Lock()
	t, ts := e.t, e.settings
	e.mu.Unlock()
	return t.SetSeedLimits(seedLimits(s, ts))
}

// applySessionSeedLimits gives every torrent its seed limits under s: those that take the
// session's follow at once.
func (d *daemon) applySessionSeedLimits(s transmission.SessionSettings) {
	for _, e := range d.list() {
		if err := e.applySeedLimits(s); err != nil {
			d.log.Warn("seed limits", "id", e.id, "err", err)
		}
	}
}

// seedingDone is e's torrent reaching a seed limit: it stops, stays stopped across
// restarts and shows as finished until started again.
func (d *daemon) seedingDone(e *entry) {
	e.mu.Lock()
	e.paused, e.finished = true, true
	e.mu.Unlock()
	d.goWait(d.save)
}

// ratioDone reports whether e's torrent, complete, has reached its seed ratio under s:
// transmission's tr_torrentIsSeedRatioDone, which a torrent-start looks at.
func (e *entry) ratioDone(s transmission.SessionSettings) bool {
	v := e.view()
	ratio, _ := seedLimits(s, v.Settings)
	return ratio > 0 && v.HasMetadata && v.LeftUntilDone == 0 && float64(v.UploadedEver) >= math.Ceil(ratio*float64(v.SizeWhenDone))
}

// restartPastRatio is transmission 3.00's torrentStart (libtransmission/torrent.c):
// "Restarted manually -- disabling its seed ratio". A torrent started past its ratio
// seeds on with no ratio limit (seedRatioMode 2) rather than stopping again at once; one
// stopped by its idle limit seeds until idle again, counted from the new start.
func (d *daemon) restartPastRatio(e *entry) {
	s := d.Settings()
	e.mu.Lock()
	e.finished = false
	e.mu.Unlock()
	if !e.ratioDone(s) {
		return
	}
	e.mu.Lock()
	e.settings.SeedRatioMode = seedModeUnlimited
	e.mu.Unlock()
	if err := e.applySeedLimits(s); err != nil {
		d.log.Warn("seed limits", "id", e.id, "err", err)
	}
}

// isFinished is torrent-get's isFinished for a torrent in state: stopped by a seed limit.
// Called with e.mu.
func (e *entry) isFinished(state pipeline.State) bool {
	return state == pipeline.Finished || state == pipeline.Paused && e.finished
}
