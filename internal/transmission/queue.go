package transmission

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The queue movement requests (spec 4.6): queue-move-top, -up, -down and -bottom move the
// selected torrents in the queue of torrents waiting to download or seed, keeping their
// order among themselves, as transmission's tr_torrentsQueueMove* do. A torrent that is
// not queued has no place to move: it is left alone.

// The new place of a queued torrent at pos, of n queued, for each movement.
func toTop(int, int) int    { return 0 }
func toUp(pos, _ int) int   { return max(pos-1, 0) }
func toDown(pos, n int) int { return min(pos+1, n-1) }
func toBottom(_, n int) int { return n - 1 }

// queued reports whether t waits in the queue.
func queued(t *Torrent) bool { return t.Status == StatusDownloadWait || t.Status == StatusSeedWait }

// moveInQueue is the handler of method: each selected queued torrent goes where to says
// among the n queued (their positions are 0 to n-1, Backend's numbering), taken by
// ascending position (order 1) or descending (-1), so that their order among themselves
// stays.
func moveInQueue(method string, order int, to func(pos, n int) int) handler {
	return func(s *Server, args json.RawMessage) (any, error) {
		var a struct {
			IDs json.RawMessage `json:"ids"`
		}
		if err := decode(method, args, &a); err != nil {
			return nil, err
		}
		sel, err := s.selected(method, a.IDs)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, t := range s.b.Torrents() {
			if queued(t) {
				n++
			}
		}
		sel = slices.DeleteFunc(sel, func(t *Torrent) bool { return !queued(t) })
		slices.SortFunc(sel, func(x, y *Torrent) int { return order * (x.QueuePosition - y.QueuePosition) })
		var errs []string
		for _, t := range sel {
			if err := s.b.SetQueuePosition(t.ID, to(t.QueuePosition, n)); err != nil {
				errs = append(errs, fmt.Sprintf("torrent %d (%s): %v", t.ID, t.Name, err))
			}
		}
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s: %s", method, strings.Join(errs, "; "))
		}
		return nil, nil
	}
}

// setQueuePosition is torrent-set's queuePosition, when raw holds one: each selected
// queued torrent goes to that place in the queue, in turn.
func (s *Server) setQueuePosition(ts []*Torrent, raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	var pos int
	if err := json.Unmarshal(raw, &pos); err != nil || pos < 0 {
		return fmt.Errorf("torrent-set: queuePosition %s: want a place in the queue, from 0", raw)
	}
	for _, t := range ts {
		if !queued(t) {
			continue
		}
		if err := s.b.SetQueuePosition(t.ID, pos); err != nil {
			return fmt.Errorf("torrent-set: torrent %d (%s): queuePosition: %w", t.ID, t.Name, err)
		}
	}
	return nil
}
