package tracker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// BEP 15's timers, the defaults of a UDPClient.
const (
	// DefaultUDPRetransmit is the first wait for a reply: BEP 15 retransmits "after
	// 15 * 2 ^ n seconds", n counting the retransmissions.
	DefaultUDPRetransmit = 15 * time.Second
	// DefaultUDPMaxRetransmits is the largest n: BEP 15 increases it "up to 8 (3840
	// seconds)", so a request goes out 9 times over 7665 seconds before giving up.
	DefaultUDPMaxRetransmits = 8
	// UDPConnIDLifetime is how long a connection ID is used. BEP 15: "A client can use a
	// connection ID until one minute after it has received it."
	UDPConnIDLifetime = time.Minute
)

// maxUDPWait bounds one wait, whatever Retransmit and MaxRetransmits say.
const maxUDPWait = 24 * time.Hour

// ErrNoReply marks a UDP request that went unanswered through every retransmission.
var ErrNoReply = errors.New("tracker: no reply")

// UDPClient announces to and scrapes UDP trackers (BEP 15). It sends the request string
// of the tracker's URL as URLData (BEP 41), so that a passkey in the path reaches the
// tracker. It caches each tracker's connection ID for UDPConnIDLifetime and connects
// again after that, or after the tracker answered with an error, which is what a tracker
// that restarted and forgot our ID says.
//
// Replies are checked against what was sent: a reply with another transaction ID is
// dropped (a late or spoofed packet), one with the wrong action or too short is an error
// wrapping ErrBadResponse, an error action a *FailureError. A packet the kernel reports
// as refused (ICMP port unreachable) ends the request at once.
//
// The zero UDPClient uses BEP 15's timers. Its methods are safe for concurrent use; it
// must not be copied after first use.
type UDPClient struct {
	// Retransmit is the first wait for a reply, doubled at each retransmission
	// (default DefaultUDPRetransmit). Tests shorten it.
	Retransmit time.Duration
	// MaxRetransmits is how often one request is sent again before it fails with
	// ErrNoReply (default DefaultUDPMaxRetransmits; negative: never).
	MaxRetransmits int
	// Dial opens the socket to a tracker; nil means a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Now is the clock that ages connection IDs (default time.Now).
	Now func() time.Time

	mu  sync.Mutex
	ids map[string]connID // by tracker address
}

// connID is a tracker's connection ID and when it arrived.
type connID struct {
	id  uint64
	got time.Time
}

// Announce sends req to the UDP tracker at rawURL (udp://host:port, with an optional
// path and query) and returns its reply. It returns promptly when ctx is done. Errors
// name the tracker's host but not its URL.
func (c *UDPClient) Announce(ctx context.Context, rawURL string, req Request) (*Response, error) {
	u, err := udpURL(rawURL)
	if err != nil {
		return nil, err
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	s, err := c.open(ctx, "announce", u.Host)
	if err != nil {
		return nil, err
	}
	defer s.close()
	urlData := u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		urlData += "?" + u.RawQuery
	}
	var tid uint32
	b, err := s.roundTrip(ctx, actionAnnounce, func(id uint64, t uint32) []byte {
		tid = t
		return announcePacket(id, t, req, urlData)
	})
	if err != nil {
		return nil, err
	}
	return parseUDPAnnounce(b, tid, s.ipv6)
}

// Scrape asks the UDP tracker at rawURL for the counts of up to MaxUDPScrape torrents
// and returns them in the order of infoHashes. BEP 15 has no scrape of every torrent, so
// it needs at least one.
func (c *UDPClient) Scrape(ctx context.Context, rawURL string, infoHashes [][20]byte) ([]ScrapeResult, error) {
	u, err := udpURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch n := len(infoHashes); {
	case n == 0:
		return nil, errors.New("tracker: udp scrape: no info hash")
	case n > MaxUDPScrape:
		return nil, fmt.Errorf("tracker: udp scrape: %d info hashes, at most %d at once", n, MaxUDPScrape)
	}
	s, err := c.open(ctx, "scrape", u.Host)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var tid uint32
	b, err := s.roundTrip(ctx, actionScrape, func(id uint64, t uint32) []byte {
		tid = t
		return scrapePacket(id, t, infoHashes)
	})
	if err != nil {
		return nil, err
	}
	return parseUDPScrape(b, tid, len(infoHashes))
}

