package stages

import (
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/wire"
)

// linkSim drives a windowCtl as a session does, against a peer on a path of a given round
// trip that serves one block every BlockSize/rate, first come first served, all in virtual
// time: no clock, no goroutine, no dependence on the machine's speed.
type linkSim struct {
	w       windowCtl
	window  int
	limit   int
	now     time.Time
	rtt     time.Duration // the path's round trip, request to block, without a queue
	rate    float64       // bytes/s the peer serves
	free    time.Time     // when the peer is done with the blocks asked so far
	inroute []simBlock    // requested blocks, in the order they arrive
	next    int           // next block index to request
	got     int64         // bytes delivered
	maxOut  int           // most requests outstanding at once
}

type simBlock struct {
	r  BlockReq
	at time.Time // when it arrives
}

func newLinkSim(rtt time.Duration, rate float64, limit int) *linkSim {
	now := time.Unix(1_000_000, 0)
	return &linkSim{w: newWindowCtl(4, 3*time.Second), window: 4, limit: limit, now: now, free: now, rtt: rtt, rate: rate}
}

// refill sends what the window allows, as plan does.
func (l *linkSim) refill() {
	n := l.w.allow(l.now, len(l.inroute), l.window)
	for range max(n, 0) {
		r := BlockReq{Piece: l.next / 16, Begin: l.next % 16 * wire.BlockSize, Length: wire.BlockSize}
		l.next++
		l.w.sent(l.now, r, len(l.inroute))
		start := l.now.Add(l.rtt / 2)
		if l.free.After(start) {
			start = l.free
		}
		l.free = start.Add(time.Duration(float64(time.Second) * wire.BlockSize / l.rate))
		l.inroute = append(l.inroute, simBlock{r: r, at: l.free.Add(l.rtt / 2)})
	}
	l.maxOut = max(l.maxOut, len(l.inroute))
}

// run advances d of virtual time, block by block.
func (l *linkSim) run(d time.Duration) {
	end := l.now.Add(d)
	if len(l.inroute) == 0 {
		l.refill()
	}
	for len(l.inroute) > 0 && !l.inroute[0].at.After(end) {
		b := l.inroute[0]
		l.inroute = l.inroute[1:]
		l.now = b.at
		l.window = l.w.received(l.now, b.r, l.window, l.limit)
		l.got += wire.BlockSize
		if len(l.inroute) <= l.window-max(1, l.window/8) {
			l.refill()
		}
	}
	l.now = end
}

// throughput runs d more and returns the rate delivered meanwhile.
func (l *linkSim) throughput(d time.Duration) float64 {
	got := l.got
	l.run(d)
	return float64(l.got-got) / d.Seconds()
}

const mib = 1 << 20

// TestWindowFillsPath: from 4 requests, the window grows to fill the path within a few
// seconds whatever its round trip, keeps the peer at (nearly) its full rate, and stays within a few
// bandwidth-delay products: a slow peer holds few requests.
func TestWindowFillsPath(t *testing.T) {
	tests := []struct {
		name  string
		rtt   time.Duration
		rate  float64
		limit int
	}{
		{"loopback", 200 * time.Microsecond, 300 * mib, 4096},
		{"50 ms", 50 * time.Millisecond, 160 * mib, 4096},
		{"200 ms", 200 * time.Millisecond, 160 * mib, 4096},
		{"200 ms, 8 Mbit/s", 200 * time.Millisecond, 1 * mib, 4096},
		{"slow peer", 100 * time.Millisecond, 64 << 10, 4096},
		{"reqq 250", 200 * time.Millisecond, 160 * mib, 250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLinkSim(tt.rtt, tt.rate, tt.limit)
			l.run(5 * time.Second)
			got := l.throughput(20 * time.Second)
			bdp := tt.rate * tt.rtt.Seconds() / wire.BlockSize // blocks
			want := tt.rate
			if max := float64(tt.limit) * wire.BlockSize / tt.rtt.Seconds(); max < want {
				want = max // the limit caps the window below the path's product
			}
			if got < 0.9*want {
				t.Errorf("throughput %.2f MiB/s after 5s, want at least 90%% of %.2f MiB/s (window %d, rtt estimate %v, bdp %.0f blocks)",
					got/mib, want/mib, l.window, l.w.rtt, bdp)
			}
			if l.maxOut > tt.limit {
				t.Errorf("%d requests outstanding, above the limit %d", l.maxOut, tt.limit)
			}
			// A request's latency includes the time the peer takes to send its block.
			lat := tt.rtt + time.Duration(float64(time.Second)*wire.BlockSize/tt.rate)
			if top := 4 + int(3*tt.rate*lat.Seconds()/wire.BlockSize+tt.rate*windowSlack.Seconds()/wire.BlockSize); l.window > top {
				t.Errorf("window %d, want at most %d (3 bandwidth-delay products of %.1f blocks and the slack)", l.window, top, bdp)
			}
			if est := l.w.rtt; est < lat || est > lat+lat/2+2*time.Millisecond {
				t.Errorf("round trip estimate %v, want about %v", est, lat)
			}
		})
	}
}

