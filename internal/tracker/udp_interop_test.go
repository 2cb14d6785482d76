package tracker_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/tracker"
)

// startOpentrackerUDP runs opentracker on 127.0.0.1 serving HTTP and UDP on one port,
// with a whitelist holding ih (Debian's build serves only whitelisted torrents), and
// returns that port and the process. swarmtest.StartTracker binds TCP only (no -P), so this starts it
// the same way with -P added.
func startOpentrackerUDP(t *testing.T, ctx context.Context, ih [20]byte) (int, *swarmtest.Process) {
	t.Helper()
	swarmtest.Require(t, swarmtest.Opentracker)
	dir := t.TempDir()
	// opentracker chroots into root and drops to nobody, who must read the whitelist.
	root, err := os.MkdirTemp(dir, "opentracker-")
	if err == nil {
		err = os.Chmod(root, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(root, "whitelist"), []byte(hex.EncodeToString(ih[:])+"\n"), 0o644)
	}
	if err == nil {
		err = os.Chmod(filepath.Join(root, "whitelist"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	// A port free for TCP may be taken for UDP: then opentracker exits, and we retry.
	for attempt := 1; ; attempt++ {
		port, err := swarmtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		p := strconv.Itoa(port)
		proc, err := swarmtest.Start(ctx, exec.Command("opentracker", "-i", "127.0.0.1", "-p", p, "-P", p,
			"-d", root, "-w", "whitelist"), filepath.Join(dir, fmt.Sprintf("opentracker-%d.log", port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proc.Stop)
		select {
		case <-proc.Done():
			if attempt == 5 {
				t.Fatalf("opentracker exited 5 times:\n%s", proc.Tail(10))
			}
			continue
		case <-time.After(100 * time.Millisecond): // it exits at once when it cannot bind
		}
		return port, proc
	}
}

// TestOpentrackerUDP announces over udp:// to a real opentracker, which answers BEP 15 on
// the port of its HTTP: one peer sees the other, a scrape counts them, and stopped
// removes one. Our announces carry URLData (BEP 41), which opentracker must tolerate.
func TestOpentrackerUDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var ih [20]byte
	copy(ih[:], "bitstorm udp interop")
	port, proc := startOpentrackerUDP(t, ctx, ih)
	announceURL := fmt.Sprintf("udp://127.0.0.1:%d/announce", port)
	c := &tracker.UDPClient{Retransmit: 50 * time.Millisecond, MaxRetransmits: 6}
	req := func(id byte, port uint16, left int64, ev tracker.Event) tracker.Request {
		return tracker.Request{InfoHash: ih, PeerID: [20]byte{'-', 'B', 'S', id}, Port: port, Left: left, Event: ev}
	}

	// The seeder's announce doubles as the readiness probe: until opentracker has bound
	// the port the kernel refuses, and until it has read the whitelist it says "not
	// authorized".
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Announce(ctx, announceURL, req('s', 7001, 0, tracker.EventStarted))
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			t.Fatalf("opentracker did not answer over UDP within 10s: %v\n%s", err, proc.Tail(10))
		}
		select {
		case <-proc.Done():
			t.Fatalf("opentracker exited: %v\n%s", err, proc.Tail(10))
		case <-time.After(20 * time.Millisecond):
		}
	}
	r, err := c.Announce(ctx, announceURL, req('l', 7002, 100, tracker.EventStarted))
	if err != nil {
		t.Fatal(err)
	}
	if want := netipPort(7001); !slices.Contains(r.Peers, want) || r.Complete != 1 || r.Incomplete != 1 {
		t.Errorf("leecher's announce = %+v, want %v among the peers, 1 seeder and 1 leecher", r, want)
	}

	other := [20]byte{1}
	s, err := c.Scrape(ctx, announceURL, [][20]byte{ih, other})
	if err != nil {
		t.Fatal(err)
	}
	if s[0].Seeders != 1 || s[0].Leechers != 1 || s[1] != (tracker.ScrapeResult{}) {
		t.Errorf("Scrape = %+v, want 1 seeder and 1 leecher, then zeros", s)
	}

	if _, err := c.Announce(ctx, announceURL, req('s', 7001, 0, tracker.EventStopped)); err != nil {
		t.Fatal(err)
	}
	if s, err = c.Scrape(ctx, announceURL, [][20]byte{ih}); err != nil || s[0].Seeders != 0 || s[0].Leechers != 1 {
		t.Errorf("Scrape after the seeder stopped = %+v, %v, want 0 seeders and 1 leecher", s, err)
	}
}

func netipPort(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
}
