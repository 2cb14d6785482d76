package pipeline

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/stages"
)

// Seed limits: a complete torrent that seeds stops once it reaches one of them; its run
// ends as a completed one does (Run returns nil, a Torrent is Finished), after a
// stages.SeedingDone event that names the limit. They are Transmission's seedRatioLimit
// and seedIdleLimit (libtransmission/torrent.c, tr_torrentCheckSeedLimit), and
// Config.SeedTime:
//   - the ratio: the bytes uploaded over the wanted bytes (Stats.Wanted, Transmission's
//     sizeWhenDone; Transmission 3.00 divides by downloadedEver instead when it is not
//     zero, tr_torrentGetSeedRatioBytes), counted over a Torrent's runs. It is
//     count-driven: the Scheduler's upload goal ends the seeding from the peer writer
//     whose batch reaches it, so the run sends at most one batch (256 KiB) per peer past
//     it, whatever the clock;
//   - idle: no block sent for that long, counted in ticks of the shared clock (a second)
//     that saw no upload, as Transmission looks once a second; it ends between Idle and
//     Idle plus a tick after the last block;
//   - Config.SeedTime: that long since completion, on the same ticks.
// A Torrent's ratio and idle limits can change while it runs (SetSeedLimits) and hold
// across Pause and Resume. No limit costs nothing: no goal, and the tick the run's
// watch loop has anyway.

// seedLimits are a run's ratio and idle limits: its Config's, or its Torrent's (kept
// across its runs and changed by SetSeedLimits).
type seedLimits struct {
	mu     sync.Mutex
	ratio  float64
	idle   time.Duration
	set    bool          // taken from a Config, or set by SetSeedLimits: later Configs do not change them
	before int64         // bytes uploaded before the current run: a Torrent's earlier runs, and AddUploaded
	wake   chan struct{} // a change wakes the current run's watch loop (buffered)
}

func newSeedLimits() *seedLimits { return &seedLimits{wake: make(chan struct{}, 1)} }

// withSeedLimits gives a Torrent's run the torrent's seed limits.
func withSeedLimits(l *seedLimits) Option { return func(p *Pipeline) { p.seed = l } }

// init takes ratio and idle, from a run's Config, unless the limits were set already.
func (l *seedLimits) init(ratio float64, idle time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.set {
		l.ratio, l.idle, l.set = max(ratio, 0), max(idle, 0), true
	}
}

// get returns the limits and the bytes uploaded before the current run.
func (l *seedLimits) get() (ratio float64, idle time.Duration, before int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ratio, l.idle, l.before
}

// change runs f on the limits, then wakes the current run.
func (l *seedLimits) change(f func()) {
	l.mu.Lock()
	f()
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // a wake is pending already
	}
}

// checkSeedLimits checks a ratio and an idle limit.
func checkSeedLimits(ratio float64, idle time.Duration) error {
	if ratio < 0 || math.IsNaN(ratio) || math.IsInf(ratio, 0) {
		return fmt.Errorf("seed ratio %v: must be a number of at least 0 (0 is no limit)", ratio)
	}
	if idle < 0 {
		return fmt.Errorf("seed idle limit %v: must not be negative (0 is no limit)", idle)
	}
	return nil
}

// SetSeedLimits changes the torrent's seed limits (0: none): it stops seeding once it
// has uploaded ratio times its wanted bytes over its runs, or when no block was sent to
// any peer for idle. They act at once on a seeding run, which ends Finished when one is
// reached (at once if it is already), and hold across Pause and Resume in place of its
// Config's SeedRatio and SeedIdle. A negative or NaN limit is an error, and nothing
// changes.
func (t *Torrent) SetSeedLimits(ratio float64, idle time.Duration) error {
	if err := checkSeedLimits(ratio, idle); err != nil {
		return fmt.Errorf("torrent %x: %w", t.hash[:6], err)
	}
	t.seed.change(func() { t.seed.ratio, t.seed.idle, t.seed.set = ratio, idle, true })
	return nil
}

