package trackerd

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"
)

// The UDP tracker protocol (BEP 15): big-endian integers, requests that start with
// connection_id, action and transaction_id, replies with action and transaction_id.

// udpMagic is the connection_id of a connect request: BEP 15's protocol_id.
const udpMagic = 0x41727101980

// The actions of BEP 15.
const (
	actionConnect  = 0
	actionAnnounce = 1
	actionScrape   = 2
	actionError    = 3
)

const (
	udpHeader       = 16 // connection_id, action, transaction_id
	udpAnnounceSize = 98 // an announce request before BEP 41's options
	maxUDPPacket    = 65536
)

// UDPConnIDLifetime is how long a connection ID is accepted. BEP 15: "Trackers should
// accept the connection ID until two minutes after it has been send."
const UDPConnIDLifetime = 2 * time.Minute

// errDrop marks a packet that gets no answer: too short to carry a transaction ID to
// answer to, or a connect without BEP 15's protocol_id, which is no BEP 15 client.
var errDrop = errors.New("drop")

// udpRequest is a parsed BEP 15 request.
type udpRequest struct {
	connID      uint64
	action, tid uint32
	announce    announceRequest // for actionAnnounce
	hashes      [][20]byte      // for actionScrape
}

// parseUDP reads a request from b, which came from the client at from (unmapped, no
// zone). It errs with errDrop for a packet to ignore; any other error is for the client,
// and the header fields are set then. It does not check connection IDs, which takes the
// server's secret.
//
// An announce is 98 bytes; what follows (BEP 41 options) is ignored. Its IP address
// field, when not 0, replaces the source address like HTTP's ip=; num_want below 0 means
// the default. A scrape names 1 to MaxScrape info hashes: BEP 15 has no full scrape.
func parseUDP(b []byte, from netip.AddrPort, numWantDefault, numWantMax int) (udpRequest, error) {
	var req udpRequest
	if len(b) < udpHeader {
		return req, errDrop
	}
	req.connID = binary.BigEndian.Uint64(b)
	req.action = binary.BigEndian.Uint32(b[8:])
	req.tid = binary.BigEndian.Uint32(b[12:])
	switch req.action {
	case actionConnect:
		if req.connID != udpMagic {
			return req, errDrop
		}
		return req, nil
	case actionAnnounce:
		var err error
		req.announce, err = parseUDPAnnounce(b, from, numWantDefault, numWantMax)
		return req, err
	case actionScrape:
		body := b[udpHeader:]
		n := len(body) / 20
		switch {
		case len(body)%20 != 0:
			return req, fmt.Errorf("scrape: %d bytes of info hashes, not a multiple of 20", len(body))
		case n == 0:
			return req, errors.New("scrape: no info hash")
		case n > MaxScrape:
			return req, fmt.Errorf("scrape: at most %d info hashes, got %d", MaxScrape, n)
		}
		req.hashes = make([][20]byte, n)
		for i := range req.hashes {
			req.hashes[i] = [20]byte(body[20*i:])
		}
		return req, nil
	}
	return req, fmt.Errorf("action %d: unknown", req.action)
}

func parseUDPAnnounce(b []byte, from netip.AddrPort, numWantDefault, numWantMax int) (announceRequest, error) {
	var req announceRequest
	if len(b) < udpAnnounceSize {
		return req, fmt.Errorf("announce: %d bytes, want %d", len(b), udpAnnounceSize)
	}
	req.infoHash = [20]byte(b[16:36])
	req.peerID = [20]byte(b[36:56])
	for _, f := range []struct {
		name string
		off  int
		dst  *int64
	}{{"downloaded", 56, &req.downloaded}, {"left", 64, &req.left}, {"uploaded", 72, &req.uploaded}} {
		v := binary.BigEndian.Uint64(b[f.off:])
		if v > math.MaxInt64 {
			return req, fmt.Errorf("%s: %d is more than 2^63-1", f.name, v)
		}
		*f.dst = int64(v)
	}
	switch e := binary.BigEndian.Uint32(b[80:]); e {
	case 0:
	case 1:
		req.event = "completed"
	case 2:
		req.event = "started"
	case 3:
		req.event = "stopped"
	default:
		return req, fmt.Errorf("event: unknown event %d", e)
	}
	ip := from.Addr()
	if a := netip.AddrFrom4([4]byte(b[84:88])); usable(a) {
		ip = a
	}
	port := binary.BigEndian.Uint16(b[96:])
	if port == 0 {
		return req, errors.New("port: want 1-65535, got 0")
	}
	req.addr = netip.AddrPortFrom(ip, port)
	req.compact = true
	req.numWant = numWantDefault
	if n := int32(binary.BigEndian.Uint32(b[92:])); n >= 0 {
		req.numWant = int(n)
	}
	req.numWant = min(req.numWant, numWantMax)
	// BEP 15: peers go out in the address family the request came in, 6 bytes each over
	// IPv4 and 18 over IPv6; so only peers of that family.
	req.family = 4
	if from.Addr().Is6() {
		req.family = 6
	}
	return req, nil
}

// ServeUDP answers BEP 15 requests arriving on pc, from the same swarms as ServeHTTP,
// until ctx ends; then it returns nil. It returns the error of a failed read otherwise,
// and never closes pc.
func (s *Server) ServeUDP(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, maxUDPPacket)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("trackerd: udp: %w", err)
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		if reply := s.handleUDP(buf[:n], ua.AddrPort()); reply != nil {
			pc.WriteTo(reply, addr) // a lost reply is the client's to retransmit for
		}
	}
}

