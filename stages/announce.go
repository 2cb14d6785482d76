package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/bitstorm/bitstorm/internal/tracker"
	"github.com/reugn/go-streams"
)

// ErrTrackerUnreachable ends a run whose trackers never answered.
var ErrTrackerUnreachable = errors.New("tracker unreachable")

// Tracker is the PeerSource of HTTP (BEP 3) and UDP (BEP 15) trackers, mixed freely,
// tried tier by tier (BEP 12). It announces started, then re-announces on the tracker's
// interval (or at once, on Swarm.Reannounce), sends completed when the Scheduler completes and stopped when the run ends,
// and retries with exponential backoff while no tracker answers. Trackers of other
// schemes are skipped. Out: *PeerAddr, every address of every reply: the swarm's
// PeerList deduplicates them, and so takes back a peer it had forgotten when a tracker
// lists it again.
type Tracker struct {
	Tiers       [][]string
	Client      *http.Client       // for http(s) trackers; default: 15s timeout
	UDP         *tracker.UDPClient // for udp trackers; default: two sends per Timeout (see defaultUDP)
	Timeout     time.Duration      // bound on one announce to one tracker (default 15s)
	MaxFailures int                // failed rounds before the run fails, while no tracker ever answered (default 5)
	Backoff     time.Duration      // first retry delay, doubled each failure up to 2 minutes (default 1s)
	NumWant     int                // peers asked for (default 80)
	StopTimeout time.Duration      // bound on the stopped announce at exit (default 1s)
}

// defaultUDP returns the UDP client of a Tracker that names none: BEP 15's doubling
// waits, on a base of 5 s instead of 15 s so that a lost packet is sent again within the
// 15 s a tracker gets (at 0 and 5 s; it gives up at 15 s).
func defaultUDP() *tracker.UDPClient {
	return &tracker.UDPClient{Retransmit: 5 * time.Second, MaxRetransmits: 1}
}

var _ PeerSource = (*Tracker)(nil)

// Open starts announcing; the outlet closes after the stopped announce once ctx ends.
func (t *Tracker) Open(ctx context.Context, env *Swarm) streams.Source {
	out := make(chan any, 256)
	go t.run(ctx, env, out)
	return NewSource(out)
}

func (t *Tracker) run(ctx context.Context, env *Swarm, out chan<- any) {
	defer close(out)
	log := env.Log.With("stage", "announce")
	client := &tracker.Client{HTTP: t.Client, UDP: t.UDP}
	if client.HTTP == nil {
		client.HTTP = &http.Client{Timeout: 15 * time.Second}
	}
	if client.UDP == nil {
		client.UDP = defaultUDP()
	}
	tiers := shuffleTiers(usableTiers(t.Tiers, log))
	if len(tiers) == 0 {
		env.Fail(fmt.Errorf("%w: no http, https or udp tracker in the torrent", ErrTrackerUnreachable))
		<-ctx.Done()
		return
	}
	maxFail, backoff := cmp0(t.MaxFailures, 5), cmp0(t.Backoff, time.Second)
	event, answered, failures, sentCompleted := tracker.EventStarted, false, 0, false
	complete := env.Complete()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if answered {
				t.farewell(ctx, env, client, tiers, !sentCompleted && env.IsComplete(), log)
			}
			return
		case <-complete:
			complete = nil
			event = tracker.EventCompleted
			timer.Reset(0)
			continue
		case <-env.reannounced():
			if !answered && failures > 0 {
				continue // retrying already, on its own backoff
			}
			timer.Stop()
		case <-timer.C:
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if event == tracker.EventCompleted {
			// The run usually ends right after completion: let this announce finish (briefly)
			// rather than cut it and send completed twice.
			actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cmp0(t.StopTimeout, time.Second))
		}
		resp, err := t.announceTiers(actx, env, client, tiers, t.request(env, event))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			failures++
			if !answered && failures >= maxFail {
				env.Fail(fmt.Errorf("%w after %d attempts: %w", ErrTrackerUnreachable, failures, err))
				continue
			}
			wait := min(backoff<<min(failures-1, 16), 2*time.Minute)
			log.Warn("announce failed, retrying", "err", err, "in", wait)
			timer.Reset(wait)
			continue
		}
		sentCompleted = sentCompleted || event == tracker.EventCompleted
		answered, failures, event = true, 0, tracker.EventNone
		if resp.Warning != "" {
			log.Warn("tracker warning", "msg", resp.Warning)
		}
		for _, a := range resp.Peers {
			select {
			case out <- &PeerAddr{Addr: a, From: FromTracker}:
			case <-ctx.Done():
			}
		}
		interval := resp.Interval
		if interval <= 0 {
			interval = 30 * time.Minute
		}
		// A session's torrents, started together, announce to the same trackers: up to a
		// tenth more than the tracker asks keeps them from announcing in step.
		interval += rand.N(interval/10 + 1)
		log.Info("announced", "peers", len(resp.Peers), "next", interval)
		// After the peers: a test that serves once the reply has reached the dialer waits
		// for this.
		env.Emit(TrackerReply{URL: resp.url, Tier: resp.tier, Peers: len(resp.Peers), Seeders: resp.Complete,
			Leechers: resp.Incomplete, Interval: interval})
		timer.Reset(interval)
	}
}

