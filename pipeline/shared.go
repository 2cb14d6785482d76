package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitstorm/bitstorm/internal/bufpool"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/stages"
)

// shared is what the torrents of a Session share instead of holding one each (issue 12: a
// thousand torrents in one process): the free list of block buffers, the byte budget of
// the upload caches, the byte budget of the pieces in progress, and the clock of their
// watch loops. A pipeline of its own has one of its own.
type shared struct {
	blocks   *bufpool.Pool
	cache    *stages.CacheBudget
	inFlight *stages.InFlightBudget
	clock    *clock
}

// keptBlocks is how many idle block buffers a shared free list keeps: 8 MiB.
const keptBlocks = 512

// newShared returns the shared state with cacheBytes of upload cache and inFlight bytes
// of pieces in progress.
func newShared(cacheBytes, inFlight int64) *shared {
	return &shared{
		blocks:   bufpool.New(wire.BlockSize, keptBlocks),
		cache:    stages.NewCacheBudget(cacheBytes),
		inFlight: stages.NewInFlightBudget(inFlight),
		clock:    newClock(time.Second),
	}
}

// defaultSessionInFlight is SessionConfig.MaxInFlight's default: twice a torrent's
// (Config.MaxInFlight), room for one torrent at full speed while others start.
const defaultSessionInFlight = 128 << 20

// withShared has the pipeline use a Session's shared state.
func withShared(sh *shared) Option { return func(p *Pipeline) { p.shared = sh } }

// clock wakes the loops that wait on it once a period, all at the same time. A Session's
// torrents share one: a thousand idle torrents with a ticker each would wake the process a
// thousand times a second, each wake an OS-level one (epoll, futex) that costs tens of
// microseconds; on one clock they wake once, together.
type clock struct {
	period time.Duration
	next   atomic.Pointer[chan struct{}] // closed at the next tick

	mu    sync.Mutex // guards users and timer
	users int
	timer *time.Timer
}

func newClock(period time.Duration) *clock {
	c := &clock{period: period}
	ch := make(chan struct{})
	c.next.Store(&ch)
	return c
}

// start has the clock tick while it has a user; stop ends this use (more calls do nothing).
func (c *clock) start() (stop func()) {
	c.mu.Lock()
	if c.users++; c.users == 1 {
		if c.timer == nil {
			c.timer = time.AfterFunc(c.period, c.tick)
		} else {
			c.timer.Reset(c.period)
		}
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.users--; c.users == 0 {
				c.timer.Stop()
			}
			c.mu.Unlock()
		})
	}
}

// C returns a channel that is closed at the next tick.
func (c *clock) C() <-chan struct{} { return *c.next.Load() }

func (c *clock) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	close(*c.next.Swap(&ch)) // the woken loops find the next tick's channel in place
	if c.users > 0 {
		c.timer.Reset(c.period)
	}
}

// InFlight is the session's budget of the bytes of pieces in progress
// (SessionConfig.MaxInFlight): what its torrents hold now (Used) and held at most (Peak).
func (s *Session) InFlight() *stages.InFlightBudget { return s.shared.inFlight }
