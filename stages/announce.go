package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/bitstorm/bitstorm/internal/tracker"
	"github.com/reugn/go-streams"
)

// ErrTrackerUnreachable ends a run whose trackers never answered.
var ErrTrackerUnreachable = errors.New("tracker unreachable")

// Tracker is the PeerSource of HTTP trackers (BEP 3), tried tier by tier (BEP 12).
// It announces started, then re-announces on the tracker's interval, sends completed when
// the Scheduler completes and stopped when the run ends, and retries with exponential
// backoff while no tracker answers. Out: *PeerAddr, each address once.
type Tracker struct {
	Tiers       [][]string
	Client      *http.Client  // default: 15s timeout
	MaxFailures int           // failed rounds before the run fails, while no tracker ever answered (default 5)
	Backoff     time.Duration // first retry delay, doubled each failure up to 2 minutes (default 1s)
	NumWant     int           // peers asked for (default 80)
	StopTimeout time.Duration // bound on the stopped announce at exit (default 1s)
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
	client := t.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	tiers := httpTiers(t.Tiers, log)
	if len(tiers) == 0 {
		env.Fail(fmt.Errorf("%w: no http(s) tracker in the torrent (udp trackers are not supported)", ErrTrackerUnreachable))
		<-ctx.Done()
		return
	}
	maxFail, backoff := cmp0(t.MaxFailures, 5), cmp0(t.Backoff, time.Second)
	seen := make(map[netip.AddrPort]bool)
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
		case <-timer.C:
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if event == tracker.EventCompleted {
			// The run usually ends right after completion: let this announce finish (briefly)
			// rather than cut it and send completed twice.
			actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cmp0(t.StopTimeout, time.Second))
		}
		resp, err := announceTiers(actx, client, tiers, t.request(env, event))
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
		fresh := 0
		for _, a := range resp.Peers {
			if seen[a] {
				continue
			}
			seen[a] = true
			fresh++
			select {
			case out <- &PeerAddr{Addr: a}:
			case <-ctx.Done():
			}
		}
		interval := resp.Interval
		if interval <= 0 {
			interval = 30 * time.Minute
		}
		log.Info("announced", "peers", len(resp.Peers), "new", fresh, "next", interval)
		timer.Reset(interval)
	}
}

// farewell announces completed, if the download completed since the last announce (the run
// ends at once on completion, so this is where it is usually sent), then stopped; both within
// StopTimeout, so that Ctrl-C stays prompt.
func (t *Tracker) farewell(ctx context.Context, env *Swarm, client *http.Client, tiers [][]string, completed bool, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp0(t.StopTimeout, time.Second))
	defer cancel()
	if completed {
		_, err := announceTiers(sctx, client, tiers, t.request(env, tracker.EventCompleted))
		log.Debug("announced completed", "err", err)
	}
	_, err := announceTiers(sctx, client, tiers, t.request(env, tracker.EventStopped))
	log.Debug("announced stopped", "err", err)
}

func (t *Tracker) request(env *Swarm, ev tracker.Event) tracker.Request {
	st := env.Stats()
	return tracker.Request{InfoHash: env.InfoHash, PeerID: env.PeerID, Port: env.Port,
		Downloaded: st.Downloaded, Uploaded: st.Uploaded, Left: env.Left(), Event: ev, NumWant: cmp0(t.NumWant, 80)}
}

// httpTiers keeps the http and https trackers of each tier.
func httpTiers(tiers [][]string, log *slog.Logger) [][]string {
	var out [][]string
	for _, tier := range tiers {
		var keep []string
		for _, u := range tier {
			if pu, err := url.Parse(u); err == nil && (pu.Scheme == "http" || pu.Scheme == "https") {
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

// announceTiers tries the trackers tier by tier, and within a tier in order; a tracker that
// answers moves to the front of its tier (BEP 12).
func announceTiers(ctx context.Context, c *http.Client, tiers [][]string, req tracker.Request) (*tracker.Response, error) {
	var errs []error
	for _, tier := range tiers {
		for i, u := range tier {
			resp, err := tracker.Announce(ctx, c, u, req)
			if err == nil {
				copy(tier[1:i+1], tier[:i])
				tier[0] = u
				return resp, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	return nil, errors.Join(errs...)
}
