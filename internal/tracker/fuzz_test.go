package tracker

import (
	"errors"
	"testing"
)

// FuzzParseResponse checks that ParseResponse never panics, fails only with a
// *FailureError or ErrBadResponse, and keeps its bounds on what it accepts.
func FuzzParseResponse(f *testing.F) {
	for _, seed := range []string{
		"d8:intervali1800e5:peers6:\x01\x02\x03\x04\x1a\xe1e",
		"d8:intervali1800e5:peersld2:ip7:1.2.3.44:porti6881eeee",
		"d8:intervali1800e6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1e",
		"d14:failure reason4:nopee",
		"d8:completei1e10:incompletei2e8:intervali-1e12:min intervali99999999999e10:tracker id1:x15:warning message1:we",
		"d8:intervali1800e5:peers7:1234567e",
		"d5:peers0:e",
		"le",
		"<html>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if err != nil {
			var fe *FailureError
			if !errors.As(err, &fe) && !errors.Is(err, ErrBadResponse) {
				t.Fatalf("ParseResponse(%q) = %v: neither a *FailureError nor ErrBadResponse", body, err)
			}
			return
		}
		if r.Interval < MinAnnounceInterval || r.Interval > MaxAnnounceInterval {
			t.Fatalf("Interval = %v, out of bounds", r.Interval)
		}
		if r.MinInterval != 0 && (r.MinInterval < MinAnnounceInterval || r.MinInterval > MaxAnnounceInterval) {
			t.Fatalf("MinInterval = %v, out of bounds", r.MinInterval)
		}
		if r.Complete < 0 || r.Incomplete < 0 || len(r.Peers) > MaxPeers {
			t.Fatalf("ParseResponse(%q) = %+v", body, r)
		}
		for _, p := range r.Peers {
			if !usable(p) || !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("peer %v should have been skipped", p)
			}
		}
	})
}
