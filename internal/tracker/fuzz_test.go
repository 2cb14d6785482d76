package tracker

import (
	"encoding/binary"
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

// FuzzParseUDPReply feeds one packet to the three UDP reply parsers, with the transaction
// ID it carries (or another), and checks that they never panic, fail only with a
// *FailureError or ErrBadResponse, and keep no more peers or entries than the packet
// holds.
func FuzzParseUDPReply(f *testing.F) {
	v6 := append(make([]byte, 15), 1, 0x1a, 0xe1) // [::1]:6881
	for _, seed := range [][]byte{
		connectReply(7, 0x1122334455667788),
		announceReply(7, 1800, 1, 2, 127, 0, 0, 1, 0x1a, 0xe1, 0, 0, 0, 0, 0, 0),
		announceReply(7, -1, -1, -1, v6...),
		announceReply(7, 1800, 0, 0, 1, 2, 3),
		cat(be32(actionScrape), be32(7), be32(1), be32(2), be32(3)),
		errorReply(7, "not authorized"),
		errorReply(7, "\xff\xfe"),
		{0, 0, 0, 1},
		{},
	} {
		f.Add(seed, true, uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, sameTID bool, hashes uint8) {
		var tid uint32
		if len(b) >= 8 {
			tid = binary.BigEndian.Uint32(b[4:])
		}
		if !sameTID {
			tid++
		}
		ok := func(err error) {
			var fe *FailureError
			if err != nil && !errors.As(err, &fe) && !errors.Is(err, ErrBadResponse) {
				t.Fatalf("% x: %v: neither a *FailureError nor ErrBadResponse", b, err)
			}
		}
		_, err := parseUDPConnect(b, tid)
		ok(err)
		for _, ipv6 := range []bool{false, true} {
			r, err := parseUDPAnnounce(b, tid, ipv6)
			ok(err)
			if err != nil {
				continue
			}
			size := 6
			if ipv6 {
				size = 18
			}
			if len(r.Peers) > (len(b)-20)/size || cap(r.Peers) > (len(b)-20)/size {
				t.Fatalf("% x: %d peers (cap %d) from %d bytes", b, len(r.Peers), cap(r.Peers), len(b))
			}
			if r.Interval < MinAnnounceInterval || r.Interval > MaxAnnounceInterval || r.Complete < 0 || r.Incomplete < 0 {
				t.Fatalf("% x: %+v", b, r)
			}
			for _, p := range r.Peers {
				if !usable(p) || p.Addr().Is4In6() {
					t.Fatalf("peer %v should have been skipped", p)
				}
			}
		}
		n := int(hashes % (MaxUDPScrape + 1))
		s, err := parseUDPScrape(b, tid, n)
		ok(err)
		for _, e := range s {
			if e.Seeders < 0 || e.Completed < 0 || e.Leechers < 0 {
				t.Fatalf("% x: scrape %+v", b, e)
			}
		}
	})
}
