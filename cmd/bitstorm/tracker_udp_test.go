package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/tracker"
)

// TestTrackerCommandUDP runs `bitstorm tracker` and checks that it says it serves UDP
// on the port of its HTTP, that both reach the same swarm, and that Ctrl-C frees the
// UDP port too.
func TestTrackerCommandUDP(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	app := &cli.App{Name: "bitstorm", Commands: []*cli.Command{trackerCommand()}, Writer: pw, ErrWriter: t.Output()}
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"bitstorm", "tracker", "--listen", "127.0.0.1:0"})
		pw.Close()
	}()
	lines := make(chan []string, 1)
	rest := make(chan []string, 1) // what stdout has after the two lines, until it closes
	go func() {
		var got []string
		sc := bufio.NewScanner(pr)
		for len(got) < 2 && sc.Scan() {
			got = append(got, sc.Text())
		}
		lines <- got
		var more []string
		for sc.Scan() {
			more = append(more, sc.Text())
		}
		rest <- more
		io.Copy(io.Discard, pr)
	}()
	var got []string
	select {
	case got = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatal("tracker printed no two lines within 10s")
	}
	if len(got) != 2 {
		t.Fatalf("tracker printed %q and exited: %v", got, <-done)
	}
	httpURL := strings.TrimPrefix(got[0], "tracker listening on ")
	udpURL := strings.TrimPrefix(got[1], "tracker listening on ")
	hu, err1 := url.Parse(httpURL)
	uu, err2 := url.Parse(udpURL)
	if err1 != nil || err2 != nil || hu.Scheme != "http" || uu.Scheme != "udp" || hu.Host != uu.Host || uu.Path != "/announce" {
		t.Fatalf("tracker printed %q, want the http and then the udp announce URL on one port", got)
	}

	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	c := &tracker.Client{HTTP: &http.Client{Timeout: 5 * time.Second},
		UDP: &tracker.UDPClient{Retransmit: 5 * time.Millisecond, MaxRetransmits: 12}}
	var ih [20]byte
	copy(ih[:], "bitstorm tracker udp")
	req := func(id byte, port uint16) tracker.Request {
		return tracker.Request{InfoHash: ih, PeerID: [20]byte{id}, Port: port, Left: 1, Event: tracker.EventStarted}
	}
	if _, err := c.Announce(actx, httpURL, req(1, 7001)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Announce(actx, udpURL, req(2, 7002))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7001")}; !slices.Equal(r.Peers, want) {
		t.Errorf("UDP announce got peers %v, want the HTTP peer %v", r.Peers, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tracker returned %v after Ctrl-C, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tracker still running 5s after Ctrl-C")
	}
	if more := <-rest; len(more) > 0 { // the pipe closed as the tracker returned
		t.Errorf("stdout has %q after the two URL lines, want nothing: scripts read it", more)
	}
	pc, err := net.ListenPacket("udp", uu.Host)
	if err != nil {
		t.Errorf("UDP port %s still taken after the tracker stopped: %v", uu.Host, err)
	} else {
		pc.Close()
	}
}
