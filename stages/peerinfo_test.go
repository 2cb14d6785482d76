package stages

import (
	"math"
	"testing"
	"time"
)

// TestPeerMeterRates: a snapshot's rate is measured from the oldest mark within the
// last five seconds, or from the last snapshot when that is older; marks are kept one per
// half second and no more than the window needs.
func TestPeerMeterRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	m := newPeerMeter(t0)
	for _, step := range []struct {
		at         float64 // seconds since the connection
		recv, sent int64   // the session's counters then
		down, up   float64 // rates the snapshot gives
	}{
		{1, 1000, 0, 1000, 0},                   // since the connection
		{2, 3000, 500, 1500, 250},               // since the connection: 3000 B in 2 s
		{2.2, 3000, 500, 3000 / 2.2, 500 / 2.2}, // no mark kept at 2.2 s (under half a second after 2 s)
		{6, 7000, 500, 1200, 100},               // from 1 s: the oldest mark within five seconds
		{7, 7000, 500, 800, 0},                  // from 2 s
		{8, 7000, 500, 0, 0},                    // from 6 s (the 2.2 s snapshot left no mark)
		{60, 59000, 20000, 1000, 375},           // every mark is older than five seconds: since the last, at 8 s
	} {
		down, up := m.rates(at(step.at), step.recv, step.sent)
		if math.Abs(down-step.down) > 1e-6 || math.Abs(up-step.up) > 1e-6 {
			t.Errorf("at %gs: rates %g, %g; want %g, %g (marks %v)", step.at, down, up, step.down, step.up, m.marks)
		}
	}
	if len(m.marks) > maxMarks {
		t.Errorf("%d marks kept, want at most %d", len(m.marks), maxMarks)
	}
	for range 100 { // snapshots without end keep a bounded number of marks
		t0 = t0.Add(time.Second)
		m.rates(at(100).Add(t0.Sub(time.Unix(1000, 0))), 0, 0)
	}
	if len(m.marks) > maxMarks {
		t.Errorf("after 100 snapshots a second apart: %d marks kept, want at most %d", len(m.marks), maxMarks)
	}
}
