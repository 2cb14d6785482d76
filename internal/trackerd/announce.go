package trackerd

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// announceRequest is a parsed /announce query (BEP 3).
type announceRequest struct {
	infoHash, peerID           [20]byte
	addr                       netip.AddrPort // where other peers reach it
	uploaded, downloaded, left int64
	event                      string // "", "started", "completed" or "stopped"
	compact, noPeerID          bool
	numWant                    int
	family                     int // 4 or 6: answer with peers of that IP version only (BEP 15); 0: both
}

// parseAnnounce reads an announce from a raw query. remote is the address the request came
// from; an "ip" parameter replaces it when it is a usable literal address.
//
// url.ParseQuery percent-decodes byte by byte, so binary info_hash and peer_id values come
// through intact; as in HTML forms (which BEP 3 follows) a raw '+' decodes to a space,
// and clients escape it as %2B.
func parseAnnounce(rawQuery string, remote netip.Addr, numWantDefault, numWantMax int) (announceRequest, error) {
	var req announceRequest
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return req, fmt.Errorf("query: %w", unwrapURL(err))
	}
	if req.infoHash, err = hash20(q, "info_hash"); err != nil {
		return req, err
	}
	if req.peerID, err = hash20(q, "peer_id"); err != nil {
		return req, err
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil || port == 0 {
		return req, fmt.Errorf("port: want 1-65535, got %q", q.Get("port"))
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{{"uploaded", &req.uploaded}, {"downloaded", &req.downloaded}, {"left", &req.left}} {
		v, err := strconv.ParseInt(q.Get(f.key), 10, 64)
		if err != nil || v < 0 {
			return req, fmt.Errorf("%s: want a non-negative integer, got %q", f.key, q.Get(f.key))
		}
		*f.dst = v
	}
	switch e := q.Get("event"); e {
	case "", "started", "completed", "stopped":
		req.event = e
	case "paused": // BEP 21: a partial seed pausing; to us a regular announce
	default:
		return req, fmt.Errorf("event: unknown event %q", e)
	}

	ip := remote
	if s := q.Get("ip"); s != "" {
		if a, err := netip.ParseAddr(s); err == nil && usable(a) {
			ip = a
		}
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return req, errors.New("ip: the request's source address is unknown; send ip=")
	}
	req.addr = netip.AddrPortFrom(ip, uint16(port))

	// BEP 23: "It is SUGGESTED that trackers return compact format by default."
	req.compact = q.Get("compact") != "0"
	req.noPeerID = q.Get("no_peer_id") != "" && q.Get("no_peer_id") != "0"
	req.numWant = numWantDefault
	if s := q.Get("numwant"); s != "" {
		// Some clients send -1 for "the tracker's default"; anything unreadable is read so.
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			req.numWant = n
		}
	}
	req.numWant = min(req.numWant, numWantMax)
	return req, nil
}

