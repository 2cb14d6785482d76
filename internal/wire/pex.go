package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// BEP 11, ut_pex: peers tell each other which peers they have connected to ("added")
// and disconnected from ("dropped") since their last message, as a bencoded dictionary
// of compact addresses: 6 bytes for IPv4 (address, big-endian port), 18 for IPv6, with
// one byte of flags per added peer.

// MaxPexPeers bounds the added peers, and separately the dropped ones, that ParsePex
// returns from one message; those beyond it are dropped. BEP 11 asks for at most 50 of
// each after the first message, and libtorrent puts at most 100 added peers in any
// (max_peer_entries in ut_pex.cpp), which is the bound.
const MaxPexPeers = 100

// ErrBadPex wraps the errors of ParsePex.
var ErrBadPex = errors.New("bad ut_pex message")

// PexFlags are what the sender knows of an added peer (BEP 11).
type PexFlags uint8

// BEP 11 flag bits; the others are reserved.
const (
	PexEncryption PexFlags = 0x01 // prefers encryption (the "e" of its extended handshake)
	PexSeed       PexFlags = 0x02 // seed, or upload only
	PexUTP        PexFlags = 0x04 // supports uTP
	PexHolepunch  PexFlags = 0x08 // announced ut_holepunch in its extended handshake
	PexReachable  PexFlags = 0x10 // the sender connected out to it: it is reachable
)

// PexPeer is an added peer and its flags.
type PexPeer struct {
	Addr  netip.AddrPort
	Flags PexFlags
}

// Pex is a ut_pex message. IPv4 and IPv6 peers share each list: an address that Is4
// travels in "added"/"dropped", any other in "added6"/"dropped6".
type Pex struct {
	Added   []PexPeer
	Dropped []netip.AddrPort
}

// AppendPex appends the extended message carrying p, with extended id extID: the id the
// receiving peer gave ut_pex in its handshake. Flags are always sent with added peers,
// since libtorrent ignores "added" without "added.f". Keys with nothing to say are left
// out. The caller keeps to BEP 11: at most 50 added and 50 dropped peers after the first
// message, none of them twice, none both added and dropped, and at most one message a
// minute.
func AppendPex(dst []byte, extID uint8, p Pex) []byte {
	var added, addedF, added6, added6F, dropped, dropped6 []byte
	for _, a := range p.Added {
		if a.Addr.Addr().Is4() {
			added = appendCompact(added, a.Addr)
			addedF = append(addedF, byte(a.Flags))
		} else {
			added6 = appendCompact(added6, a.Addr)
			added6F = append(added6F, byte(a.Flags))
		}
	}
	for _, a := range p.Dropped {
		if a.Addr().Is4() {
			dropped = appendCompact(dropped, a)
		} else {
			dropped6 = appendCompact(dropped6, a)
		}
	}
	b := []byte{'d'}
	// Keys in sorted order, as bencoding requires (BEP 3).
	for _, kv := range []struct {
		k string
		v []byte
	}{
		{"added", added}, {"added.f", addedF}, {"added6", added6}, {"added6.f", added6F},
		{"dropped", dropped}, {"dropped6", dropped6},
	} {
		if len(kv.v) > 0 {
			b = appendBString(b, kv.k)
			b = appendBString(b, string(kv.v))
		}
	}
	b = append(b, 'e')
	dst = appendExtendedHeader(dst, extID, len(b))
	return append(dst, b...)
}

