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

// runRates are a run's rates: from its Config, or its Torrent's (kept across its runs,
// under its session's).
type runRates struct {
	down, up *stages.Rate
	t        *Torrent // withTorrentLimits
}

// keptRates are a Torrent's own rates, under its session's (stages.Rate.Under): made by
// its first run from its Config, then kept across Pause and Resume and changed by
// SetLimits and SetHonorsSessionLimits.
type keptRates struct {
	mu            sync.Mutex
	down, up      *stages.Rate
	ignoreSession bool // SetHonorsSessionLimits(false)
}

// withTorrentLimits gives a Torrent's run the torrent's rates.
func withTorrentLimits(t *Torrent) Option { return func(p *Pipeline) { p.rates.t = t } }

// limits returns the run's rates, made on the first call from the Config (or taken from
// its Torrent's); a negative limit is an error.
func (p *Pipeline) limits() (stages.Limits, error) {
	r := &p.rates
	if r.down == nil {
		var err error
		if r.t != nil {
			r.down, r.up, err = r.t.keptRates(p.cfg.DownloadLimit, p.cfg.UploadLimit)
		} else {
			r.down, r.up, err = newRates(p.cfg.DownloadLimit, p.cfg.UploadLimit)
		}
		if err != nil {
			return stages.Limits{}, err
		}
	}
	return stages.Limits{Down: []*stages.Rate{r.down}, Up: []*stages.Rate{r.up}}, nil
}

// keptRates are t's rates; the first call makes them of down and up.
func (t *Torrent) keptRates(down, up int64) (*stages.Rate, *stages.Rate, error) {
	k := &t.rates
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down == nil {
		if err := t.makeRates(down, up); err != nil {
			return nil, nil, err
		}
	}
	return k.down, k.up, nil
}

// makeRates makes t's rates, under its session's. Called with t.rates.mu held.
func (t *Torrent) makeRates(down, up int64) error {
	d, u, err := newRates(down, up)
	if err != nil {
		return err
	}
	k := &t.rates
	k.down, k.up = d.Under(t.s.down), u.Under(t.s.up)
	k.down.HonorParent(!k.ignoreSession)
	k.up.HonorParent(!k.ignoreSession)
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
		return t.makeRates(down, up)
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

// SetHonorsSessionLimits decides whether the torrent's bytes wait for its session's limits
// too (they do at first), as transmission's torrent-set honorsSessionLimits; it acts on
// the running connections at once and holds across Pause and Resume.
func (t *Torrent) SetHonorsSessionLimits(on bool) {
	k := &t.rates
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ignoreSession = !on
	if k.down != nil {
		k.down.HonorParent(on)
		k.up.HonorParent(on)
	}
}

// HonorsSessionLimits reports whether the torrent's bytes wait for its session's limits.
func (t *Torrent) HonorsSessionLimits() bool {
	k := &t.rates
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.ignoreSession
}
