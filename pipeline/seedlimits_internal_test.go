package pipeline

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// seedingRun is a complete run's watch loop on a one-second clock, without peers: the
// test counts uploads into its Scheduler (Uploaded) as a peer writer would.
type seedingRun struct {
	p    *Pipeline
	r    *run
	mu   sync.Mutex
	done []stages.SeedingDone
	at   []time.Duration // when each came, since the start
}

// startSeedingRun starts the watch loop of a run of a complete torrent (a 1 MiB one) with
// cfg, in the synctest bubble of the caller.
func startSeedingRun(t *testing.T, cfg Config) *seedingRun {
	tor := stagetest.NewTorrent(t, 191, "seedlimits", 64<<10, 1<<20)
	sr := &seedingRun{}
	start := time.Now()
	events := func(e stages.Event) {
		if d, ok := e.(stages.SeedingDone); ok {
			sr.mu.Lock()
			sr.done, sr.at = append(sr.done, d), append(sr.at, time.Since(start))
			sr.mu.Unlock()
		}
	}
	sr.p = newPipeline([]Option{WithConfig(cfg), WithEvents(events)})
	sr.p.setMeta(tor.Meta)
	for i := range tor.Meta.Info.NumPieces() {
		sr.p.sched.MarkDone(i)
	}
	sr.r = sr.p.startRun(t.Context(), tor.Meta.InfoHash)
	env := &stages.Env{Swarm: sr.r.sw, Info: &tor.Meta.Info, Sched: sr.p.sched}
	clock := newClock(time.Second)
	go sr.p.watch(sr.r, env, clock)
	t.Cleanup(func() { sr.r.cancel(nil) })
	synctest.Wait() // the loop has seen the completion and seeds
	return sr
}

// events are the SeedingDone events so far, and when they came.
func (sr *seedingRun) events() ([]stages.SeedingDone, []time.Duration) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return append([]stages.SeedingDone(nil), sr.done...), append([]time.Duration(nil), sr.at...)
}

// TestSeedIdleLimit: in virtual time, a seed with an idle limit of 3 s that uploads a
// block every second until 4.5 s ends at the tick of 8 s: the tick of 5 s saw the last
// block, and three ticks without one follow. Its run's context ends with a nil cause (a
// completed run), and one SeedingDone names the idle limit with the bytes uploaded.
func TestSeedIdleLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := startSeedingRun(t, Config{SeedIdle: 3 * time.Second})
		for range 5 {
			time.Sleep(500 * time.Millisecond)
			sr.p.sched.Uploaded(16 << 10)
			time.Sleep(500 * time.Millisecond)
		}
		<-sr.r.ctx.Done()
		if err := context.Cause(sr.r.ctx); err != context.Canceled {
			t.Errorf("the run ended with cause %v, want a plain cancel (finished)", err)
		}
		done, at := sr.events()
		if want := (stages.SeedingDone{Limit: stages.SeedIdle, Uploaded: 5 * 16 << 10}); len(done) != 1 || done[0] != want {
			t.Fatalf("SeedingDone events %+v, want one %+v", done, want)
		}
		if at[0] != 8*time.Second {
			t.Errorf("the idle limit ended the seeding at %v, want 8s: the last block at 4.5s, then 3 ticks without one", at[0])
		}
	})
}

// TestSeedLimitsChange: limits changed while a run seeds act at once. An idle limit
// raised before it is reached holds the run on; lowered below the time already idle it
// ends the run at the next tick. A ratio is count-driven: the Uploaded call that brings
// the count to it ends the run before it returns, with no tick; a ratio reached already
// when it is set ends the run at once.
func TestSeedLimitsChange(t *testing.T) {
	const size = 1 << 20
	synctest.Test(t, func(t *testing.T) {
		sr := startSeedingRun(t, Config{Seed: true, SeedIdle: 2 * time.Second})
		sr.p.seed.change(func() { sr.p.seed.idle = time.Hour })
		synctest.Wait()
		time.Sleep(10*time.Second + 500*time.Millisecond) // between ticks
		if done, _ := sr.events(); len(done) != 0 || sr.r.ctx.Err() != nil {
			t.Fatalf("idle 10.5 s under a limit raised to 1 h: events %+v, run ended %v", done, sr.r.ctx.Err())
		}
		sr.p.seed.change(func() { sr.p.seed.idle = 5 * time.Second })
		<-sr.r.ctx.Done()
		if done, at := sr.events(); len(done) != 1 || done[0].Limit != stages.SeedIdle || at[0] != 11*time.Second {
			t.Errorf("idle lowered to 5 s after 10.5 s: events %+v at %v, want one idle at 11s (the next tick)", done, at)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		sr := startSeedingRun(t, Config{Seed: true})
		sr.p.seed.change(func() { sr.p.seed.ratio = 0.5 })
		synctest.Wait() // the loop armed the goal: half the size
		sr.p.sched.Uploaded(size/2 - 1)
		if sr.r.ctx.Err() != nil {
			t.Fatal("the run ended a byte short of the ratio")
		}
		sr.p.sched.Uploaded(256 << 10) // a batch that passes the goal
		if sr.r.ctx.Err() == nil {
			t.Fatal("the Uploaded call that reached the ratio returned with the run going on")
		}
		if done, _ := sr.events(); len(done) != 1 || done[0] != (stages.SeedingDone{Limit: stages.SeedRatio, Uploaded: size/2 - 1 + 256<<10}) {
			t.Errorf("SeedingDone events %+v, want one for the ratio at %d bytes", done, size/2-1+256<<10)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		sr := startSeedingRun(t, Config{Seed: true})
		sr.p.sched.Uploaded(size / 4)
		sr.p.seed.change(func() { sr.p.seed.ratio, sr.p.seed.before = 0.5, size/4 }) // half of it in an earlier run
		synctest.Wait()
		if done, at := sr.events(); len(done) != 1 || done[0].Limit != stages.SeedRatio || at[0] != 0 || sr.r.ctx.Err() == nil {
			t.Errorf("a ratio reached already when set: events %+v at %v (run ended: %v), want the run ended at once", done, at, sr.r.ctx.Err())
		}
	})
}