// udpURL checks that raw is a udp URL with a host and a port.
func udpURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("tracker: announce url: %w", err)
	}
	if u.Scheme != "udp" {
		return nil, fmt.Errorf("tracker: announce url %q: scheme %q is not udp", raw, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("tracker: announce url %q: no host", raw)
	}
	if p, err := strconv.ParseUint(u.Port(), 10, 16); err != nil || p == 0 {
		return nil, fmt.Errorf("tracker: announce url %q: want a port 1-65535, got %q", raw, u.Port())
	}
	return u, nil
}

func (c *UDPClient) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// wait returns BEP 15's wait before the n-th retransmission, Retransmit * 2^n.
func (c *UDPClient) wait(n int) time.Duration {
	base := c.Retransmit
	if base <= 0 {
		base = DefaultUDPRetransmit
	}
	if n >= 62 || base > maxUDPWait>>n {
		return maxUDPWait
	}
	return base << n
}

func (c *UDPClient) maxRetransmits() int {
	switch {
	case c.MaxRetransmits < 0:
		return 0
	case c.MaxRetransmits == 0:
		return DefaultUDPMaxRetransmits
	}
	return c.MaxRetransmits
}

// cachedID returns the connection ID for the tracker at key while it is fresh.
func (c *UDPClient) cachedID(key string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.ids[key]
	if !ok {
		return 0, false
	}
	if age := c.now().Sub(e.got); age < 0 || age >= UDPConnIDLifetime {
		delete(c.ids, key)
		return 0, false
	}
	return e.id, true
}

// storeID caches id for the tracker at key, and drops stale entries so that the cache
// holds only trackers announced to in the last minute.
func (c *UDPClient) storeID(key string, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.ids == nil {
		c.ids = make(map[string]connID)
	}
	for k, e := range c.ids {
		if age := now.Sub(e.got); age < 0 || age >= UDPConnIDLifetime {
			delete(c.ids, k)
		}
	}
	c.ids[key] = connID{id: id, got: now}
}

// forgetID drops id for the tracker at key, unless another request replaced it already.
func (c *UDPClient) forgetID(key string, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.ids[key]; ok && e.id == id {
		delete(c.ids, key)
	}
}

// udpSession is one Announce or Scrape: a socket connected to the tracker and the
// goroutine that reads its replies.
type udpSession struct {
	c    *UDPClient
	op   string // "announce" or "scrape", for errors
	host string // the URL's host, for errors: never the URL, which may hold a passkey
	key  string // the tracker's address, which keys the connection ID cache
	ipv6 bool   // reached over IPv6: peers are 18 bytes (BEP 15)
	conn net.Conn

	replies chan []byte
	readErr chan error
	stop    chan struct{}
	wg      sync.WaitGroup

	n     int   // retransmissions of the current request: BEP 15's n
	stray error // the last reply to another transaction, to explain a timeout
}

func (c *UDPClient) open(ctx context.Context, op, host string) (*udpSession, error) {
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "udp", host)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return nil, fmt.Errorf("tracker: %s to %s: %w", op, host, err)
	}
	s := &udpSession{c: c, op: op, host: host, conn: conn, key: conn.RemoteAddr().String(),
		replies: make(chan []byte), readErr: make(chan error, 1), stop: make(chan struct{})}
	if ap, err := netip.ParseAddrPort(s.key); err == nil {
		s.ipv6 = udpIPv6(ap)
	}
	s.wg.Add(1)
	go s.read()
	return s, nil
}

