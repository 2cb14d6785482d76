package main

import (
	"github.com/bitstorm/bitstorm/internal/transmission"
)

// Speed limits: session-set's speed-limit-down and -up (with their -enabled flags, or
// alt-speed-down and -up while alt-speed-enabled, Transmission's turtle mode) limit the
// session's torrents together, torrent-set's downloadLimit and uploadLimit (with
// downloadLimited and uploadLimited) one torrent; a byte waits for both, unless the
// torrent's honorsSessionLimits is false. They act at once on running torrents
// (Session.SetLimits, Torrent.SetLimits, Torrent.SetHonorsSessionLimits) and come back
// from the state file at a restart: the session's through SessionConfig, a torrent's
// through its Config (torrentOptions) and add. The RPC's unit is Transmission's kB/s, 1000 bytes a second
// (session-get's units: speed-bytes 1000), which transmission-remote 3.00 sends as typed
// (-d 100 is 100 kB/s).

// speedBytes is bytes per second in one of the RPC's kB/s.
const speedBytes = 1000

// sessionLimits are s's session limits in bytes per second; 0: none.
func sessionLimits(s transmission.SessionSettings) (down, up int64) {
	if s.AltSpeedEnabled { // turtle mode replaces the limits while on (0 is no limit here)
		return s.AltSpeedDown * speedBytes, s.AltSpeedUp * speedBytes
	}
	return limitBytes(s.SpeedLimitDown, s.SpeedLimitDownEnabled), limitBytes(s.SpeedLimitUp, s.SpeedLimitUpEnabled)
}

// torrentLimits are s's limits of one torrent in bytes per second; 0: none.
func torrentLimits(s transmission.TorrentSettings) (down, up int64) {
	return limitBytes(s.DownloadLimit, s.DownloadLimited), limitBytes(s.UploadLimit, s.UploadLimited)
}

func limitBytes(kBps int64, on bool) int64 {
	if !on {
		return 0
	}
	return kBps * speedBytes
}

// applySessionLimits makes s's limits the session's.
func (d *daemon) applySessionLimits(s transmission.SessionSettings) error {
	return d.sess.SetLimits(sessionLimits(s))
}

// applyLimits makes s's limits e's torrent's, and whether it honors the session's.
func (e *entry) applyLimits(s transmission.TorrentSettings) error {
	t := e.torrent()
	if err := t.SetLimits(torrentLimits(s)); err != nil {
		return err
	}
	t.SetHonorsSessionLimits(s.HonorsSessionLimits)
	return nil
}
