package transmission

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestQueueMove: queue-move-top, -up, -down and -bottom ask the backend to move each
// selected queued torrent, in an order that keeps their order among themselves
// (transmission's tr_torrentsQueueMove*), and torrent-set's queuePosition to that place; a
// torrent that is not queued is left alone.
func TestQueueMove(t *testing.T) {
	// Torrent 1 runs; 2, 3, 4 and 5 wait at 0, 1, 2 and 3 (the queued ones first).
	torrents := func() []*Torrent {
		ts := []*Torrent{{ID: 1, Name: "running", Status: StatusDownload, QueuePosition: 4}}
		for i, st := range []Status{StatusDownloadWait, StatusSeedWait, StatusDownloadWait, StatusDownloadWait} {
			ts = append(ts, &Torrent{ID: i + 2, Name: "queued", Status: st, QueuePosition: i})
		}
		return ts
	}
	tests := []struct {
		method, ids string
		calls       []string
	}{
		{"queue-move-top", "[4,5]", []string{"queue-position 5 0", "queue-position 4 0"}},
		{"queue-move-up", "[3,4]", []string{"queue-position 3 0", "queue-position 4 1"}},
		{"queue-move-up", "[2]", []string{"queue-position 2 0"}},
		{"queue-move-down", "[2,3]", []string{"queue-position 3 2", "queue-position 2 1"}},
		{"queue-move-down", "[5]", []string{"queue-position 5 3"}},
		{"queue-move-bottom", "[2,3]", []string{"queue-position 2 3", "queue-position 3 3"}},
		{"queue-move-top", "[1]", nil},
		{"torrent-set queuePosition 1", "[5,1]", []string{"queue-position 5 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.ids, func(t *testing.T) {
			f := newFake()
			f.torrents = torrents()
			s := NewServer(Config{Backend: f, Now: func() time.Time { return time.Unix(1030, 0) }})
			req := `{"method":"` + tt.method + `","arguments":{"ids":` + tt.ids + `}}`
			if method, pos, ok := strings.Cut(tt.method, " queuePosition "); ok {
				req = `{"method":"` + method + `","arguments":{"queuePosition":` + pos + `,"ids":` + tt.ids + `}}`
			}
			got := string(s.Call([]byte(req)))
			if !strings.Contains(got, `"result":"success"`) {
				t.Fatalf("%s = %s, want success", tt.method, got)
			}
			if !slices.Equal(f.calls, tt.calls) {
				t.Errorf("backend calls %q, want %q", f.calls, tt.calls)
			}
		})
	}
	f := newFake()
	f.torrents = torrents()
	got := string(NewServer(Config{Backend: f}).Call([]byte(`{"method":"torrent-set","arguments":{"queuePosition":-1,"ids":[2]}}`)))
	if want := "queuePosition -1: want a place in the queue, from 0"; !strings.Contains(got, want) || len(f.calls) > 0 {
		t.Errorf("torrent-set queuePosition -1 = %s, calls %q; want %q and no call", got, f.calls, want)
	}
}