// SeedLimits are the torrent's seed ratio and idle limit; 0: none.
func (t *Torrent) SeedLimits() (ratio float64, idle time.Duration) {
	ratio, idle, _ = t.seed.get()
	return ratio, idle
}

// AddUploaded counts n bytes uploaded elsewhere (by an earlier process that seeded the
// torrent, say) toward the torrent's seed ratio; a seeding run looks at its ratio again.
func (t *Torrent) AddUploaded(n int64) {
	t.seed.change(func() { t.seed.before += max(n, 0) })
}

// ranUploaded counts a finished run's upload toward the next runs' ratio.
func (l *seedLimits) ranUploaded(n int64) { l.change(func() { l.before += n }) }

// seeding reports whether the run goes on after completion: Config.Seed, or a limit
// to seed up to.
func (p *Pipeline) seeding() bool {
	ratio, idle, _ := p.seed.get()
	return p.cfg.Seed || ratio > 0 || idle > 0 || p.cfg.SeedTime > 0
}

// seedRun is a run's seeding, from its completion to a limit or the run's end. Its ratio
// goal is the Scheduler's upload goal; idle and the seed time are looked at on the
// watch loop's ticks.
type seedRun struct {
	p      *Pipeline
	r      *run
	env    *stages.Env
	since  time.Time // completion
	period time.Duration
	lastUp int64 // Stats.Uploaded at the last tick
	quiet  int   // ticks since the upload last moved
	once   sync.Once
}

// startSeeding begins the run's seeding, at its completion.
func (p *Pipeline) startSeeding(r *run, env *stages.Env, period time.Duration) *seedRun {
	sd := &seedRun{p: p, r: r, env: env, since: time.Now(), period: period, lastUp: p.sched.Stats().Uploaded}
	ratio, idle, _ := p.seed.get()
	p.log.Info("seeding", "ratio", ratio, "idle", idle, "time", p.cfg.SeedTime)
	sd.arm()
	return sd
}

// arm sets the Scheduler's upload goal from the ratio limit as it is now, or ends the
// seeding when the ratio is reached already.
func (sd *seedRun) arm() {
	ratio, _, before := sd.p.seed.get()
	if ratio <= 0 {
		sd.p.sched.SetUploadGoal(0, nil)
		return
	}
	st := sd.p.sched.Stats()
	goal := int64(math.Ceil(ratio*float64(st.Wanted))) - before // bytes of this run
	if goal <= st.Uploaded {
		sd.end(stages.SeedRatio)
		return
	}
	sd.p.sched.SetUploadGoal(goal, func() { sd.end(stages.SeedRatio) })
}

// stop clears the goal: the torrent wants more pieces, and downloads again.
func (sd *seedRun) stop() { sd.p.sched.SetUploadGoal(0, nil) }

// tick looks at the idle limit and the seed time, once a tick of the clock; it reports
// whether the seeding ended.
func (sd *seedRun) tick(now time.Time, st stages.Stats) bool {
	if st.Uploaded != sd.lastUp {
		sd.lastUp, sd.quiet = st.Uploaded, 0
	} else {
		sd.quiet++
	}
	_, idle, _ := sd.p.seed.get()
	switch {
	case idle > 0 && time.Duration(sd.quiet)*sd.period >= idle:
		sd.end(stages.SeedIdle)
	case sd.p.cfg.SeedTime > 0 && now.Sub(sd.since) >= sd.p.cfg.SeedTime:
		sd.end(stages.SeedTime)
	default:
		return false
	}
	return true
}

// end ends the seeding, and the run, once: from the watch loop, or from the peer writer
// whose batch reached the ratio.
func (sd *seedRun) end(limit stages.SeedLimit) {
	sd.once.Do(func() {
		up := sd.p.sched.Stats().Uploaded
		sd.p.log.Info("seeding done", "limit", limit, "uploaded", up)
		sd.env.Emit(stages.SeedingDone{Limit: limit, Uploaded: up})
		sd.r.cancel(nil)
	})
}
