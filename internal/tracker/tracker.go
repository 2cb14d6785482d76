// Package tracker announces to HTTP trackers (BEP 3) and reads their replies: compact
// IPv4 peers (BEP 23), the original list of peer dictionaries, and compact IPv6 peers in
// "peers6" (BEP 7). UDPClient speaks the UDP tracker protocol (BEP 15) with URLData
// (BEP 41), and Client picks the protocol by the URL's scheme.
//
// Replies are untrusted: the body is read up to MaxResponseSize whatever Content-Length
// says, it is validated by internal/bencode before decoding, at most MaxPeers peers are
// kept, and peers that are not a literal address with a usable port are skipped.
// Intervals are clamped into [MinAnnounceInterval, MaxAnnounceInterval] so that a tracker
// can neither make us hammer it nor silence us for years.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is the "event" parameter of an announce (BEP 3).
type Event string

// The events of BEP 3. EventNone is a regular announce and is not sent.
const (
	EventNone      Event = ""
	EventStarted   Event = "started"
	EventCompleted Event = "completed"
	EventStopped   Event = "stopped"
)

// MaxResponseSize is the largest reply body read; a larger one is an error.
const MaxResponseSize = 4 << 20

// MaxPeers bounds the peers kept from one reply (peers and peers6 together); the rest
// are ignored.
const MaxPeers = 20000

// MinAnnounceInterval and MaxAnnounceInterval bound Response.Interval and, when it is
// set, Response.MinInterval: a tracker asking for less is announced to every minute, and
// one asking for more (or for a negative or absurd interval) once a day.
const (
	MinAnnounceInterval = time.Minute
	MaxAnnounceInterval = 24 * time.Hour
)

// Request is one announce (BEP 3).
type Request struct {
	InfoHash, PeerID           [20]byte
	Port                       uint16
	Uploaded, Downloaded, Left int64 // bytes; none may be negative
	Event                      Event
	NumWant                    int    // peers wanted; 0 leaves it to the tracker
	Key                        string // optional; lets the tracker recognise us across IP changes
	TrackerID                  string // optional; Response.TrackerID from an earlier reply (BEP 3)
}

// Response is a tracker's successful reply.
type Response struct {
	Interval    time.Duration // when to announce next; clamped, see MinAnnounceInterval
	MinInterval time.Duration // 0 if the tracker gave none; clamped like Interval
	Peers       []netip.AddrPort
	Warning     string // "warning message": the announce worked, but the tracker has a complaint
	Complete    int    // seeders, if the tracker says
	Incomplete  int    // leechers, if the tracker says
	TrackerID   string // to send back as Request.TrackerID
}

// FailureError is a tracker's refusal: the reply's "failure reason" (BEP 3).
type FailureError struct {
	Reason string
}

// Error returns `tracker: failure reason: <reason>`.
func (e *FailureError) Error() string { return "tracker: failure reason: " + e.Reason }

// StatusError is an HTTP reply whose status is not 200 OK.
type StatusError struct {
	StatusCode int
	Body       string // the first bytes of the body, at most maxStatusBody
}

// maxStatusBody bounds how much of a failed reply's body a StatusError carries.
const maxStatusBody = 200

// Error returns `tracker: http status <code> <text>: "<body>"`.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("tracker: http status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		s += fmt.Sprintf(": %q", e.Body)
	}
	return s
}

// ErrBadResponse marks a reply that is not a valid announce reply; the error wrapping it
// says what is wrong.
var ErrBadResponse = errors.New("tracker: bad response")

// AnnounceURL returns the announce URL for req: base, an http or https URL that may
// carry a query of its own (a passkey, say), with the BEP 3 parameters appended.
// info_hash and peer_id are percent-encoded byte by byte, compact=1 asks for BEP 23
// peers, and event, numwant, key and trackerid appear only when set.
func AnnounceURL(base string, req Request) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("tracker: announce url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("tracker: announce url %q: scheme %q is not http or https", base, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("tracker: announce url %q: no host", base)
	}
	if err := req.validate(); err != nil {
		return "", err
	}

	var q strings.Builder
	if u.RawQuery != "" {
		q.WriteString(u.RawQuery)
		q.WriteByte('&')
	}
	q.WriteString("info_hash=")
	q.WriteString(escape(req.InfoHash[:]))
	q.WriteString("&peer_id=")
	q.WriteString(escape(req.PeerID[:]))
	fmt.Fprintf(&q, "&port=%d&uploaded=%d&downloaded=%d&left=%d&compact=1",
		req.Port, req.Uploaded, req.Downloaded, req.Left)
	if req.Event != EventNone {
		q.WriteString("&event=" + string(req.Event))
	}
	if req.NumWant > 0 {
		q.WriteString("&numwant=" + strconv.Itoa(req.NumWant))
	}
	if req.Key != "" {
		q.WriteString("&key=" + escape([]byte(req.Key)))
	}
	if req.TrackerID != "" {
		q.WriteString("&trackerid=" + escape([]byte(req.TrackerID)))
	}
	u.RawQuery = q.String()
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// validate checks what both protocols send: counts that are not negative and a known
// event.
func (req Request) validate() error {
	switch {
	case req.Uploaded < 0:
		return fmt.Errorf("tracker: request.uploaded: %d is negative", req.Uploaded)
	case req.Downloaded < 0:
		return fmt.Errorf("tracker: request.downloaded: %d is negative", req.Downloaded)
	case req.Left < 0:
		return fmt.Errorf("tracker: request.left: %d is negative", req.Left)
	case req.NumWant < 0:
		return fmt.Errorf("tracker: request.numwant: %d is negative", req.NumWant)
	}
	switch req.Event {
	case EventNone, EventStarted, EventCompleted, EventStopped:
	default:
		return fmt.Errorf("tracker: request.event: unknown event %q", req.Event)
	}
	return nil
}

// escape percent-encodes every byte of b but the RFC 3986 unreserved characters. Unlike
// url.QueryEscape it never writes '+', which some trackers do not decode as a space.
func escape(b []byte) string {
	const hex = "0123456789ABCDEF"
	var s strings.Builder
	s.Grow(3 * len(b))
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			s.WriteByte(c)
			continue
		}
		s.WriteByte('%')
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

// Announce sends req to the tracker at base with an HTTP GET through c (nil means
// http.DefaultClient) and parses the reply. It returns promptly when ctx is done.
// A refusal is a *FailureError, a status other than 200 a *StatusError, a malformed
// reply an error wrapping ErrBadResponse. Transport errors name the tracker's host but
// not its URL, which may hold a passkey.
func Announce(ctx context.Context, c *http.Client, base string, req Request) (*Response, error) {
	target, err := AnnounceURL(base, req)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = http.DefaultClient
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	resp, err := c.Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("tracker: announce to %s: %w", hreq.URL.Host, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
		return nil, &StatusError{StatusCode: resp.StatusCode, Body: string(body)}
	}
	// Read one byte past the limit to tell "exactly MaxResponseSize" from "more".
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("tracker: announce to %s: read reply: %w", hreq.URL.Host, err)
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadResponse, MaxResponseSize)
	}
	return ParseResponse(body)
}
