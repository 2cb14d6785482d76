// Package trackerd is a BitTorrent tracker for local swarms and tests: announce (BEP 3)
// with compact IPv4 peers (BEP 23) and IPv6 peers in "peers6" (BEP 7), and scrape
// (BEP 48), over HTTP and over UDP (BEP 15). A Server is an http.Handler serving
// /announce and /scrape; ServeUDP answers UDP requests from the same swarms. It keeps
// them in memory under one mutex, and never logs: wrap it to log requests.
//
// Where the BEPs leave the choice to the tracker, a Server:
//   - answers bad parameters, info hashes not on the allow-list and a full tracker with
//     HTTP 200 and a bencoded {"failure reason": "<param>: <what is wrong>"}, as BEP 3
//     trackers do; unknown paths get 404 and methods other than GET and HEAD 405;
//   - requires info_hash and peer_id of exactly 20 bytes, port 1-65535, and uploaded,
//     downloaded and left as integers >= 0; event may be empty, started, completed,
//     stopped, or BEP 21's paused (a regular announce);
//   - identifies a peer by (info_hash, peer_id) and reaches it at the request's source IP
//     and port=, unless ip= holds a literal address that others could dial (not
//     unspecified, multicast, broadcast or zoned): anyone may register any address, which
//     suits a tracker for local swarms. IPv4-mapped IPv6 addresses count as IPv4. BEP 7's
//     ipv4= and ipv6= are ignored;
//   - replaces the registration of another peer ID at the same address and port (the same
//     client restarted), and never answers a peer with itself;
//   - counts a peer as a seeder when its latest announce has left=0 or event=completed, so
//     a seeder announcing left>0 again is a leecher again; "downloaded" in a scrape counts
//     completed events from peers not already seeding;
//   - answers compact unless compact=0 (BEP 23 suggests compact by default); a compact
//     reply always has "peers", and "peers6" when it has IPv6 peers; a compact=0 reply
//     lists both families in "peers", with "peer id" unless no_peer_id is set;
//   - picks up to numwant peers uniformly at random (default NumWantDefault, capped at
//     NumWantMax; a negative or unreadable numwant means the default, 0 means none),
//     leechers and seeders for a leecher, only leechers for a seeder (it has no use for
//     other seeders), and none for stopped;
//   - drops a peer that has not announced for PeerTTL, lazily when its torrent is announced
//     or scraped, and everywhere on Sweep; a torrent, its downloaded count included, goes
//     with its last peer;
//   - refuses a new peer with a failure reason when its torrent has MaxPeersPerTorrent
//     peers, the tracker MaxPeers, or, for a new torrent, the tracker MaxTorrents torrents,
//     after sweeping at most once a second to make room;
//   - answers a scrape for named info hashes with zero counts for unknown ones and leaves
//     out those not allowed; a scrape naming none lists up to MaxScrape torrents, chosen
//     arbitrarily, and one naming more than MaxScrape fails.
//
// Over UDP (BEP 15), a Server:
//   - gives connection IDs that are an HMAC of the client's IP address and the second
//     they were issued, under a secret drawn in New: unguessable, bound to that address
//     (any port), good for UDPConnIDLifetime, and checked without keeping state;
//   - answers a request with an unknown or expired connection ID with an error action,
//     looking at nothing else in it, and drops packets shorter than a request header
//     and connects without BEP 15's protocol_id;
//   - answers what HTTP would refuse with an error action holding the same reason, and
//     an announce with only peers of the family it came in by (IPv4 peers, 6 bytes
//     each, or IPv6 peers, 18 bytes each), taking its IP address field like ip=;
//   - ignores what follows the 98 bytes of an announce (BEP 41 options), and answers a
//     scrape, which must name 1 to MaxScrape info hashes, with zeros for unknown
//     torrents and for those not allowed, since its answer is positional.
package trackerd

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/jackpal/bencode-go"
)

// MaxScrape bounds the torrents one scrape answers for.
const MaxScrape = 1000

// Config sets a Server's intervals and limits. Zero (or negative) fields take the
// defaults given, which New fills in.
type Config struct {
	Interval           time.Duration // "interval" sent to clients (default 30m)
	MinInterval        time.Duration // "min interval" sent to clients (default, and if above Interval, Interval/2)
	PeerTTL            time.Duration // a peer not re-announcing within this is dropped (default 2*Interval+1m)
	MaxPeersPerTorrent int           // default 10000
	MaxTorrents        int           // default 100000
	MaxPeers           int           // peers in all torrents together (default 1000000)
	NumWantDefault     int           // peers sent when numwant is absent (default 50)
	NumWantMax         int           // most peers sent (default 200)
	// AllowedInfoHashes, when not nil, lists the only torrents served; nil is an open
	// tracker. New copies it.
	AllowedInfoHashes map[[20]byte]bool
	Now               func() time.Time // the clock, for tests (default time.Now)
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 30 * time.Minute
	}
	if c.MinInterval <= 0 || c.MinInterval > c.Interval {
		c.MinInterval = c.Interval / 2
	}
	if c.PeerTTL <= 0 {
		c.PeerTTL = 2*c.Interval + time.Minute
	}
	setDefault := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDefault(&c.MaxPeersPerTorrent, 10000)
	setDefault(&c.MaxTorrents, 100000)
	setDefault(&c.MaxPeers, 1000000)
	setDefault(&c.NumWantMax, 200)
	setDefault(&c.NumWantDefault, 50)
	c.NumWantDefault = min(c.NumWantDefault, c.NumWantMax)
	if c.AllowedInfoHashes != nil {
		allowed := make(map[[20]byte]bool, len(c.AllowedInfoHashes))
		for h, ok := range c.AllowedInfoHashes {
			if ok {
				allowed[h] = true
			}
		}
		c.AllowedInfoHashes = allowed
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Server is an in-memory HTTP and UDP tracker; see the package doc for its behaviour. Its
// methods are safe for concurrent use.
type Server struct {
	cfg    Config
	secret [32]byte // keys UDP connection IDs (BEP 15)

	mu        sync.Mutex
	torrents  map[[20]byte]*swarm
	peers     int       // in all torrents
	lastSweep time.Time // by cfg.Now
}

// New returns a Server with cfg's defaults filled in.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg.withDefaults(), torrents: make(map[[20]byte]*swarm)}
	rand.Read(s.secret[:])
	return s
}

