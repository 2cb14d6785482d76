package transmission

import (
	"encoding/json"
	"fmt"
	"strings"
)

// selector is a request's "ids" (spec 3.1): absent for every torrent, a number, a hash
// string, "recently-active", or a list of numbers and hash strings.
type selector struct {
	all    bool
	recent bool
	ids    map[int]bool
	hashes map[string]bool
}

// parseIDs reads raw, the "ids" argument (nil when absent).
func parseIDs(raw json.RawMessage) (selector, error) {
	sel := selector{ids: map[int]bool{}, hashes: map[string]bool{}}
	if len(raw) == 0 || string(raw) == "null" {
		sel.all = true
		return sel, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return sel, fmt.Errorf("ids: %w", err)
	}
	list, isList := v.([]any)
	if !isList {
		if s, ok := v.(string); ok && (s == "recently-active" || s == "recently_active") {
			sel.recent = true
			return sel, nil
		}
		list = []any{v}
	}
	for _, e := range list {
		switch e := e.(type) {
		case float64:
			if e != float64(int(e)) {
				return sel, fmt.Errorf("ids: %v is not a torrent id", e)
			}
			sel.ids[int(e)] = true
		case string:
			if isHash(e) {
				sel.hashes[strings.ToLower(e)] = true
				continue
			}
			var n int
			if _, err := fmt.Sscanf(e, "%d", &n); err == nil && fmt.Sprint(n) == e {
				sel.ids[n] = true // some clients send ids as strings
				continue
			}
			return sel, fmt.Errorf("ids: %q is neither a torrent id nor a 40-digit hash string", e)
		default:
			return sel, fmt.Errorf("ids: %v is neither a torrent id nor a hash string", e)
		}
	}
	return sel, nil
}

func isHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// pick returns the torrents of ts that sel names, in id order; ids that name no torrent
// are ignored, as transmission does. now is in Unix seconds.
func (sel selector) pick(ts []*Torrent, now int64) []*Torrent {
	var out []*Torrent
	for _, t := range ts {
		switch {
		case sel.all:
		case sel.recent:
			last := max(t.ActivityDate, t.AddedDate, t.StartDate, t.DoneDate)
			if now-last >= int64(recentlyActive.Seconds()) && t.Status != StatusDownload && t.Status != StatusCheck {
				continue
			}
		case !sel.ids[t.ID] && !sel.hashes[t.HashString]:
			continue
		}
		out = append(out, t)
	}
	return out
}
