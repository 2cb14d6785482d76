package tracker

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// bstr bencodes s as a string.
func bstr(s string) string { return fmt.Sprintf("%d:%s", len(s), s) }

// compact4 packs IPv4 peers as BEP 23 does: 4 address bytes, 2 port bytes, big-endian.
func compact4(peers ...string) string {
	var b []byte
	for _, p := range peers {
		ap := netip.MustParseAddrPort(p)
		a := ap.Addr().As4()
		b = append(append(b, a[:]...), byte(ap.Port()>>8), byte(ap.Port()))
	}
	return string(b)
}

// compact6 packs IPv6 peers as BEP 7 does: 16 address bytes, 2 port bytes.
func compact6(peers ...string) string {
	var b []byte
	for _, p := range peers {
		ap := netip.MustParseAddrPort(p)
		a := ap.Addr().As16()
		b = append(append(b, a[:]...), byte(ap.Port()>>8), byte(ap.Port()))
	}
	return string(b)
}

func addrs(ss ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		out = append(out, netip.MustParseAddrPort(s))
	}
	return out
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Response
	}{
		{
			name: "compact peers",
			body: "d8:intervali1800e5:peers12:" +
				"\x01\x02\x03\x04\x1a\xe1" + // 1.2.3.4:6881
				"\x7f\x00\x00\x01\x00\x50" + // 127.0.0.1:80
				"e",
			want: Response{Interval: 30 * time.Minute, Peers: addrs("1.2.3.4:6881", "127.0.0.1:80")},
		},
		{
			name: "compact peers skips port 0, 0.0.0.0, multicast and broadcast",
			body: "d8:intervali1800e5:peers" + bstr(compact4(
				"1.2.3.4:0", "0.0.0.0:6881", "224.0.0.1:6881", "255.255.255.255:6881", "10.0.0.1:6881")) + "e",
			want: Response{Interval: 30 * time.Minute, Peers: addrs("10.0.0.1:6881")},
		},
		{
			name: "empty compact peers",
			body: "d8:intervali900e5:peers0:e",
			want: Response{Interval: 15 * time.Minute},
		},
		{
			name: "no peers key",
			body: "d8:intervali900ee",
			want: Response{Interval: 15 * time.Minute},
		},
		{
			name: "dictionary peers",
			body: "d8:intervali60e5:peersl" +
				"d2:ip7:1.2.3.47:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee" +
				"d2:ip3:::14:porti51413ee" +
				"d2:ip15:::ffff:10.0.0.14:porti1ee" + // IPv4-mapped: unmapped
				"d2:ip11:example.com4:porti6881ee" + // a host name: skipped
				"d2:ip7:5.6.7.84:porti0ee" + // port 0: skipped
				"d2:ip7:5.6.7.84:porti65536ee" + // port out of range: skipped
				"d2:ip7:5.6.7.84:porti-1ee" + // negative port: skipped
				"d2:ip7:5.6.7.84:port4:6881e" + // port not an integer: skipped
				"d2:ipi1e4:porti6881ee" + // ip not a string: skipped
				"d2:ip12:fe80::1%eth04:porti6881ee" + // zone: skipped
				"d4:porti6881ee" + // no ip: skipped
				"i7e" + // not a dictionary: skipped
				"d2:ip7:0.0.0.04:porti6881ee" + // unspecified: skipped
				"ee",
			want: Response{Interval: time.Minute, Peers: addrs("1.2.3.4:6881", "[::1]:51413", "10.0.0.1:1")},
		},
		{
			name: "peers6",
			body: "d8:intervali1800e5:peers6:\x01\x02\x03\x04\x1a\xe16:peers6" + bstr(compact6(
				"[2001:db8::1]:6881", "[::ffff:9.9.9.9]:7000", "[::]:6881", "[2001:db8::2]:0")) + "e",
			want: Response{Interval: 30 * time.Minute, Peers: addrs("1.2.3.4:6881", "[2001:db8::1]:6881", "9.9.9.9:7000")},
		},
		{
			name: "counts, min interval, tracker id and warning",
			body: "d8:completei5e10:incompletei7e8:intervali1800e12:min intervali900e5:peers0:" +
				"10:tracker id3:abc15:warning message11:slow down!!e",
			want: Response{Interval: 30 * time.Minute, MinInterval: 15 * time.Minute, Complete: 5, Incomplete: 7,
				TrackerID: "abc", Warning: "slow down!!"},
		},
		{
			name: "negative counts read as 0",
			body: "d8:completei-5e10:incompletei-1e8:intervali1800ee",
			want: Response{Interval: 30 * time.Minute},
		},
		{
			name: "huge counts capped",
			body: "d8:completei9223372036854775807e8:intervali1800ee",
			want: Response{Interval: 30 * time.Minute, Complete: 1<<31 - 1},
		},
		{
			name: "interval 0 clamped up",
			body: "d8:intervali0e12:min intervali1ee",
			want: Response{Interval: MinAnnounceInterval, MinInterval: MinAnnounceInterval},
		},
		{
			name: "negative interval clamped up",
			body: "d8:intervali-3600ee",
			want: Response{Interval: MinAnnounceInterval},
		},
		{
			name: "absurd interval clamped down",
			body: "d8:intervali9223372036854775807e12:min intervali100000000ee",
			want: Response{Interval: MaxAnnounceInterval, MinInterval: MaxAnnounceInterval},
		},
		{
			name: "unknown keys ignored",
			body: "d8:intervali1800e5:xtrald1:ai1eee",
			want: Response{Interval: 30 * time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseResponse(%q) = %v", tt.body, err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("ParseResponse(%q) = %+v, want %+v", tt.body, *got, tt.want)
			}
		})
	}
}

func TestParseResponseErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string
		failure bool // a *FailureError rather than ErrBadResponse
	}{
		{name: "failure reason", body: "d14:failure reason12:unregisterede", failure: true,
			want: "tracker: failure reason: unregistered"},
		{name: "failure reason wins over the rest", body: "d14:failure reason4:nope8:intervali60e5:peers1:xe", failure: true,
			want: "tracker: failure reason: nope"},
		{name: "failure reason not a string", body: "d14:failure reasoni1ee",
			want: "tracker: bad response: failure reason: want a string, got integer"},
		{name: "garbage", body: "<html>502 Bad Gateway</html>",
			want: "tracker: bad response: bencode: offset 0: invalid character '<'"},
		{name: "empty", body: "", want: "tracker: bad response: bencode: offset 0: unexpected end of input"},
		{name: "truncated", body: "d8:intervali1800e5:peers12:\x01\x02",
			want: "tracker: bad response: bencode: offset 24: string length exceeds input"},
		{name: "not a dictionary", body: "li1ee", want: "tracker: bad response: want a dictionary, got list"},
		{name: "missing interval", body: "d5:peers0:e", want: "tracker: bad response: interval: missing"},
		{name: "interval a string", body: "d8:interval4:1800e", want: "tracker: bad response: interval: want an integer, got string"},
		{name: "min interval a list", body: "d8:intervali1e12:min intervallee",
			want: "tracker: bad response: min interval: want an integer, got list"},
		{name: "compact length not a multiple of 6", body: "d8:intervali1800e5:peers7:\x01\x02\x03\x04\x1a\xe1\x00e",
			want: "tracker: bad response: peers: length 7 is not a multiple of 6"},
		{name: "peers6 length not a multiple of 18", body: "d8:intervali1800e6:peers66:\x01\x02\x03\x04\x1a\xe1e",
			want: "tracker: bad response: peers6: length 6 is not a multiple of 18"},
		{name: "peers an integer", body: "d8:intervali1800e5:peersi1ee",
			want: "tracker: bad response: peers: want a string or a list, got integer"},
		{name: "peers6 a list", body: "d8:intervali1800e6:peers6lee",
			want: "tracker: bad response: peers6: want a string, got list"},
		{name: "warning not a string", body: "d8:intervali1800e15:warning messagei1ee",
			want: "tracker: bad response: warning message: want a string, got integer"},
		{name: "complete not an integer", body: "d8:completele8:intervali1800ee",
			want: "tracker: bad response: complete: want an integer, got list"},
		{name: "duplicate key", body: "d8:intervali1e8:intervali2ee",
			want: `tracker: bad response: bencode: offset 14: duplicate dictionary key "interval"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseResponse(%q) = %+v, want error %q", tt.body, got, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ParseResponse(%q) = %q, want %q", tt.body, err, tt.want)
			}
			var fe *FailureError
			if errors.As(err, &fe) != tt.failure || errors.Is(err, ErrBadResponse) == tt.failure {
				t.Errorf("ParseResponse(%q) = %#v: FailureError %v, ErrBadResponse %v; want failure = %v",
					tt.body, err, errors.As(err, &fe), errors.Is(err, ErrBadResponse), tt.failure)
			}
		})
	}
}

func TestParseResponseMaxPeers(t *testing.T) {
	const extra = 10
	var v4, v6 []string
	for i := range MaxPeers + extra {
		v4 = append(v4, fmt.Sprintf("10.%d.%d.%d:6881", i>>16&255, i>>8&255, i&255))
		v6 = append(v6, fmt.Sprintf("[2001:db8::%x]:6881", i+1))
	}
	tests := []struct {
		name      string
		body      string
		wantFirst string
	}{
		{name: "compact", body: "d8:intervali1e5:peers" + bstr(compact4(v4...)) + "e", wantFirst: v4[0]},
		{name: "peers6", body: "d8:intervali1e6:peers6" + bstr(compact6(v6...)) + "e", wantFirst: v6[0]},
		{name: "peers then peers6", body: "d8:intervali1e5:peers" + bstr(compact4(v4[:MaxPeers-5]...)) +
			"6:peers6" + bstr(compact6(v6...)) + "e", wantFirst: v4[0]},
		{name: "dictionaries", body: func() string {
			var b strings.Builder
			b.WriteString("d8:intervali1e5:peersl")
			for _, p := range v4 {
				ap := netip.MustParseAddrPort(p)
				fmt.Fprintf(&b, "d2:ip%s4:porti%dee", bstr(ap.Addr().String()), ap.Port())
			}
			b.WriteString("ee")
			return b.String()
		}(), wantFirst: v4[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Peers) != MaxPeers || got.Peers[0].String() != tt.wantFirst {
				t.Errorf("ParseResponse: %d peers, first %v; want %d, first %s", len(got.Peers), got.Peers[0], MaxPeers, tt.wantFirst)
			}
		})
	}
}