// usable reports whether other peers could dial a: not unspecified, multicast or broadcast,
// and not scoped to an interface of the announcing host.
func usable(a netip.Addr) bool {
	a = a.Unmap()
	return a.Zone() == "" && !a.IsUnspecified() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// hash20 reads a parameter that must be exactly 20 bytes once percent-decoded.
func hash20(q url.Values, key string) ([20]byte, error) {
	v, ok := q[key]
	if !ok {
		return [20]byte{}, fmt.Errorf("%s: missing", key)
	}
	if len(v[0]) != 20 {
		return [20]byte{}, fmt.Errorf("%s: want 20 bytes, got %d", key, len(v[0]))
	}
	return [20]byte([]byte(v[0])), nil
}

// unwrapURL drops the *url.Error-style prefix chain of a query parse error, which can
// quote a whole hostile query.
func unwrapURL(err error) error {
	var esc url.EscapeError
	if errors.As(err, &esc) {
		return errors.New("malformed percent-escape")
	}
	return err
}

// announceReply is what an announce answers before encoding.
type announceReply struct {
	complete, incomplete int
	peers                []*peer
}

// announce applies req at now and picks the peers to answer with. It must be called with
// s.mu held. A failure is a reason to send to the client.
func (s *Server) announce(req announceRequest, now time.Time) (announceReply, error) {
	sw := s.torrents[req.infoHash]
	if sw != nil {
		s.peers -= sw.expire(now.Add(-s.cfg.PeerTTL))
	}
	defer func() {
		if sw != nil && sw.len() == 0 {
			delete(s.torrents, req.infoHash)
		}
	}()

	if req.event == "stopped" {
		if sw == nil {
			return announceReply{}, nil
		}
		if p := sw.byID[req.peerID]; p != nil {
			sw.remove(p)
			s.peers--
		}
		return announceReply{complete: sw.seeders, incomplete: sw.leechers()}, nil
	}

	var p *peer
	if sw != nil {
		p = sw.byID[req.peerID]
		// A different peer ID at the same address is the same client restarted with a
		// new ID: replace the old registration rather than hand out its address twice.
		if q := sw.byAddr[req.addr]; q != nil && q != p {
			sw.remove(q)
			s.peers--
		}
	}
	if p == nil {
		// An empty swarm counts as a new torrent, and leaves the table while admit may
		// sweep it, which would otherwise delete it under our feet.
		empty := sw == nil || sw.len() == 0
		if sw != nil && empty {
			delete(s.torrents, req.infoHash)
		}
		var existing *swarm
		if !empty {
			existing = sw
		}
		if err := s.admit(existing, now); err != nil {
			return announceReply{}, err
		}
		if empty {
			if sw == nil {
				sw = newSwarm()
			}
			s.torrents[req.infoHash] = sw
		}
		p = &peer{id: req.peerID, addr: req.addr, last: now}
		sw.add(p)
		s.peers++
	} else if p.addr != req.addr {
		sw.setAddr(p, req.addr)
	}

	seeder := req.left == 0 || req.event == "completed"
	if req.event == "completed" && !p.seeder {
		sw.downloaded++
	}
	sw.setSeeder(p, seeder)
	sw.touch(p, now)

	return announceReply{
		complete:   sw.seeders,
		incomplete: sw.leechers(),
		// A seeder has no use for other seeders.
		peers: sw.sample(req.numWant, p, seeder, req.family),
	}, nil
}

// admit checks that a new peer fits in sw (nil for a new torrent) under the limits. When
// the tracker is full it sweeps first, at most once a second, so that a server whose
// Sweep is never called still makes room as peers go stale. sw must already be expired
// at now, so that the sweep leaves it alone.
func (s *Server) admit(sw *swarm, now time.Time) error {
	full := func() bool {
		return s.peers >= s.cfg.MaxPeers || sw == nil && len(s.torrents) >= s.cfg.MaxTorrents
	}
	if full() {
		if now.Sub(s.lastSweep) >= time.Second {
			s.sweep(now)
		}
	}
	switch {
	case s.peers >= s.cfg.MaxPeers:
		return fmt.Errorf("tracker: full, %d peers", s.cfg.MaxPeers)
	case sw == nil && len(s.torrents) >= s.cfg.MaxTorrents:
		return fmt.Errorf("tracker: full, %d torrents", s.cfg.MaxTorrents)
	case sw != nil && sw.len() >= s.cfg.MaxPeersPerTorrent:
		return fmt.Errorf("info_hash: torrent full, %d peers", s.cfg.MaxPeersPerTorrent)
	}
	return nil
}

// encodeAnnounce builds the bencoded reply: compact peers (BEP 23) with IPv6 ones in
// peers6 (BEP 7), or BEP 3's list of dictionaries holding both families.
func (s *Server) encodeAnnounce(req announceRequest, r announceReply) map[string]any {
	m := map[string]any{
		"interval":     seconds(s.cfg.Interval),
		"min interval": seconds(s.cfg.MinInterval),
		"complete":     r.complete,
		"incomplete":   r.incomplete,
	}
	if req.compact {
		var v4, v6 []byte
		for _, p := range r.peers {
			if a := p.addr.Addr(); a.Is4() {
				b := a.As4()
				v4 = append(append(v4, b[:]...), byte(p.addr.Port()>>8), byte(p.addr.Port()))
			} else {
				b := a.As16()
				v6 = append(append(v6, b[:]...), byte(p.addr.Port()>>8), byte(p.addr.Port()))
			}
		}
		m["peers"] = string(v4) // BEP 3 requires "peers", even empty
		if len(v6) > 0 {
			m["peers6"] = string(v6)
		}
		return m
	}
	list := make([]map[string]any, 0, len(r.peers))
	for _, p := range r.peers {
		d := map[string]any{"ip": p.addr.Addr().String(), "port": int(p.addr.Port())}
		if !req.noPeerID {
			d["peer id"] = string(p.id[:])
		}
		list = append(list, d)
	}
	m["peers"] = list
	return m
}

// seconds rounds d to whole seconds, at least 1, as intervals go on the wire.
func seconds(d time.Duration) int64 { return max(int64(d/time.Second), 1) }