// handleUDP answers one packet from the client at from, or returns nil to drop it. A
// request with a connection ID this server did not give from's address within
// UDPConnIDLifetime gets an error, before anything else about it is looked at.
func (s *Server) handleUDP(pkt []byte, from netip.AddrPort) []byte {
	from = netip.AddrPortFrom(from.Addr().Unmap().WithZone(""), from.Port())
	if !from.Addr().IsValid() || from.Port() == 0 {
		return nil
	}
	req, err := parseUDP(pkt, from, s.cfg.NumWantDefault, s.cfg.NumWantMax)
	if errors.Is(err, errDrop) {
		return nil
	}
	now := s.cfg.Now()
	if req.action == actionConnect {
		out := udpReplyHeader(actionConnect, req.tid, 8)
		return binary.BigEndian.AppendUint64(out, s.connID(from.Addr(), now))
	}
	if !s.validConnID(req.connID, from.Addr(), now) {
		return udpError(req.tid, "connection id: unknown or expired, connect again")
	}
	if err != nil {
		return udpError(req.tid, err.Error())
	}
	switch req.action {
	case actionAnnounce:
		return s.udpAnnounce(req, now)
	case actionScrape:
		return s.udpScrape(req, now)
	}
	return udpError(req.tid, fmt.Sprintf("action %d: unknown", req.action))
}

func (s *Server) udpAnnounce(req udpRequest, now time.Time) []byte {
	if !s.allowed(req.announce.infoHash) {
		return udpError(req.tid, "info_hash: not allowed on this tracker")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.announce(req.announce, now)
	if err != nil {
		return udpError(req.tid, err.Error())
	}
	size := 6
	if req.announce.family == 6 {
		size = 18
	}
	out := udpReplyHeader(actionAnnounce, req.tid, 12+size*len(r.peers))
	out = binary.BigEndian.AppendUint32(out, uint32(min(seconds(s.cfg.Interval), math.MaxInt32)))
	out = binary.BigEndian.AppendUint32(out, uint32(min(r.incomplete, math.MaxInt32)))
	out = binary.BigEndian.AppendUint32(out, uint32(min(r.complete, math.MaxInt32)))
	for _, p := range r.peers { // all of the request's family: see sample
		if size == 6 {
			a := p.addr.Addr().As4()
			out = append(out, a[:]...)
		} else {
			a := p.addr.Addr().As16()
			out = append(out, a[:]...)
		}
		out = binary.BigEndian.AppendUint16(out, p.addr.Port())
	}
	return out
}

// udpScrape answers seeders, completed and leechers for each info hash, in order; an
// unknown torrent, or one not allowed, reads as zeros.
func (s *Server) udpScrape(req udpRequest, now time.Time) []byte {
	out := udpReplyHeader(actionScrape, req.tid, 12*len(req.hashes))
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := now.Add(-s.cfg.PeerTTL)
	for _, h := range req.hashes {
		var f scrapeFile
		if sw := s.torrents[h]; sw != nil && s.allowed(h) {
			f, _ = s.stats(h, sw, cutoff)
		}
		for _, v := range []int{f.Complete, f.Downloaded, f.Incomplete} {
			out = binary.BigEndian.AppendUint32(out, uint32(min(v, math.MaxInt32)))
		}
	}
	return out
}

func udpReplyHeader(action, tid uint32, body int) []byte {
	out := make([]byte, 8, 8+body)
	binary.BigEndian.PutUint32(out, action)
	binary.BigEndian.PutUint32(out[4:], tid)
	return out
}

// udpError is BEP 15's error reply, which clients show as the tracker's failure reason.
func udpError(tid uint32, msg string) []byte {
	return append(udpReplyHeader(actionError, tid, len(msg)), msg...)
}

// connID returns the connection ID for a client at ip at time now: the low 16 bits of
// the second it was issued, then 48 bits of an HMAC-SHA256 of that whole second and ip
// under the server's secret. It takes no state to check, and cannot be guessed or moved
// to another address without the secret.
func (s *Server) connID(ip netip.Addr, now time.Time) uint64 {
	sec := now.Unix()
	return uint64(uint16(sec))<<48 | s.connMAC(sec, ip)
}

// validConnID reports whether id is connID(ip, t) for a t at most UDPConnIDLifetime
// before now (to the second).
func (s *Server) validConnID(id uint64, ip netip.Addr, now time.Time) bool {
	sec := now.Unix()
	age := uint16(sec) - uint16(id>>48) // mod 2^16: the issue second is in the last 18 hours
	if time.Duration(age)*time.Second > UDPConnIDLifetime {
		return false
	}
	var want, got [8]byte
	binary.BigEndian.PutUint64(want[:], s.connMAC(sec-int64(age), ip))
	binary.BigEndian.PutUint64(got[:], id&(1<<48-1))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

func (s *Server) connMAC(sec int64, ip netip.Addr) uint64 {
	m := hmac.New(sha256.New, s.secret[:])
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:], uint64(sec))
	a := ip.Unmap().As16()
	copy(b[8:], a[:])
	m.Write(b[:])
	return binary.BigEndian.Uint64(m.Sum(nil)) >> 16
}
