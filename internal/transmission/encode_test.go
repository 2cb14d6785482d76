package transmission

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestAppendJSON: appendJSON writes what encoding/json writes, byte for byte, for the
// values the RPC replies hold.
func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"string", "plain name.bin"},
		{"string escapes", "q\"b\\s\b\f\n\r\t\x00\x1f<a href='x'>&amp;</a>"},
		{"string unicode", "été 日本 \u2028\u2029 🎵"},
		{"string invalid UTF-8", "a\xffb\xc3"},
		{"bool", true},
		{"int", -42},
		{"int64", int64(math.MaxInt64)},
		{"status", StatusSeed},
		{"priority", PriorityLow},
		{"float zero", 0.0},
		{"float", 0.75},
		{"float whole", 3.0},
		{"float tiny", 1.5e-7},
		{"float huge", 2e21},
		{"float negative", -0.000001},
		{"map sorted", map[string]any{"z": 1, "a": "x", "m": []int{1, 2}}},
		{"map nested", map[string]any{"torrents": []map[string]any{{"b": 1.5, "a": false}}, "removed": []int{}}},
		{"lists", []any{[]string{"a"}, []Priority{1, -1}, [][]any{{"id"}, {1}}, []int(nil)}},
		{"map of int", map[string]int{"fromDht": 0, "fromTracker": 3}},
		{"struct", SessionSettings{DownloadDir: "/dl"}},
		{"raw", json.RawMessage(`{"tag":[1,2]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON(nil, tt.v)
			if err != nil || string(got) != string(want) {
				t.Errorf("appendJSON(%#v) = %s, %v; want %s", tt.v, got, err, want)
			}
		})
	}
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := appendJSON(nil, []any{f}); err == nil {
			t.Errorf("appendJSON(%v): no error", f)
		}
	}
}

// TestTorrentObjectJSON: every field of torrent-get, encoded as one object, is what
// encoding/json makes of the same fields in a map; a field asked twice is sent once.
func TestTorrentObjectJSON(t *testing.T) {
	var fields []string
	for f := range torrentFields {
		fields = append(fields, f)
	}
	slices.Sort(fields) // encoding/json sorts a map's keys
	for _, tor := range newFake().Torrents() {
		tor.Name = "<odd> \"name\"\n"
		tor.Webseeds = []string{"http://w.example/"}
		m := map[string]any{}
		for _, f := range fields {
			m[f] = torrentFields[f](tor)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON(nil, torrentObject(tor, append(fields, "id", "nope")))
		if err != nil || string(got) != string(want) {
			t.Errorf("torrent %d:\n got %s, %v\nwant %s", tor.ID, got, err, want)
		}
	}
	if got := marshal(response{Arguments: map[string]any{"x": math.NaN()}, Result: "success"}); !strings.Contains(string(got), `"result":"encoding the reply: `) {
		t.Errorf("a NaN in a reply: %s", got)
	}
}
