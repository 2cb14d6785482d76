// Package magnet reads and writes magnet links for BitTorrent v1 swarms (BEP 9):
//
//	magnet:?xt=urn:btih:<info hash>&dn=<name>&tr=<tracker URL>&x.pe=<peer address>
//
// A magnet link carries the info hash and hints for finding peers; the info dictionary
// itself is fetched from those peers (wire.ParseMetadataMsg) and turned into a torrent
// with metainfo.FromInfo.
//
// Parse is lenient where links in the wild vary and strict where a mistake would
// download something else: parameter names match in any case, as libtorrent's do, and
// "xt.1", "tr.2" (the numbered names of the magnet URI draft) count as xt and tr;
// parameters it does not know (xl, ws, so, ...) are ignored; but the info hash must be
// exactly 40 hex or 32 base32 digits, and every x.pe peer a usable address. An error is
// one line that names the part at fault:
//
//	magnet: xt: "urn:btih:xyz": info hash must be 40 hex or 32 base32 characters
//
// Values are unescaped as an HTML form's are ('+' is a space), as libtorrent does, and
// String escapes a space as %20, which every client reads.
package magnet

import (
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Magnet is a parsed magnet link.
type Magnet struct {
	InfoHash [20]byte // "xt=urn:btih:", the SHA-1 of the info dictionary (BEP 3)
	Name     string   // "dn": a name to show until the metadata arrives; may be empty
	// Trackers are the "tr" URLs in the order of the link, trimmed of spaces, without
	// empty ones or repeats. Tiers arranges them for BEP 12.
	Trackers []string
	// Peers are the "x.pe" peers given as IP literals, IPv4-mapped IPv6 addresses
	// unmapped, without repeats.
	Peers []netip.AddrPort
	// PeerHosts are the "x.pe" peers given as a host name, as "host:port" with the name
	// in lower case, without repeats. Resolving them is the caller's business: nothing
	// below internal/ touches the network.
	PeerHosts []string
}

// Parse reads a magnet link; surrounding spaces are ignored.
func Parse(uri string) (*Magnet, error) {
	s := strings.TrimSpace(uri)
	scheme, rest, ok := cutScheme(s)
	switch {
	case !ok:
		return nil, errors.New("magnet: not a magnet link (no scheme)")
	case !strings.EqualFold(scheme, "magnet"):
		return nil, fmt.Errorf("magnet: not a magnet link (scheme %q)", scheme)
	}
	query, ok := strings.CutPrefix(rest, "?")
	if !ok {
		return nil, fmt.Errorf(`magnet: no "?" after "%s:"`, scheme)
	}

	m := &Magnet{}
	var hashXT, v2XT string // the xt values that gave the info hash, and a v2 one
	for param := range strings.SplitSeq(query, "&") {
		if param == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(param, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, fmt.Errorf("magnet: parameter %q: bad %%-escape in its name", rawKey)
		}
		key = strings.ToLower(key)
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, fmt.Errorf("magnet: %s: %q: bad %%-escape", key, rawVal)
		}
		switch baseName(key) {
		case "xt":
			urn, hash, ok := cutURN(val)
			switch {
			case !ok:
				// Another kind of hash (urn:sha1:, urn:ed2k:, ...): of no use to BitTorrent.
			case urn == "btih":
				h, err := parseInfoHash(hash)
				if err != nil {
					return nil, fmt.Errorf("magnet: xt: %q: %w", val, err)
				}
				if hashXT != "" && h != m.InfoHash {
					return nil, fmt.Errorf("magnet: xt: %q: a second info hash, after %q", val, hashXT)
				}
				m.InfoHash, hashXT = h, val
			case urn == "btmh" && v2XT == "":
				v2XT = val
			}
		case "dn":
			if m.Name == "" {
				m.Name = val
			}
		case "tr":
			if tr := strings.TrimSpace(val); tr != "" && !slices.Contains(m.Trackers, tr) {
				m.Trackers = append(m.Trackers, tr)
			}
		case "x.pe":
			addr, host, err := parsePeer(val)
			switch {
			case err != nil:
				return nil, fmt.Errorf("magnet: x.pe: %q: %w", val, err)
			case host != "":
				if !slices.Contains(m.PeerHosts, host) {
					m.PeerHosts = append(m.PeerHosts, host)
				}
			case !slices.Contains(m.Peers, addr):
				m.Peers = append(m.Peers, addr)
			}
		}
	}
	if hashXT == "" {
		if v2XT != "" {
			return nil, fmt.Errorf("magnet: xt: %q: BitTorrent v2 links (urn:btmh, BEP 52) are not supported yet", v2XT)
		}
		return nil, errors.New("magnet: no xt=urn:btih parameter")
	}
	return m, nil
}

