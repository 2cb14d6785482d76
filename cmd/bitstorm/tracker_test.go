package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/tracker"
)

// runTrackerApp runs `bitstorm tracker args...` in a throwaway app and returns the
// announce URL it printed and a channel that yields what the command returned.
func runTrackerApp(t *testing.T, ctx context.Context, args ...string) (string, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	app := &cli.App{
		Name:      "bitstorm",
		Commands:  []*cli.Command{trackerCommand()},
		Writer:    pw,
		ErrWriter: t.Output(),
	}
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, append([]string{"bitstorm", "tracker"}, args...))
		pw.Close()
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, pr) // whatever else it prints must not block it
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("tracker printed nothing and exited: %v", <-done)
		}
		if !regexp.MustCompile(`^tracker listening on http://127\.0\.0\.1:[1-9][0-9]*/announce$`).MatchString(line) {
			t.Fatalf("tracker printed %q", line)
		}
		return strings.TrimPrefix(line, "tracker listening on "), done
	case <-time.After(10 * time.Second):
		t.Fatal("tracker printed no listening line within 10s")
	}
	panic("unreachable")
}

func TestTrackerCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var ih, other [20]byte
	copy(ih[:], "bitstorm tracker ok!")
	copy(other[:], "bitstorm not allowed")
	announceURL, done := runTrackerApp(t, ctx,
		"--listen", "127.0.0.1:0", "--interval", "90s", "--allow", hex.EncodeToString(ih[:]), "--verbose")

	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	c := &http.Client{Timeout: 5 * time.Second}
	req := func(id byte, port uint16) tracker.Request {
		var pid [20]byte
		pid[0] = id
		return tracker.Request{InfoHash: ih, PeerID: pid, Port: port, Left: 1, Event: tracker.EventStarted}
	}
	if _, err := tracker.Announce(actx, c, announceURL, req(1, 7001)); err != nil {
		t.Fatal(err)
	}
	r, err := tracker.Announce(actx, c, announceURL, req(2, 7002))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7001")}; !slices.Equal(r.Peers, want) || r.Interval != 90*time.Second {
		t.Errorf("reply = %+v, want peers %v and interval 90s", r, want)
	}
	bad := req(3, 7003)
	bad.InfoHash = other
	var fe *tracker.FailureError
	if _, err := tracker.Announce(actx, c, announceURL, bad); !errors.As(err, &fe) {
		t.Errorf("announce of a torrent not allowed: %v, want a *tracker.FailureError", err)
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
	u, _ := url.Parse(announceURL)
	if conn, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after the tracker stopped", u.Host)
	}
}

func TestTrackerCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"short allow", []string{"--allow", "abcd"}, `tracker: --allow "abcd": want an info hash of 40 hex digits`},
		{"allow not hex", []string{"--allow", strings.Repeat("zz", 20)}, "want an info hash of 40 hex digits"},
		{"interval", []string{"--interval", "500ms"}, "tracker: --interval 500ms: must be at least 1s"},
		{"arguments", []string{"extra"}, `tracker: unexpected arguments ["extra"]`},
		{"bad listen", []string{"--listen", "127.0.0.1:http-nope"}, "tracker: listen tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			app := &cli.App{Name: "bitstorm", Commands: []*cli.Command{trackerCommand()}, Writer: io.Discard, ErrWriter: io.Discard}
			err := app.RunContext(ctx, append([]string{"bitstorm", "tracker", "--listen", "127.0.0.1:0"}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("tracker %q = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