// Stats returns how many torrents and peers the Server holds, stale ones included until
// they are swept.
func (s *Server) Stats() (torrents, peers int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.torrents), s.peers
}

// Sweep drops every peer that has not announced within PeerTTL, and the torrents left
// without peers. It costs O(torrents + dropped peers); call it every minute or so.
func (s *Server) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.cfg.Now())
}

func (s *Server) sweep(now time.Time) {
	cutoff := now.Add(-s.cfg.PeerTTL)
	for h, sw := range s.torrents {
		s.peers -= sw.expire(cutoff)
		if sw.len() == 0 {
			delete(s.torrents, h)
		}
	}
	s.lastSweep = now
}

// ServeHTTP answers GET /announce (BEP 3) and GET /scrape (BEP 48).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var serve func(*http.Request) (any, error)
	switch r.URL.Path {
	case "/announce":
		serve = s.serveAnnounce
	case "/scrape":
		serve = s.serveScrape
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "trackerd: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	reply, err := serve(r)
	if err != nil {
		// BEP 3: "If a tracker response has a key failure reason, then that maps to a
		// human readable string which explains why the query failed".
		reply = map[string]any{"failure reason": err.Error()}
	}
	var buf bytes.Buffer
	if err := bencode.Marshal(&buf, reply); err != nil {
		http.Error(w, "trackerd: encode reply: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.Write(buf.Bytes())
}

func (s *Server) serveAnnounce(r *http.Request) (any, error) {
	var remote netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr()
	}
	req, err := parseAnnounce(r.URL.RawQuery, remote, s.cfg.NumWantDefault, s.cfg.NumWantMax)
	if err != nil {
		return nil, err
	}
	if !s.allowed(req.infoHash) {
		return nil, errors.New("info_hash: not allowed on this tracker")
	}
	s.mu.Lock()
	reply, err := s.announce(req, s.cfg.Now())
	var m map[string]any
	if err == nil {
		m = s.encodeAnnounce(req, reply) // reads peers, so under the lock
	}
	s.mu.Unlock()
	return m, err
}

func (s *Server) allowed(h [20]byte) bool {
	return s.cfg.AllowedInfoHashes == nil || s.cfg.AllowedInfoHashes[h]
}

// scrapeFile is one torrent's entry in a scrape reply (BEP 48).
type scrapeFile struct {
	Complete   int `bencode:"complete"`   // seeders
	Downloaded int `bencode:"downloaded"` // completed events
	Incomplete int `bencode:"incomplete"` // leechers
}

func (s *Server) serveScrape(r *http.Request) (any, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("query: %w", unwrapURL(err))
	}
	hashes := q["info_hash"]
	if len(hashes) > MaxScrape {
		return nil, fmt.Errorf("info_hash: at most %d per scrape, got %d", MaxScrape, len(hashes))
	}
	for _, h := range hashes {
		if len(h) != 20 {
			return nil, fmt.Errorf("info_hash: want 20 bytes, got %d", len(h))
		}
	}

	files := make(map[string]scrapeFile)
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.cfg.Now().Add(-s.cfg.PeerTTL)
	if len(hashes) == 0 {
		for h, sw := range s.torrents {
			if len(files) == MaxScrape {
				break
			}
			if f, ok := s.stats(h, sw, cutoff); ok {
				files[string(h[:])] = f
			}
		}
	}
	for _, hs := range hashes {
		h := [20]byte([]byte(hs))
		if !s.allowed(h) {
			continue
		}
		var f scrapeFile
		if sw := s.torrents[h]; sw != nil {
			f, _ = s.stats(h, sw, cutoff)
		}
		files[hs] = f
	}
	return map[string]any{"files": files}, nil
}

// stats drops the peers of sw, the swarm of h, that last announced before cutoff and
// returns its counts; a swarm left empty goes, and reads as zeros with ok false. It must
// be called with s.mu held.
func (s *Server) stats(h [20]byte, sw *swarm, cutoff time.Time) (f scrapeFile, ok bool) {
	s.peers -= sw.expire(cutoff)
	if sw.len() == 0 {
		delete(s.torrents, h)
		return scrapeFile{}, false
	}
	return scrapeFile{Complete: sw.seeders, Downloaded: sw.downloaded, Incomplete: sw.leechers()}, true
}