// cutScheme splits s at the colon that ends its URI scheme (RFC 3986: a letter, then
// letters, digits, '+', '-' or '.'), and reports whether it has one.
func cutScheme(s string) (scheme, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return s[:i], s[i+1:], true
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// baseName returns the name of a parameter without the ".<n>" of a numbered one
// ("tr.2" is a "tr"). x.pe is not numbered.
func baseName(key string) string {
	base, n, ok := strings.Cut(key, ".")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return key
	}
	return base
}

// cutURN splits "urn:<nid>:<rest>" into the lower-cased nid and rest. RFC 8141: the
// "urn" and the namespace are case-insensitive.
func cutURN(s string) (nid, rest string, ok bool) {
	p, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(p, "urn") {
		return "", "", false
	}
	nid, rest, ok = strings.Cut(rest, ":")
	return strings.ToLower(nid), rest, ok
}

// parseInfoHash decodes a v1 info hash. BEP 9: hex encoded, for a total of 40
// characters; clients should also support the 32 character base32 encoded info-hash.
// Either in any case.
func parseInfoHash(s string) ([20]byte, error) {
	var h [20]byte
	n, err := 0, errors.New("wrong length")
	switch len(s) {
	case 40:
		n, err = hex.Decode(h[:], []byte(s))
	case 32:
		// The decoder skips '\r' and '\n', so n tells whether all 32 were digits.
		n, err = base32.StdEncoding.Decode(h[:], []byte(strings.ToUpper(s)))
	}
	if err != nil || n != len(h) {
		return h, errors.New("info hash must be 40 hex or 32 base32 characters")
	}
	return h, nil
}

// parsePeer reads an x.pe peer. BEP 9: a peer address expressed as hostname:port,
// ipv4-literal:port or [ipv6-literal]:port. An IP literal comes back as addr, a host name
// as host ("name:port").
func parsePeer(s string) (addr netip.AddrPort, host string, err error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" {
		return addr, "", errors.New("want host:port, IPv4:port or [IPv6]:port")
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return addr, "", fmt.Errorf("port %q is not in [1, 65535]", p)
	}
	ip, err := netip.ParseAddr(h)
	bracketed := strings.HasPrefix(s, "[")
	switch {
	case bracketed && (err != nil || !ip.Is6()):
		return addr, "", errors.New("brackets are for IPv6 addresses")
	case err == nil:
		ip = ip.Unmap()
		switch {
		case ip.Zone() != "":
			return addr, "", errors.New("an IPv6 zone means nothing to another host")
		case ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return addr, "", fmt.Errorf("%s is not a peer's address", ip)
		}
		return netip.AddrPortFrom(ip, uint16(port)), "", nil
	case !isHostname(h):
		return addr, "", fmt.Errorf("%q is neither an IP address nor a host name", h)
	}
	return addr, strings.ToLower(h) + ":" + strconv.FormatUint(port, 10), nil
}

// isHostname reports whether s is a DNS name (RFC 1123): dot-separated labels of 1 to 63
// letters, digits and hyphens, not starting or ending with a hyphen, 253 bytes at most.
func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// String returns the canonical link for m: the info hash in lower-case hex, then dn, tr
// and x.pe in m's order, each value escaped. Parse(m.String()) gives m back for any m
// that Parse returned.
func (m *Magnet) String() string {
	var b strings.Builder
	b.WriteString("magnet:?xt=urn:btih:")
	b.WriteString(hex.EncodeToString(m.InfoHash[:]))
	if m.Name != "" {
		b.WriteString("&dn=")
		b.WriteString(escape(m.Name))
	}
	for _, tr := range m.Trackers {
		b.WriteString("&tr=")
		b.WriteString(escape(tr))
	}
	for _, p := range m.Peers {
		b.WriteString("&x.pe=")
		b.WriteString(escape(p.String()))
	}
	for _, h := range m.PeerHosts {
		b.WriteString("&x.pe=")
		b.WriteString(escape(h))
	}
	return b.String()
}

// escape escapes s for a query value. url.QueryEscape writes a space as '+', which
// clients that do not unescape as forms do would show; %20 they all read.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// Tiers returns the trackers as BEP 12 tiers of one tracker each, in the link's order,
// as libtorrent arranges a magnet link's trackers, or nil if there are none: a link has
// no tiers, and its order is the only preference it states.
func (m *Magnet) Tiers() [][]string {
	var tiers [][]string
	for _, tr := range m.Trackers {
		tiers = append(tiers, []string{tr})
	}
	return tiers
}
