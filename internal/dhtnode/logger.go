package dhtnode

import (
	"context"
	"log/slog"

	alog "github.com/anacrolix/log"
)

// anacrolixLogger routes the library's messages to log at Debug, whatever their level:
// the library logs an unreachable bootstrap as an error, and a DHT without internet
// must not fill a download's log with warnings. When log has Debug off, the library is
// told to drop everything before formatting it.
func anacrolixLogger(log *slog.Logger) alog.Logger {
	var l alog.Logger
	l.SetHandlers(slogHandler{log})
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return l.WithFilterLevel(alog.Critical)
	}
	return l.WithFilterLevel(alog.Debug)
}

type slogHandler struct{ log *slog.Logger }

func (h slogHandler) Handle(r alog.Record) {
	h.log.Debug("dht: " + r.Text())
}
