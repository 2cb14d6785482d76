package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"
)

// The daemon's log is made for a service manager: one record per event, with a level,
// and no progress line. --log-format text writes logfmt lines (journald keeps them as
// they are); json writes one JSON object per line, for journald's or a container
// runtime's log collectors. Every record of a torrent's lifecycle comes from note: its
// message is "torrent EVENT", and it carries event (a torrentEvent), id (the RPC id) and
// name, then the event's own fields, so that a program reads the event from a field
// rather than from the wording. The torrents' runs log beside them under the key torrent
// (the info hash's first 12 hex digits), at warn and above unless the level is debug:
// their info records (download starting, complete, resuming from record) tell again
// what a lifecycle record tells.

// torrentEvent is a step of a torrent's lifecycle in the daemon's log.
type torrentEvent string

const (
	evAdded        torrentEvent = "added"             // over RPC or from the watch dir: hash, dir, paused (and from)
	evStarted      torrentEvent = "started"           // torrent-start
	evStopped      torrentEvent = "stopped"           // torrent-stop
	evVerifying    torrentEvent = "verifying"         // torrent-verify
	evVerified     torrentEvent = "verified"          // pieces, of
	evVerifyFailed torrentEvent = "verify_failed"     // err (Warn)
	evResumed      torrentEvent = "resumed"           // a run started with data: pieces, from_record (false: rechecked)
	evMetadata     torrentEvent = "metadata_received" // a magnet link's info: hash
	evCompleted    torrentEvent = "completed"         // every wanted piece verified, the first time
	evSeedingDone  torrentEvent = "seeding_done"      // stopped by its seed limit: limit (ratio or idle), uploaded (this run's)
	evRemoved      torrentEvent = "removed"           // data_deleted
	evMoved        torrentEvent = "location_set"      // torrent-set-location: from, dir, moved (false: looked for there)
	evFailed       torrentEvent = "error"             // its run failed: err (Warn)
	evDropped      torrentEvent = "dropped"           // not restored from the state file: hash, err (Error)
)

func (ev torrentEvent) level() slog.Level {
	switch ev {
	case evDropped:
		return slog.LevelError
	case evFailed, evVerifyFailed:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// note logs ev of e, with attrs after the common fields.
func (d *daemon) note(ev torrentEvent, e *entry, attrs ...any) {
	d.noteTorrent(ev, e.id, e.label(), attrs...)
}

// noteTorrent logs ev of the torrent with RPC id and name, with attrs after the common
// fields; the one place a torrent's lifecycle is logged.
func (d *daemon) noteTorrent(ev torrentEvent, id int, name string, attrs ...any) {
	d.log.Log(context.Background(), ev.level(), "torrent "+string(ev),
		append([]any{"event", string(ev), "id", id, "name", name}, attrs...)...)
}

// daemonLogFlags are the daemon's logging flags.
func daemonLogFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log records as `FORMAT`: text (logfmt lines) or json (one object per line, for journald or a container's log collector)"},
		&cli.StringFlag{Name: "log-level", Usage: "log records at `LEVEL` and above: debug, info, warn or error (default info; --verbose is debug, --quiet warn)"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug messages (peers, RPC calls): --log-level debug"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log only warnings and errors: --log-level warn"},
	}
}

// daemonLogger is the daemon's logger on w, as its flags say, and the one of the
// torrents' runs (SessionConfig.Log) beside it.
func daemonLogger(c *cli.Context, w io.Writer) (log, runs *slog.Logger, err error) {
	level := slog.LevelInfo
	switch {
	case c.IsSet("log-level"):
		if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
			return nil, nil, fmt.Errorf("daemon: --log-level %q: want debug, info, warn or error", c.String("log-level"))
		}
	case c.Bool("verbose"):
		level = slog.LevelDebug
	case c.Bool("quiet"):
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch f := c.String("log-format"); f {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, nil, fmt.Errorf("daemon: --log-format %q: want text or json", f)
	}
	runs = slog.New(h)
	if level > slog.LevelDebug {
		runs = slog.New(levelFloor{h, max(level, slog.LevelWarn)})
	}
	return slog.New(h), runs, nil
}

// levelFloor passes its handler the records at min and above only.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}