// appendCompact appends a in compact form: 4 or 16 bytes of address, 2 of port.
func appendCompact(b []byte, a netip.AddrPort) []byte {
	if ip := a.Addr(); ip.Is4() {
		x := ip.As4()
		b = append(b, x[:]...)
	} else {
		x := ip.As16()
		b = append(b, x[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// ParsePex reads a ut_pex message: payload is the extended message after its extended
// id byte. Every key is optional; one of the wrong type, a list of addresses whose length
// is not a multiple of the address size, or flags that are not one byte per added peer
// is an error wrapping ErrBadPex. Addresses no one can dial (port 0, unspecified,
// multicast or broadcast) are skipped, IPv4-mapped IPv6 addresses become IPv4 ones, and
// past MaxPexPeers added or dropped peers the rest are dropped, IPv4 first: memory
// follows the bound, not what the message holds. Peers are not deduplicated, and
// nothing here makes them trustworthy (BEP 11: data exchanged via PEX messages should be
// considered untrusted).
func ParsePex(payload []byte) (Pex, error) {
	var p Pex
	keys := [...]string{"added", "added.f", "added6", "added6.f", "dropped", "dropped6"}
	f, err := dictFields(payload, keys[:]...)
	if err != nil {
		return p, fmt.Errorf("wire: %w: %w", ErrBadPex, err)
	}
	var s [len(keys)][]byte
	for i, v := range f {
		if v == nil {
			continue
		}
		var ok bool
		if s[i], ok = rawString(v); !ok {
			return p, badPex("%s: want a string, got %s", keys[i], rawType(v))
		}
	}
	added, addedF, added6, added6F, dropped, dropped6 := s[0], s[1], s[2], s[3], s[4], s[5]
	for _, l := range []struct {
		key   string
		addrs []byte
		size  int
	}{{"added", added, 6}, {"added6", added6, 18}, {"dropped", dropped, 6}, {"dropped6", dropped6, 18}} {
		if len(l.addrs)%l.size != 0 {
			return p, badPex("%s: length %d is not a multiple of %d", l.key, len(l.addrs), l.size)
		}
	}
	// BEP 11: added.f is optional, one byte per added peer.
	if f[1] != nil && len(addedF) != len(added)/6 {
		return p, badPex("added.f: %d flags for %d peers", len(addedF), len(added)/6)
	}
	if f[3] != nil && len(added6F) != len(added6)/18 {
		return p, badPex("added6.f: %d flags for %d peers", len(added6F), len(added6)/18)
	}
	if n := min(len(added)/6+len(added6)/18, MaxPexPeers); n > 0 {
		p.Added = make([]PexPeer, 0, n)
		p.Added = appendPexPeers(p.Added, added, addedF, 4)
		p.Added = appendPexPeers(p.Added, added6, added6F, 16)
	}
	if n := min(len(dropped)/6+len(dropped6)/18, MaxPexPeers); n > 0 {
		p.Dropped = make([]netip.AddrPort, 0, n)
		for _, d := range [...]struct {
			b     []byte
			ipLen int
		}{{dropped, 4}, {dropped6, 16}} {
			for b := d.b; len(b) > 0 && len(p.Dropped) < MaxPexPeers; b = b[d.ipLen+2:] {
				if a := compactAddr(b, d.ipLen); usable(a) {
					p.Dropped = append(p.Dropped, a)
				}
			}
		}
	}
	// Lists whose every address was unusable are none at all, as when absent.
	if len(p.Added) == 0 {
		p.Added = nil
	}
	if len(p.Dropped) == 0 {
		p.Dropped = nil
	}
	return p, nil
}

// appendPexPeers appends the usable peers of the compact list b, with ipLen bytes of
// address each, and their flags (zero when flags is nil), up to MaxPexPeers in all.
func appendPexPeers(peers []PexPeer, b, flags []byte, ipLen int) []PexPeer {
	for i := 0; len(b) > 0 && len(peers) < MaxPexPeers; i, b = i+1, b[ipLen+2:] {
		a := compactAddr(b, ipLen)
		if !usable(a) {
			continue
		}
		var fl PexFlags
		if flags != nil {
			fl = PexFlags(flags[i])
		}
		peers = append(peers, PexPeer{Addr: a, Flags: fl})
	}
	return peers
}

// compactAddr reads the compact address at the start of b: ipLen bytes of address, then
// a big-endian port. An IPv4-mapped IPv6 address is returned as IPv4.
func compactAddr(b []byte, ipLen int) netip.AddrPort {
	var ip netip.Addr
	if ipLen == 4 {
		ip = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		ip = netip.AddrFrom16([16]byte(b[:16])).Unmap()
	}
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[ipLen:]))
}

// usable reports whether a peer address can be dialled: not port 0, and not an
// unspecified ("0.0.0.0", which dials this host), multicast or broadcast address, as the
// tracker package decides for the peers of an announce. Loopback and private addresses
// are kept: local swarms and tests use them.
func usable(a netip.AddrPort) bool {
	ip := a.Addr()
	return a.Port() != 0 && !ip.IsUnspecified() && !ip.IsMulticast() &&
		ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func badPex(format string, args ...any) error {
	return fmt.Errorf("wire: %w: %s", ErrBadPex, fmt.Sprintf(format, args...))
}
