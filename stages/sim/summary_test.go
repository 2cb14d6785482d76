package sim

import (
	"reflect"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	s := time.Second
	r := &Result{Size: 100, Peers: []PeerResult{
		{ID: 0, Seeder: true, State: Finished, Uploaded: 150},
		{ID: 1, State: Finished, Time: 4 * s},
		{ID: 2, State: Finished, Time: 1 * s},
		{ID: 3, State: Left},
		{ID: 4, State: Finished, Time: 3 * s},
		{ID: 5, State: Unfinished},
		{ID: 6, State: Finished, Time: 2 * s},
	}}
	r.summarize()
	// Counted: 1, 2, 3, 4 s and one that did not finish (Never); the one that left is not.
	want := Result{Finished: 4, Unfinished: 1, Left: 1, Mean: 2500 * time.Millisecond,
		Median: 3 * s, P90: Never, Max: Never, SeederUploaded: 150}
	got := Result{Finished: r.Finished, Unfinished: r.Unfinished, Left: r.Left, Mean: r.Mean,
		Median: r.Median, P90: r.P90, Max: r.Max, SeederUploaded: r.SeederUploaded}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if c := r.SeederCopies(); c != 1.5 {
		t.Errorf("SeederCopies() = %v, want 1.5", c)
	}
}
