package pipeline

import (
	"fmt"
	"sync"

	"github.com/bitstorm/bitstorm/stages"
)

// Rate limits (golang.org/x/time/rate, through stages.Rate): Config.DownloadLimit and
// UploadLimit cap one torrent, SessionConfig's the session's torrents together; a
// connection waits for both. graph.go puts the Limit stage after Dial and Listen, which
// gives each connection the run's rates: the Request stage's reader waits after each
// block, its writer before each batch (the metadata phase's few small messages do not
// wait). Every run has its rates, limited or not, so that SetLimits acts on the
// connections of a running torrent at once; without a limit a wait is an atomic load.

// runRates are a run's rates: its torrent's and its session's.
type runRates struct {
	down, up         *stages.Rate // the torrent's: from Config, or its Torrent's (kept)
	sessDown, sessUp *stages.Rate // its Session's; nil outside one
	kept             *keptRates   // a Torrent's, which outlive its runs
}

// keptRates are a Torrent's own rates: made by its first run from its Config, then kept
// across Pause and Resume and changed by SetLimits.
type keptRates struct {
	mu       sync.Mutex
	down, up *stages.Rate
}

// withTorrentLimits gives a Torrent's run the torrent's rates and its session's.
func withTorrentLimits(t *Torrent) Option {
	return func(p *Pipeline) {
		p.rates.kept, p.rates.sessDown, p.rates.sessUp = &t.rates, t.s.down, t.s.up
	}
}

// limits returns the run's rates, made on the first call from the Config (or taken from
// its Torrent's); a negative limit is an error.
func (p *Pipeline) limits() (stages.Limits, error) {
	r := &p.rates
	if r.down == nil {
		if err := r.make(p.cfg.DownloadLimit, p.cfg.UploadLimit); err != nil {
			return stages.Limits{}, err
		}
	}
	return stages.Limits{Down: []*stages.Rate{r.down, r.sessDown}, Up: []*stages.Rate{r.up, r.sessUp}}, nil
}

func (r *runRates) make(down, up int64) error {
	if k := r.kept; k != nil {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.down != nil {
			r.down, r.up = k.down, k.up
			return nil
		}
	}
	var err error
	if r.down, r.up, err = newRates(down, up); err != nil {
		return err
	}
	if r.kept != nil {
		r.kept.down, r.kept.up = r.down, r.up
	}
	return nil
}

// newRates are the rates of a download and an upload limit, or an error naming the
// negative one.
func newRates(down, up int64) (*stages.Rate, *stages.Rate, error) {
	if err := checkLimits(down, up); err != nil {
		return nil, nil, err
	}
	d, _ := stages.NewRate(down)
	u, _ := stages.NewRate(up)
	return d, u, nil
}

// checkLimits checks a download and an upload limit in bytes per second.
func checkLimits(down, up int64) error {
	if down < 0 {
		return fmt.Errorf("download limit %d bytes/s: must not be negative (0 is no limit)", down)
	}
	if up < 0 {
		return fmt.Errorf("upload limit %d bytes/s: must not be negative (0 is no limit)", up)
	}
	return nil
}

// SetLimits changes the session's download and upload limits, in bytes per second (0: no
// limit), which its torrents share; running connections follow at once. A negative limit
// is an error, and neither changes.
func (s *Session) SetLimits(down, up int64) error {
	if err := checkLimits(down, up); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	s.down.Set(down)
	s.up.Set(up)
	return nil
}

// Limits are the session's download and upload limits in bytes per second; 0: none.
func (s *Session) Limits() (down, up int64) { return s.down.Get(), s.up.Get() }

// SetLimits changes the torrent's own download and upload limits, in bytes per second (0:
// no limit); its running connections follow at once, and the limits hold across Pause and
// Resume (a later run does not go back to its Config's). The session's limits apply as
// well. A negative limit is an error, and neither changes.
func (t *Torrent) SetLimits(down, up int64) error {
	if err := checkLimits(down, up); err != nil {
		return fmt.Errorf("torrent %x: %w", t.hash[:6], err)
	}
	k := &t.rates
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down == nil { // no run built yet (Add builds one, so only a Torrent being added)
		k.down, k.up, _ = newRates(down, up)
		return nil
	}
	k.down.Set(down)
	k.up.Set(up)
	return nil
}

// Limits are the torrent's own download and upload limits in bytes per second; 0: none.
func (t *Torrent) Limits() (down, up int64) {
	k := &t.rates
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down == nil {
		return 0, 0
	}
	return k.down.Get(), k.up.Get()
}
