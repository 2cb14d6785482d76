package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/stages"
)

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lineWriter serialises writes to the terminal and erases the progress view before any
// other output, so that log lines and the live display do not garble each other. The
// view is one line, or one per torrent and a total.
type lineWriter struct {
	mu    sync.Mutex
	w     io.Writer
	lines int // lines of the progress view on screen; the cursor ends the last
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	return l.w.Write(p)
}

// status replaces the view with s, lines without a final newline.
func (l *lineWriter) status(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lines == 0 {
		io.WriteString(l.w, "\r\033[K")
	}
	l.erase()
	io.WriteString(l.w, s)
	l.lines = 1 + strings.Count(s, "\n")
}

func (l *lineWriter) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
}

// erase clears the view's lines, bottom up, and leaves the cursor where it began.
func (l *lineWriter) erase() {
	if l.lines == 0 {
		return
	}
	io.WriteString(l.w, "\r\033[K"+strings.Repeat("\033[A\033[K", l.lines-1))
	l.lines = 0
}

// progress redraws one status line: percent, bytes, rate, peers and ETA.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startProgress(out *lineWriter, stats func() stages.Stats) *progress {
	p := &progress{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		var rate float64
		last, lastT := stats().WantedDone, time.Now()
		for {
			select {
			case <-p.done:
				out.clear()
				return
			case now := <-tick.C:
				st := stats()
				inst := float64(st.WantedDone-last) / now.Sub(lastT).Seconds()
				rate = 0.7*rate + 0.3*inst
				last, lastT = st.WantedDone, now
				out.status(formatProgress(st, rate))
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

func formatProgress(st stages.Stats, rate float64) string {
	pct := 100.0
	if st.Wanted > 0 {
		pct = 100 * float64(st.WantedDone) / float64(st.Wanted)
	}
	eta := "--:--"
	if rate > 1 {
		d := time.Duration(float64(st.Left())/rate) * time.Second
		eta = fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%5.1f%%  %s / %s  %s/s  peers %d  ETA %s",
		pct, humanBytes(st.WantedDone), humanBytes(st.Wanted), humanBytes(int64(rate)), st.Peers, eta)
}

// meter smooths a byte count's rate over the ticks of a progress view.
type meter struct {
	rate  float64 // bytes per second
	last  int64
	lastT time.Time
}

func (m *meter) update(v int64, now time.Time) float64 {
	if !m.lastT.IsZero() {
		inst := float64(v-m.last) / now.Sub(m.lastT).Seconds()
		m.rate = 0.7*m.rate + 0.3*inst
	}
	m.last, m.lastT = v, now
	return m.rate
}

// startSessionProgress redraws a line per torrent (name, or info hash until the metadata
// is known, percent, rate, peers) and a total line.
func startSessionProgress(out *lineWriter, ts []*tracked) *progress {
	p := &progress{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		meters := make([]meter, len(ts)+1)
		for {
			select {
			case <-p.done:
				out.clear()
				return
			case now := <-tick.C:
				out.status(formatSessionProgress(ts, meters, now))
			}
		}
	}()
	return p
}

// labelWidth is the width of the name column of the session's progress view.
const labelWidth = 28

func formatSessionProgress(ts []*tracked, meters []meter, now time.Time) string {
	var b strings.Builder
	var total stages.Stats
	for i, t := range ts {
		st := t.stats()
		total.Wanted += st.Wanted
		total.WantedDone += st.WantedDone
		total.Peers += st.Peers
		rate := meters[i].update(st.WantedDone, now)
		pct := "   --"
		if st.Wanted > 0 {
			pct = fmt.Sprintf("%5.1f", 100*float64(st.WantedDone)/float64(st.Wanted))
		}
		var note string
		switch t.state.Load() {
		case finished:
			note = "  done"
		case failed:
			note = "  failed"
		case running:
			if st.Wanted == 0 && t.magnet {
				note = "  metadata..."
			} else if st.Wanted > 0 && st.WantedDone == st.Wanted {
				note = "  seeding"
			}
		}
		fmt.Fprintf(&b, "%-*s %s%%  %9s/s  peers %3d%s\n", labelWidth, clip(t.label(), labelWidth), pct, humanBytes(int64(rate)), st.Peers, note)
	}
	rate := meters[len(ts)].update(total.WantedDone, now)
	line := "   --%  metadata..."
	if total.Wanted > 0 {
		line = formatProgress(total, rate)
	}
	fmt.Fprintf(&b, "%-*s %s", labelWidth, fmt.Sprintf("total (%d)", len(ts)), line)
	return b.String()
}

// clip cuts s to n runes, the last an ellipsis when it cuts.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
