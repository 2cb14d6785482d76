package pipeline

import (
	"fmt"

	"golang.org/x/time/rate"

	"github.com/bitstorm/bitstorm/stages"
)

// Rate limits (golang.org/x/time/rate): Config.DownloadLimit and UploadLimit cap one
// torrent, SessionConfig's the session's torrents together; a connection waits for both.
// graph.go puts the Limit stage after Dial and Listen, so the metadata phase and the
// download are held alike.

// withSessionLimits adds a Session's limiters to a torrent's run.
func withSessionLimits(down, up *rate.Limiter) Option {
	return func(p *Pipeline) { p.sessionDown, p.sessionUp = down, up }
}

// limits returns the run's limiters, or ok false when there are none.
func (p *Pipeline) limits() (l stages.Limits, ok bool, err error) {
	down, err := stages.NewLimiter(p.cfg.DownloadLimit)
	if err != nil {
		return l, false, fmt.Errorf("download limit: %w", err)
	}
	up, err := stages.NewLimiter(p.cfg.UploadLimit)
	if err != nil {
		return l, false, fmt.Errorf("upload limit: %w", err)
	}
	l = stages.Limits{Down: []*rate.Limiter{down, p.sessionDown}, Up: []*rate.Limiter{up, p.sessionUp}}
	ok = down != nil || up != nil || p.sessionDown != nil || p.sessionUp != nil
	return l, ok, nil
}
