package dhtnode

import (
	"net"
	"net/netip"

	"github.com/anacrolix/torrent/iplist"
)

// privatePrefixes are the addresses no node or peer of the internet's DHT has: private
// networks (RFC 1918, RFC 4193), loopback, link-local, shared address space (RFC 6598)
// and "this network". Nodes that hand them out are behind a NAT and report their LAN.
var privatePrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// isPrivate reports whether a lies in one of privatePrefixes.
func isPrivate(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range privatePrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// privateRanges is the server's IP block list when private addresses are not allowed:
// the server neither sends to nor reads from them.
type privateRanges struct{}

var _ iplist.Ranger = privateRanges{}

func (privateRanges) Lookup(ip net.IP) (iplist.Range, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || !isPrivate(a) {
		return iplist.Range{}, false
	}
	return iplist.Range{First: ip, Last: ip, Description: "private address"}, true
}

func (privateRanges) NumRanges() int { return len(privatePrefixes) }
