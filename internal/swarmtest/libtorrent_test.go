package swarmtest

import (
	"slices"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want []int // nil: an error
	}{
		{"three", "6881,40000,65535", 3, []int{6881, 40000, 65535}},
		{"one", "51413", 1, []int{51413}},
		{"fewer than asked", "6881,6882", 3, nil},
		{"more than asked", "6881,6882", 1, nil},
		{"repeated", "6881,6881", 2, nil},
		{"zero", "0,6881", 2, nil},
		{"out of range", "65536", 1, nil},
		{"not a number", "6881,x", 2, nil},
		{"empty", "", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePorts(tt.in, tt.n)
			if tt.want == nil {
				if err == nil {
					t.Errorf("parsePorts(%q, %d) = %v, want an error", tt.in, tt.n, got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("parsePorts(%q, %d) = %v, %v; want %v", tt.in, tt.n, got, err, tt.want)
			}
		})
	}
}