// TestWindowRampsFast: on a 200 ms path at 160 MiB/s, slow start gets to most of the rate
// within 2 s (10 round trips), faster than one more request per block would (TCP's
// doubling per round trip).
func TestWindowRampsFast(t *testing.T) {
	l := newLinkSim(200*time.Millisecond, 160*mib, 4096)
	l.run(1600 * time.Millisecond)
	if got := l.throughput(400 * time.Millisecond); got < 0.8*160*mib {
		t.Errorf("throughput %.1f MiB/s between 1.6 and 2 s, want at least 80%% of 160 MiB/s (window %d)", got/mib, l.window)
	}
}

// TestWindowNoRunaway: over minutes on a path the peer saturates, the round trip estimate
// does not creep up with the queue at the peer, and the window stays put.
func TestWindowNoRunaway(t *testing.T) {
	l := newLinkSim(50*time.Millisecond, 100*mib, 4096)
	l.run(10 * time.Second)
	w0 := l.window
	l.run(3 * time.Minute)
	if l.window > w0+w0/4 || l.w.rtt > 60*time.Millisecond {
		t.Errorf("after 3 minutes window %d (was %d), rtt estimate %v; want them steady", l.window, w0, l.w.rtt)
	}
	if got := l.throughput(10 * time.Second); got < 0.9*100*mib {
		t.Errorf("throughput %.1f MiB/s, want at least 90 MiB/s", got/mib)
	}
}

// TestWindowFollowsLongerPath: when the round trip triples (a slower path, or a peer whose
// disk got slow), the periodic measurement with the queue run low finds it, and the
// window grows to fill the longer path.
func TestWindowFollowsLongerPath(t *testing.T) {
	l := newLinkSim(50*time.Millisecond, 100*mib, 4096)
	l.run(10 * time.Second)
	l.rtt = 150 * time.Millisecond
	l.run(30 * time.Second)
	if got := l.throughput(10 * time.Second); got < 0.9*100*mib {
		t.Errorf("throughput %.1f MiB/s on the longer path, want at least 90 MiB/s (window %d, rtt estimate %v)",
			got/mib, l.window, l.w.rtt)
	}
	if l.w.rtt < 140*time.Millisecond {
		t.Errorf("rtt estimate %v, want about 150ms", l.w.rtt)
	}
}

// TestWindowFollowsFasterPeer: a peer whose rate grows (its other downloaders left) gets
// a window that grows with it.
func TestWindowFollowsFasterPeer(t *testing.T) {
	l := newLinkSim(100*time.Millisecond, 10*mib, 4096)
	l.run(10 * time.Second)
	l.rate = 100 * mib
	l.run(10 * time.Second)
	if got := l.throughput(10 * time.Second); got < 0.9*100*mib {
		t.Errorf("throughput %.1f MiB/s after the peer sped up, want at least 90 MiB/s (window %d)", got/mib, l.window)
	}
}

// TestWindowProbe: the round trip is measured on the first request, on its own; a request
// that is rejected or cancelled is no sample; a later, lower latency lowers the estimate.
func TestWindowProbe(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := func(i int) BlockReq { return BlockReq{Piece: i, Length: wire.BlockSize} }
	w := newWindowCtl(4, 3*time.Second)
	w.sent(t0, r(0), 0)
	w.sent(t0, r(1), 1)
	w.received(t0.Add(30*time.Millisecond), r(1), 4, 100) // not the probe
	if w.rtt != 0 {
		t.Fatalf("rtt = %v after a block that is not the probe, want 0", w.rtt)
	}
	w.received(t0.Add(40*time.Millisecond), r(0), 4, 100)
	if w.rtt != 40*time.Millisecond {
		t.Fatalf("rtt = %v, want 40ms", w.rtt)
	}
	t1 := t0.Add(time.Second)
	w.sent(t1, r(2), 5)
	w.lost(r(2))
	w.received(t1.Add(time.Millisecond), r(2), 4, 100) // late, after a reject: not a sample
	if w.rtt != 40*time.Millisecond {
		t.Fatalf("rtt = %v after a lost probe, want 40ms", w.rtt)
	}
	w.sent(t1, r(3), 5) // with a queue ahead: counts only when lower
	w.received(t1.Add(90*time.Millisecond), r(3), 4, 100)
	if w.rtt != 40*time.Millisecond {
		t.Fatalf("rtt = %v after a queued probe of 90ms, want 40ms", w.rtt)
	}
	w.sent(t1, r(4), 5)
	w.received(t1.Add(30*time.Millisecond), r(4), 4, 100)
	if w.rtt != 30*time.Millisecond {
		t.Fatalf("rtt = %v after a queued probe of 30ms, want 30ms", w.rtt)
	}
}
