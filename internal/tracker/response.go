package tracker

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// ParseResponse parses a tracker's reply body (BEP 3). A "failure reason" makes it return
// a *FailureError; anything malformed, including a missing "interval", is an error
// wrapping ErrBadResponse. Peers come from "peers" (compact, BEP 23, or a list of
// dictionaries) and then "peers6" (BEP 7), at most MaxPeers in all, in the tracker's
// order and not deduplicated.
func ParseResponse(body []byte) (*Response, error) {
	v, err := bencode.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, badf("want a dictionary, got %s", bencode.TypeName(v))
	}
	// BEP 3: "If a tracker response has a key failure reason, then that maps to a human
	// readable string which explains why the query failed, and no other keys are required."
	if f, ok := d["failure reason"]; ok {
		reason, ok := f.(string)
		if !ok {
			return nil, badf("failure reason: want a string, got %s", bencode.TypeName(f))
		}
		return nil, &FailureError{Reason: reason}
	}

	r := &Response{}
	iv, ok := d["interval"]
	if !ok {
		return nil, badf("interval: missing")
	}
	if r.Interval, err = interval(iv, "interval"); err != nil {
		return nil, err
	}
	if mv, ok := d["min interval"]; ok {
		if r.MinInterval, err = interval(mv, "min interval"); err != nil {
			return nil, err
		}
	}
	if r.Warning, err = optString(d, "warning message"); err != nil {
		return nil, err
	}
	if r.TrackerID, err = optString(d, "tracker id"); err != nil {
		return nil, err
	}
	if r.Complete, err = count(d, "complete"); err != nil {
		return nil, err
	}
	if r.Incomplete, err = count(d, "incomplete"); err != nil {
		return nil, err
	}

	switch p := d["peers"].(type) {
	case nil: // a tracker with nobody to offer may leave it out
	case string:
		if r.Peers, err = compactPeers(r.Peers, p, 4, "peers"); err != nil {
			return nil, err
		}
	case []any:
		r.Peers = dictPeers(r.Peers, p)
	default:
		return nil, badf("peers: want a string or a list, got %s", bencode.TypeName(p))
	}
	switch p := d["peers6"].(type) {
	case nil:
	case string:
		if r.Peers, err = compactPeers(r.Peers, p, 16, "peers6"); err != nil {
			return nil, err
		}
	default:
		return nil, badf("peers6: want a string, got %s", bencode.TypeName(p))
	}
	return r, nil
}

// compactPeers appends the peers packed in s: each an IP address of ipLen bytes and a
// big-endian port (BEP 23 for IPv4, BEP 7 for IPv6).
func compactPeers(peers []netip.AddrPort, s string, ipLen int, field string) ([]netip.AddrPort, error) {
	size := ipLen + 2
	if len(s)%size != 0 {
		return nil, badf("%s: length %d is not a multiple of %d", field, len(s), size)
	}
	if peers == nil && len(s) > 0 {
		peers = make([]netip.AddrPort, 0, min(len(s)/size, MaxPeers))
	}
	for b := []byte(s); len(b) > 0 && len(peers) < MaxPeers; b = b[size:] {
		var ip netip.Addr
		if ipLen == 4 {
			ip = netip.AddrFrom4([4]byte(b[:4]))
		} else {
			ip = netip.AddrFrom16([16]byte(b[:16])).Unmap()
		}
		if ap := netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[ipLen:])); usable(ap) {
			peers = append(peers, ap)
		}
	}
	return peers, nil
}

// dictPeers appends the peers of BEP 3's original format, a list of dictionaries with
// "ip" and "port" (and a "peer id" we do not need: the handshake tells us). Entries that
// are malformed, name a host instead of a literal address, or have an unusable port are
// skipped rather than failing the reply.
func dictPeers(peers []netip.AddrPort, list []any) []netip.AddrPort {
	for _, e := range list {
		if len(peers) >= MaxPeers {
			break
		}
		d, ok := e.(map[string]any)
		if !ok {
			continue
		}
		s, _ := d["ip"].(string)
		port, _ := d["port"].(int64)
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" || port <= 0 || port > 65535 {
			continue
		}
		if ap := netip.AddrPortFrom(ip.Unmap(), uint16(port)); usable(ap) {
			peers = append(peers, ap)
		}
	}
	return peers
}

// usable reports whether a peer address can be dialled: not port 0, and not an
// unspecified ("0.0.0.0", which dials this host), multicast or broadcast address.
// Loopback and private addresses are kept: local swarms and tests use them.
func usable(ap netip.AddrPort) bool {
	ip := ap.Addr()
	return ap.Port() != 0 && !ip.IsUnspecified() && !ip.IsMulticast() &&
		ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// interval reads a number of seconds and clamps it into
// [MinAnnounceInterval, MaxAnnounceInterval] (see the package doc).
func interval(v any, field string) (time.Duration, error) {
	sec, ok := v.(int64)
	if !ok {
		return 0, badf("%s: want an integer, got %s", field, bencode.TypeName(v))
	}
	return clampInterval(sec), nil
}

// clampInterval turns a number of seconds from a tracker into a duration within
// [MinAnnounceInterval, MaxAnnounceInterval].
func clampInterval(sec int64) time.Duration {
	// Compare in seconds: sec * time.Second overflows for absurd values.
	switch {
	case sec < int64(MinAnnounceInterval/time.Second):
		return MinAnnounceInterval
	case sec > int64(MaxAnnounceInterval/time.Second):
		return MaxAnnounceInterval
	}
	return time.Duration(sec) * time.Second
}

// count reads an optional peer count; negative counts read as 0 and huge ones are capped.
func count(d map[string]any, key string) (int, error) {
	v, ok := d[key]
	if !ok {
		return 0, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, badf("%s: want an integer, got %s", key, bencode.TypeName(v))
	}
	return int(min(max(n, 0), 1<<31-1)), nil
}

func optString(d map[string]any, key string) (string, error) {
	v, ok := d[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badf("%s: want a string, got %s", key, bencode.TypeName(v))
	}
	return s, nil
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadResponse}, args...)...)
}
