package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/bitstorm/bitstorm/stages"
)

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lineWriter serialises writes to the terminal and erases the progress line before any
// other output, so that log lines and the live display do not garble each other.
type lineWriter struct {
	mu   sync.Mutex
	w    io.Writer
	line bool // a progress line is on screen
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.line {
		io.WriteString(l.w, "\r\033[K")
		l.line = false
	}
	return l.w.Write(p)
}

func (l *lineWriter) status(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "\r\033[K%s", s)
	l.line = true
}

func (l *lineWriter) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.line {
		io.WriteString(l.w, "\r\033[K")
		l.line = false
	}
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
		last, lastT := stats().Verified, time.Now()
		for {
			select {
			case <-p.done:
				out.clear()
				return
			case now := <-tick.C:
				st := stats()
				inst := float64(st.Verified-last) / now.Sub(lastT).Seconds()
				rate = 0.7*rate + 0.3*inst
				last, lastT = st.Verified, now
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
	if st.Total > 0 {
		pct = 100 * float64(st.Verified) / float64(st.Total)
	}
	eta := "--:--"
	if rate > 1 {
		d := time.Duration(float64(st.Left())/rate) * time.Second
		eta = fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%5.1f%%  %s / %s  %s/s  peers %d  ETA %s",
		pct, humanBytes(st.Verified), humanBytes(st.Total), humanBytes(int64(rate)), st.Peers, eta)
}
