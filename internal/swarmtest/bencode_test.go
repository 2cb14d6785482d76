package swarmtest

import (
	"reflect"
	"testing"
)

func TestDecodeBencode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"int", "i42e", int64(42)},
		{"negative", "i-3e", int64(-3)},
		{"string", "4:spam", "spam"},
		{"empty string", "0:", ""},
		{"list", "l4:spami7ee", []any{"spam", int64(7)}},
		{"empty dict", "de", map[string]any{}},
		// opentracker's scrape reply: files -> 20-byte hash -> counters.
		{"scrape", "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:downloadedi0e10:incompletei2eeee",
			map[string]any{"files": map[string]any{"aaaaaaaaaaaaaaaaaaaa": map[string]any{
				"complete": int64(1), "downloaded": int64(0), "incomplete": int64(2)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBencode([]byte(tt.in))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decodeBencode(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDecodeBencodeErrors(t *testing.T) {
	for _, in := range []string{"", "i42", "ixe", "5:abc", "l", "d3:keye", "di1ei2ee", "x", "i1ei2e", "-1:"} {
		if v, err := decodeBencode([]byte(in)); err == nil {
			t.Errorf("decodeBencode(%q) = %#v, nil; want error", in, v)
		}
	}
}

func FuzzDecodeBencode(f *testing.F) {
	f.Add([]byte("d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1eeee"))
	f.Add([]byte("l4:spami7ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeBencode(b) // must not panic
	})
}