// read hands every packet from the tracker to the session until the socket closes.
func (s *udpSession) read() {
	defer s.wg.Done()
	buf := make([]byte, maxUDPPacket)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			s.readErr <- err
			return
		}
		select {
		case s.replies <- append([]byte(nil), buf[:n]...):
		case <-s.stop:
			return
		}
	}
}

func (s *udpSession) close() {
	close(s.stop)
	s.conn.Close()
	s.wg.Wait()
}

// errRetransmit says that a wait ran out and the request is due again.
var errRetransmit = errors.New("retransmit")

// roundTrip sends the request that build makes for a connection ID and transaction ID,
// connecting first when no fresh ID is cached, and returns the reply to it whole.
// Retransmissions keep the transaction ID, so that a late reply to an earlier copy still
// counts, unless the connection ID expired meanwhile and a new one was fetched.
func (s *udpSession) roundTrip(ctx context.Context, action uint32, build func(id uint64, tid uint32) []byte) ([]byte, error) {
	var (
		pkt    []byte
		tid    uint32
		sentID uint64
	)
	s.n = 0
	for {
		id, err := s.connect(ctx)
		if err != nil {
			return nil, err
		}
		if pkt == nil || id != sentID {
			tid = rand.Uint32()
			pkt, sentID = build(id, tid), id
		}
		b, err := s.send(ctx, pkt, action, tid)
		if err == errRetransmit {
			continue
		}
		var fe *FailureError
		if errors.As(err, &fe) {
			// The tracker may have forgotten the ID (a restart): fetch a new one next time.
			s.c.forgetID(s.key, id)
		}
		return b, err
	}
}

// connect returns the cached connection ID, or fetches one (BEP 15's connect).
func (s *udpSession) connect(ctx context.Context) (uint64, error) {
	if id, ok := s.c.cachedID(s.key); ok {
		return id, nil
	}
	n := s.n
	s.n = 0
	defer func() { s.n = n }()
	tid := rand.Uint32()
	pkt := connectPacket(tid)
	for {
		b, err := s.send(ctx, pkt, actionConnect, tid)
		if err == errRetransmit {
			continue
		}
		if err != nil {
			return 0, err
		}
		id, err := parseUDPConnect(b, tid)
		if err != nil {
			return 0, err
		}
		s.c.storeID(s.key, id)
		return id, nil
	}
}

// send writes pkt and waits for the reply to transaction tid for Retransmit * 2^n. It
// returns the reply, errRetransmit when the wait ran out and a retransmission is due
// (n counted), or an error: ErrNoReply after the last retransmission, the context's,
// the socket's, or the reply's own (see udpReply).
func (s *udpSession) send(ctx context.Context, pkt []byte, action, tid uint32) ([]byte, error) {
	if _, err := s.conn.Write(pkt); err != nil {
		return nil, s.errorf(err)
	}
	timer := time.NewTimer(s.c.wait(s.n))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, s.errorf(ctx.Err())
		case err := <-s.readErr:
			s.readErr <- err // for a later send in this session
			return nil, s.errorf(err)
		case b := <-s.replies:
			if _, err := udpReply(b, action, tid); errors.Is(err, errOtherTransaction) {
				s.stray = err
				continue
			} else if err != nil {
				return nil, err
			}
			return b, nil
		case <-timer.C:
			if s.n >= s.c.maxRetransmits() {
				return nil, s.noReply(action)
			}
			s.n++
			return nil, errRetransmit
		}
	}
}

func (s *udpSession) errorf(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	if s.stray != nil {
		return fmt.Errorf("tracker: %s to %s: %w (ignored a packet: %v)", s.op, s.host, err, s.stray)
	}
	return fmt.Errorf("tracker: %s to %s: %w", s.op, s.host, err)
}

func (s *udpSession) noReply(action uint32) error {
	err := fmt.Errorf("%w from %s to udp %s after %d sends", ErrNoReply, s.host, actionName(action), s.n+1)
	if s.stray != nil {
		err = fmt.Errorf("%w (ignored a packet: %v)", err, s.stray)
	}
	return err
}
