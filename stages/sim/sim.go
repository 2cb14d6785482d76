// Package sim simulates a BitTorrent swarm in virtual time, driven by BitStorm's own
// decision components. Every simulated peer owns a stages.Scheduler with a real Picker
// (rarest-first, sequential or random), which decides what the peer requests, endgame
// included, and a stages.RateChoker, which decides whom it uploads to (BEP 3 choking). The
// simulator supplies what lies between them: an upload bandwidth per peer and a latency per
// link, 16 KiB blocks requested a fixed number at a time, bitfield and have messages, choke
// rounds every 10 s with the optimistic unchoke rotated every 30 s, and churn.
//
// It is a discrete-event simulation on one goroutine with a virtual clock: events wait in a
// heap ordered by time, then by the order they were scheduled; randomness comes from PCG
// streams derived from Config.Seed; nothing iterates a map where the order matters. So a
// seed determines the whole Result, and a 100-peer swarm of 1000 pieces runs in seconds.
//
// It leaves out download bandwidth (only uploads are limited), TCP dynamics (a block takes
// the uploader's bandwidth for its length, then the link's latency), hashing (every piece
// verifies), the request window's slow start (the window is fixed), snubbing and stalled
// peers. Used by `bitstorm sim` and by tests that compare pickers and choker settings.
package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Config describes a swarm. The zero value of a field means its default where zero makes no
// sense (Pieces, PieceLength, UploadRate, Picker, UploadSlots, Requests, MaxPeers, MaxTime).
type Config struct {
	Seed                uint64        // determines the whole run
	Peers               int           // leechers at the start (at least 1)
	Seeders             int           // initial seeders, holding every piece; 0 leaves the pieces to the leechers
	Pieces              int           // pieces in the torrent (default 500)
	PieceLength         int64         // bytes per piece (default 256 KiB); every piece is full
	UploadRate          int64         // bytes/s a peer uploads (default 1 MiB/s)
	UploadRateMax       int64         // when above UploadRate, each peer's rate is drawn uniformly from [UploadRate, UploadRateMax]
	Latency             time.Duration // mean one-way latency; each link's is drawn from [Latency/2, 3*Latency/2]
	InitialAvailability float64       // each initial leecher holds each piece with this probability, in [0, 1]
	Churn               float64       // leechers leaving per minute, each replaced by a new empty one, while initial leechers are still downloading
	SeederLeaveAfter    time.Duration // the initial seeders leave after this long (0: not a limit)
	SeederLeaveCopies   float64       // an initial seeder leaves once it has uploaded this many copies (0: not a limit)
	SeedTime            time.Duration // a finished leecher seeds this long, then leaves (0: it stays)
	Picker              string        // "rarest" (default), "sequential" or "random"
	UploadSlots         int           // choker slots, the optimistic one included (default 4)
	Requests            int           // requests outstanding per link, topped up once half are served (default 16)
	MaxPeers            int           // connections per peer; it dials half, the others dial it (default 50)
	MaxTime             time.Duration // virtual time after which the simulation stops (default 1h)
}

// Pickers are the names Config.Picker accepts.
var Pickers = []string{"rarest", "sequential", "random"}

// Bounds on a Config, so that a typo cannot ask for hours of work or gigabytes of state.
const (
	MaxNodes  = 5000       // Peers + Seeders
	MaxPieces = 100_000    // Pieces
	maxState  = 10_000_000 // (Peers + Seeders) * Pieces: per-piece state of every peer
)

func (c *Config) defaults() {
	c.Pieces = cmp0(c.Pieces, 500)
	c.PieceLength = cmp0(c.PieceLength, 256<<10)
	c.UploadRate = cmp0(c.UploadRate, 1<<20)
	c.UploadRateMax = max(c.UploadRateMax, c.UploadRate)
	if c.Picker == "" {
		c.Picker = "rarest"
	}
	c.UploadSlots = cmp0(c.UploadSlots, 4)
	c.Requests = cmp0(c.Requests, 16)
	c.MaxPeers = cmp0(c.MaxPeers, 50)
	c.MaxTime = cmp0(c.MaxTime, time.Hour)
}

func cmp0[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// ConfigError reports a Config field whose value is out of range.
type ConfigError struct {
	Field string // the Config field, e.g. "Picker"
	Value any
	Want  string // what the field accepts
}

func (e *ConfigError) Error() string {
	v := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		v = strconv.Quote(s)
	}
	return fmt.Sprintf("sim: %s %s: want %s", e.Field, v, e.Want)
}

