package tracker

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Client announces to a tracker whatever protocol its URL names: http and https through
// HTTP (BEP 3), udp through UDP (BEP 15), so that callers need not care. The zero Client
// is ready to use.
type Client struct {
	HTTP *http.Client // nil means http.DefaultClient
	UDP  *UDPClient   // nil means DefaultUDPClient
}

// DefaultUDPClient is the UDPClient of a Client that names none: BEP 15's timers, and
// one connection ID cache for all such Clients.
var DefaultUDPClient = &UDPClient{}

// Announce sends req to the tracker at rawURL and returns its reply; see the package
// function Announce for HTTP and UDPClient.Announce for UDP. Any other scheme is an error
// naming it.
func (c *Client) Announce(ctx context.Context, rawURL string, req Request) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("tracker: announce url: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		return Announce(ctx, c.HTTP, rawURL, req)
	case "udp":
		udp := c.UDP
		if udp == nil {
			udp = DefaultUDPClient
		}
		return udp.Announce(ctx, rawURL, req)
	}
	return nil, fmt.Errorf("tracker: announce url %q: unsupported scheme %q (want http, https or udp)", rawURL, u.Scheme)
}