// farewell announces completed, if the download completed since the last announce (the run
// ends at once on completion, so this is where it is usually sent), then stopped; both within
// StopTimeout, so that Ctrl-C stays prompt.
func (t *Tracker) farewell(ctx context.Context, env *Swarm, client *tracker.Client, tiers [][]string, completed bool, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp0(t.StopTimeout, time.Second))
	defer cancel()
	if completed {
		_, err := t.announceTiers(sctx, env, client, tiers, t.request(env, tracker.EventCompleted))
		log.Debug("announced completed", "err", err)
	}
	_, err := t.announceTiers(sctx, env, client, tiers, t.request(env, tracker.EventStopped))
	log.Debug("announced stopped", "err", err)
}

func (t *Tracker) request(env *Swarm, ev tracker.Event) tracker.Request {
	st := env.Stats()
	return tracker.Request{InfoHash: env.InfoHash, PeerID: env.PeerID, Port: env.Port,
		Downloaded: st.Downloaded, Uploaded: st.Uploaded, Left: env.Left(), Event: ev, NumWant: cmp0(t.NumWant, 80)}
}

// usableTiers keeps the http, https and udp trackers of each tier, in new slices, and
// drops the tiers left empty.
func usableTiers(tiers [][]string, log *slog.Logger) [][]string {
	var out [][]string
	for _, tier := range tiers {
		var keep []string
		for _, u := range tier {
			pu, err := url.Parse(u)
			if err == nil && (pu.Scheme == "http" || pu.Scheme == "https" || pu.Scheme == "udp") {
				keep = append(keep, u)
			} else {
				log.Debug("skipping unsupported tracker", "url", u)
			}
		}
		if len(keep) > 0 {
			out = append(out, keep)
		}
	}
	return out
}

// shuffleTiers shuffles the trackers within each tier, in place, and returns tiers. BEP 12:
// "URLs within each tier will be processed in a randomly chosen order; in other words,
// the list will be shuffled when first read, and then parsed in order."
func shuffleTiers(tiers [][]string) [][]string {
	for _, tier := range tiers {
		rand.Shuffle(len(tier), func(i, j int) { tier[i], tier[j] = tier[j], tier[i] })
	}
	return tiers
}

// answer is a tracker's reply, and which tracker gave it.
type answer struct {
	*tracker.Response
	url  string
	tier int
}

// announceTiers tries the trackers tier by tier, and within a tier in order, each for at
// most Timeout; a tracker that answers moves to the front of its tier. BEP 12: "all URLs
// in each tier must be checked before the client goes on to the next tier", and "if a
// connection with a tracker is successful, it will be moved to the front of the tier."
// Each tracker that fails is reported (TrackerFailed).
func (t *Tracker) announceTiers(ctx context.Context, env *Swarm, c *tracker.Client, tiers [][]string, req tracker.Request) (*answer, error) {
	var errs []error
	for ti, tier := range tiers {
		for i, u := range tier {
			actx, cancel := context.WithTimeout(ctx, cmp0(t.Timeout, 15*time.Second))
			resp, err := c.Announce(actx, u, req)
			cancel()
			if err == nil {
				copy(tier[1:i+1], tier[:i])
				tier[0] = u
				return &answer{Response: resp, url: u, tier: ti}, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, err)
			env.Emit(TrackerFailed{URL: u, Tier: ti, Err: err})
		}
	}
	return nil, errors.Join(errs...)
}