// validate checks c, defaults filled in.
func (c *Config) validate() error {
	bad := func(field string, v any, want string) error { return &ConfigError{field, v, want} }
	switch {
	case c.Peers < 1:
		return bad("Peers", c.Peers, "at least 1")
	case c.Seeders < 0:
		return bad("Seeders", c.Seeders, "0 or more")
	case c.Peers+c.Seeders > MaxNodes:
		return bad("Peers", c.Peers, fmt.Sprintf("at most %d with the seeders", MaxNodes))
	case c.Pieces < 1 || c.Pieces > MaxPieces:
		return bad("Pieces", c.Pieces, fmt.Sprintf("1 to %d", MaxPieces))
	case int64(c.Peers+c.Seeders)*int64(c.Pieces) > maxState:
		return bad("Pieces", c.Pieces, fmt.Sprintf("at most %d for %d peers", maxState/(c.Peers+c.Seeders), c.Peers+c.Seeders))
	case c.PieceLength < 1 || c.PieceLength > 256<<20:
		return bad("PieceLength", c.PieceLength, "1 byte to 256 MiB")
	case c.UploadRate < 1:
		return bad("UploadRate", c.UploadRate, "at least 1 byte/s")
	case c.Latency < 0:
		return bad("Latency", c.Latency, "0 or more")
	case !(c.InitialAvailability >= 0 && c.InitialAvailability <= 1):
		return bad("InitialAvailability", c.InitialAvailability, "a fraction in [0, 1]")
	case !(c.Churn >= 0 && c.Churn <= 1000):
		return bad("Churn", c.Churn, "0 to 1000 peers a minute")
	case c.SeederLeaveAfter < 0:
		return bad("SeederLeaveAfter", c.SeederLeaveAfter, "0 or more")
	case !(c.SeederLeaveCopies >= 0 && c.SeederLeaveCopies <= 1e6):
		return bad("SeederLeaveCopies", c.SeederLeaveCopies, "0 or more copies")
	case c.SeedTime < 0:
		return bad("SeedTime", c.SeedTime, "0 or more")
	case !slices.Contains(Pickers, c.Picker):
		return bad("Picker", c.Picker, "rarest, sequential or random")
	case c.UploadSlots < 1:
		return bad("UploadSlots", c.UploadSlots, "at least 1")
	case c.Requests < 1:
		return bad("Requests", c.Requests, "at least 1")
	case c.MaxPeers < 1:
		return bad("MaxPeers", c.MaxPeers, "at least 1")
	case c.MaxTime < 0 || c.MaxTime > 30*24*time.Hour:
		return bad("MaxTime", c.MaxTime, "up to 720h")
	}
	return nil
}

// State is how a peer's run ended.
type State int

const (
	Finished   State = iota // it held every piece (an initial seeder always has)
	Unfinished              // still downloading when the simulation stopped
	Left                    // it left before it held every piece (churn, or a seeder leaving)
)

func (s State) String() string {
	switch s {
	case Finished:
		return "finished"
	case Unfinished:
		return "did not finish"
	}
	return "left"
}

// Never stands for the completion time of a leecher that did not finish, in the summary.
const Never = time.Duration(math.MaxInt64)

// PeerResult is what happened to one peer.
type PeerResult struct {
	ID         int
	Seeder     bool          // an initial seeder
	Initial    bool          // present from the start (not a churn newcomer)
	UploadRate int64         // bytes/s
	Joined     time.Duration // when it joined
	State      State
	Time       time.Duration // from joining to holding every piece, when Finished
	Gone       time.Duration // when it left; 0 if it stayed to the end
	Downloaded int64         // block bytes received, duplicates included
	Uploaded   int64         // block bytes sent
}

// Result is the outcome of a run. The summary is over the leechers that stayed until they
// finished or until the end: those that left unfinished are not counted.
type Result struct {
	Config     Config       // as run, defaults filled in
	Peers      []PeerResult // seeders first, then the leechers in the order they joined
	Size       int64        // bytes in the torrent
	End        time.Duration
	Finished   int // leechers that finished
	Unfinished int // leechers still downloading at the end
	Left       int // leechers that left unfinished
	// Mean is over the leechers that finished; Median, P90 and Max count an unfinished one
	// as Never.
	Mean, Median, P90, Max time.Duration
	SeederUploaded         int64 // bytes the initial seeders sent: the load they carried
	Events                 int   // events processed, a measure of the work done
}

// SeederCopies is how many copies of the torrent the initial seeders uploaded.
func (r *Result) SeederCopies() float64 { return float64(r.SeederUploaded) / float64(r.Size) }

// Run simulates the swarm cfg describes until every leecher present holds every piece and
// churn is over, or until cfg.MaxTime. It returns a *ConfigError for a bad cfg, and
// ctx.Err() if ctx ends first.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newSwarm(cfg)
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	return s.result(), nil
}

// summarize fills in the counts and the completion-time statistics.
func (r *Result) summarize() {
	var times []time.Duration
	var sum time.Duration
	for _, p := range r.Peers {
		switch {
		case p.Seeder:
			r.SeederUploaded += p.Uploaded
			continue
		case p.State == Finished:
			r.Finished++
			sum += p.Time
			times = append(times, p.Time)
		case p.State == Unfinished:
			r.Unfinished++
			times = append(times, Never)
		default:
			r.Left++
		}
	}
	if r.Finished > 0 {
		r.Mean = sum / time.Duration(r.Finished)
	}
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	r.Median, r.P90, r.Max = rank(times, 0.5), rank(times, 0.9), times[len(times)-1]
}

// rank is the nearest-rank percentile p of sorted ts.
func rank(ts []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(ts)))) - 1
	return ts[min(max(i, 0), len(ts)-1)]
}
