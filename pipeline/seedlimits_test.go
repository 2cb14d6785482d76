package pipeline_test

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// uploadBatch is the most block bytes one write of a peer's writer sends (stages'
// uploadBatch, 16 blocks): what a run may send past its seed ratio.
const uploadBatch = 256 << 10

// TestSeedRatioLimit: a seed ratio set while a torrent seeds to a BitStorm leecher ends
// the seeding once the bytes uploaded reach it, counted, not timed. The upload is held
// (1 byte/s) while the ratio is set 1 MiB past what was sent, then let go at 1 MiB/s: the
// run ends Finished, having sent between the ratio's bytes and one upload batch more,
// with one SeedingDone naming the ratio and those bytes. The limits hold across Resume,
// and so does the count: the next run, with the ratio reached by the first one, ends at
// once rather than seeding another ratio's worth.
func TestSeedRatioLimit(t *testing.T) {
	checkGoroutines(t)
	const size = 8 << 20
	tor := stagetest.NewTorrent(t, 193, "ratio-limit", 64<<10, size)
	var events eventLog
	seeder := newSession(t, pipeline.Config{Seed: true, Recheck: true})
	sd, err := seeder.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithStorage(filled(t, tor)),
		pipeline.WithPeerSource(stages.StaticPeers(nil)), pipeline.WithEvents(events.add))
	if err != nil {
		t.Fatal(err)
	}
	must(t, sd.SetLimits(0, 1<<20))
	if err := sd.SetSeedLimits(-0.5, 0); err == nil {
		t.Error("SetSeedLimits(-0.5, 0) = nil, want an error")
	}
	leecher := newSession(t, pipeline.Config{OutDir: t.TempDir()})
	if _, err := leecher.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithStorage(stagetest.NewMemStorage(size)),
		pipeline.WithPeerSource(stages.StaticPeers{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), seeder.Port())})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	deadline := time.Now().Add(30 * time.Second)
	for sd.Stats().Uploaded < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the seeder uploaded %d bytes in 30 s", sd.Stats().Uploaded)
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(t, sd.SetLimits(0, 1)) // a batch under way may still go, counted below the goal
	from := sd.Stats().Uploaded
	if from > size-3<<20 {
		t.Fatalf("%d of %d bytes uploaded before the ratio was set: too few left for it", from, size)
	}
	ratio := float64(from+1<<20) / size
	must(t, sd.SetSeedLimits(ratio, 0))
	if r, idle := sd.SeedLimits(); r != ratio || idle != 0 {
		t.Errorf("SeedLimits() = %v, %v; want %v, 0", r, idle, ratio)
	}
	must(t, sd.SetLimits(0, 1<<20))
	if st := sd.Wait(ctx); st != pipeline.Finished {
		t.Fatalf("seeder %v (%v), want finished at its ratio", st, sd.Err())
	}
	goal := int64(math.Ceil(ratio * size))
	up := sd.Stats().Uploaded
	t.Logf("ratio %.4f: goal %d bytes, uploaded %d (%d past it)", ratio, goal, up, up-goal)
	if up < goal || up > goal+uploadBatch {
		t.Errorf("uploaded %d bytes, want %d to %d: the ratio's bytes, and at most one batch more", up, goal, goal+uploadBatch)
	}
	if done := eventsOf(&events, func(stages.SeedingDone) bool { return true }); len(done) != 1 || done[0] != (stages.SeedingDone{Limit: stages.SeedRatio, Uploaded: up}) {
		t.Errorf("SeedingDone events %+v, want one for the ratio at %d bytes", done, up)
	}

	must(t, sd.Resume())
	if st := sd.Wait(ctx); st != pipeline.Finished {
		t.Fatalf("resumed past its ratio: %v (%v), want finished at once", st, sd.Err())
	}
	if r, _ := sd.SeedLimits(); r != ratio {
		t.Errorf("SeedLimits() after Resume: ratio %v, want %v", r, ratio)
	}
	done := eventsOf(&events, func(stages.SeedingDone) bool { return true })
	if len(done) != 2 || done[1].Limit != stages.SeedRatio || done[1].Uploaded >= 1<<20 {
		t.Errorf("SeedingDone events %+v, want a second for the ratio with less than 1 MiB sent: the first run's upload counts", done)
	}
}

// TestSeedLimitFreesSeedSlot: with one seed slot, a seed that reaches its ratio ends its
// run and gives the slot to the seed queued behind it, before its Done closes. Its ratio
// is reached already when set: AddUploaded counts a torrent's worth sent elsewhere.
func TestSeedLimitFreesSeedSlot(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := newQueueSession(t, 0, 1, pipeline.Config{Seed: true, Recheck: true})
	var ts []*pipeline.Torrent
	var dones []<-chan struct{}
	for i := range 2 {
		tor := stagetest.NewTorrent(t, uint64(195+i), "slot", 16<<10, 100_000)
		tr, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithStorage(filled(t, tor)), pipeline.WithPeerSource(stages.StaticPeers(nil)))
		if err != nil {
			t.Fatal(err)
		}
		ts, dones = append(ts, tr), append(dones, tr.Done())
	}
	// Whichever completes its check first seeds; the other's run ends, queued to seed.
	seeding, waiting := ts[0], ts[1]
	select {
	case <-dones[0]:
		seeding, waiting = ts[1], ts[0]
	case <-dones[1]:
	case <-time.After(30 * time.Second):
		t.Fatalf("seeds still %v and %v", ts[0].State(), ts[1].State())
	}
	if st := waiting.State(); st != pipeline.Queued || !waiting.QueuedToSeed() {
		t.Fatalf("second seed %v, want queued to seed", st)
	}
	seeding.AddUploaded(100_000)
	must(t, seeding.SetSeedLimits(1, 0))
	if st := seeding.Wait(ctx); st != pipeline.Finished {
		t.Fatalf("seed at its ratio: %v, want finished", st)
	}
	if st := waiting.State(); st != pipeline.Running {
		t.Errorf("queued seed after the other reached its ratio: %v, want running in the freed slot", st)
	}
}
