package swarmtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// Tracker is an opentracker serving HTTP and UDP (BEP 15) on one port of
// 127.0.0.1. Debian's build only serves whitelisted info hashes; Allow adds to
// the list.
type Tracker struct {
	// AnnounceURL is http://127.0.0.1:PORT/announce.
	AnnounceURL string
	// UDPAnnounceURL is udp://127.0.0.1:PORT/announce, the same tracker over BEP 15.
	UDPAnnounceURL string
	// Port is the port it listens on, for TCP and UDP alike.
	Port int

	proc      *Process
	whitelist string // path outside the chroot
	client    *http.Client

	mu      sync.Mutex
	allowed []string
}

// StartTracker runs opentracker on 127.0.0.1 at a free port (HTTP and UDP on
// the same number), chrooted into a new world-readable directory under dir (it
// drops to nobody when run as root), with a whitelist holding infoHashes
// (hex). Its log goes to dir. More info hashes can be allowed later with
// Allow, so a torrent can be made once the announce URL is known.
func StartTracker(ctx context.Context, dir string, infoHashes ...string) (*Tracker, error) {
	for _, h := range infoHashes {
		if _, err := parseInfoHash(h); err != nil {
			return nil, err
		}
	}
	root, err := os.MkdirTemp(dir, "opentracker-")
	if err == nil {
		root, err = filepath.Abs(root)
	}
	if err != nil {
		return nil, fmt.Errorf("swarmtest: tracker: %w", err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, fmt.Errorf("swarmtest: tracker: %w", err)
	}
	t := &Tracker{
		whitelist: filepath.Join(root, "whitelist"),
		client:    &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second},
		allowed:   lowerAll(infoHashes),
	}
	if err := t.writeWhitelist(); err != nil {
		return nil, err
	}
	// The port may be taken between FreePort and opentracker's bind: retry.
	for attempt := 0; ; attempt++ {
		err = t.start(ctx, dir, root)
		if err == nil || attempt == 4 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if err := t.waitAllowed(ctx, t.allowed); err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

func (t *Tracker) start(ctx context.Context, dir, root string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	p := strconv.Itoa(port)
	// -p binds TCP (HTTP), -P UDP (BEP 15); a port free for TCP may be taken for UDP,
	// and then opentracker exits and the caller retries with another.
	cmd := exec.Command("opentracker", "-i", "127.0.0.1", "-p", p, "-P", p, "-d", root, "-w", "whitelist")
	proc, err := start(ctx, "opentracker", cmd, filepath.Join(dir, fmt.Sprintf("opentracker-%d.log", port)), nil)
	if err != nil {
		return err
	}
	t.proc, t.Port = proc, port
	t.AnnounceURL = fmt.Sprintf("http://127.0.0.1:%d/announce", port)
	t.UDPAnnounceURL = fmt.Sprintf("udp://127.0.0.1:%d/announce", port)
	// Up once it answers a scrape.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := t.get(ctx, "/scrape", nil); err == nil {
			return nil
		}
		select {
		case <-proc.Done():
			_, err := proc.Wait()
			return fmt.Errorf("swarmtest: opentracker on port %d exited: %w", port, err)
		case <-ctx.Done():
			proc.Stop()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			proc.Stop()
			return fmt.Errorf("swarmtest: opentracker on port %d: no answer after 10s%s", port, proc.tailSuffix())
		}
	}
}

// Process returns the opentracker child.
func (t *Tracker) Process() *Process { return t.proc }

// Stop kills opentracker and waits for it.
func (t *Tracker) Stop() { t.proc.Stop() }

// Allow adds info hashes (hex) to the whitelist, makes opentracker reload it
// (SIGHUP) and returns once it serves them.
func (t *Tracker) Allow(ctx context.Context, infoHashes ...string) error {
	for _, h := range infoHashes {
		if _, err := parseInfoHash(h); err != nil {
			return err
		}
	}
	t.mu.Lock()
	for _, h := range lowerAll(infoHashes) {
		if !slices.Contains(t.allowed, h) {
			t.allowed = append(t.allowed, h)
		}
	}
	err := t.writeWhitelist()
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := t.signal(syscall.SIGHUP); err != nil {
		return err
	}
	return t.waitAllowed(ctx, infoHashes)
}

func (t *Tracker) signal(sig syscall.Signal) error {
	t.proc.mu.Lock()
	defer t.proc.mu.Unlock()
	if t.proc.groupGone {
		return fmt.Errorf("swarmtest: opentracker has exited%s", t.proc.tailSuffix())
	}
	// The child alone, by its pid: the watchdog shell shares its group.
	if err := syscall.Kill(t.proc.PID(), sig); err != nil {
		return fmt.Errorf("swarmtest: signal opentracker: %w", err)
	}
	return nil
}

func (t *Tracker) writeWhitelist() error {
	data := strings.Join(t.allowed, "\n")
	if data != "" {
		data += "\n"
	}
	tmp := t.whitelist + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return fmt.Errorf("swarmtest: tracker whitelist: %w", err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil { // whatever the umask
		return fmt.Errorf("swarmtest: tracker whitelist: %w", err)
	}
	if err := os.Rename(tmp, t.whitelist); err != nil {
		return fmt.Errorf("swarmtest: tracker whitelist: %w", err)
	}
	return nil
}

// waitAllowed probes each hash with an announce until opentracker stops
// answering "not authorized". The probe peer (127.0.0.1:9, discard) leaves
// again with event=stopped.
func (t *Tracker) waitAllowed(ctx context.Context, infoHashes []string) error {
	for _, h := range infoHashes {
		raw, _ := parseInfoHash(h)
		q := url.Values{
			"info_hash":  {string(raw)},
			"peer_id":    {"-SW0001-swarmtestprb"},
			"port":       {"9"},
			"uploaded":   {"0"},
			"downloaded": {"0"},
			"left":       {"1"},
			"compact":    {"1"},
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			body, err := t.get(ctx, "/announce", q)
			if err != nil {
				return err
			}
			if !strings.Contains(string(body), "failure reason") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("swarmtest: opentracker still refuses %s after 10s: %q", h, body)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		q.Set("event", "stopped")
		if _, err := t.get(ctx, "/announce", q); err != nil {
			return err
		}
	}
	return nil
}

// ScrapeResult is one torrent's line of a scrape reply (BEP 48).
type ScrapeResult struct {
	Complete, Incomplete, Downloaded int
}

// Scrape asks the tracker about one info hash (hex). A torrent nobody has
// announced yet scrapes as zeros.
func (t *Tracker) Scrape(ctx context.Context, infoHash string) (ScrapeResult, error) {
	raw, err := parseInfoHash(infoHash)
	if err != nil {
		return ScrapeResult{}, err
	}
	body, err := t.get(ctx, "/scrape", url.Values{"info_hash": {string(raw)}})
	if err != nil {
		return ScrapeResult{}, err
	}
	v, err := bencode.Decode(body)
	if err != nil {
		return ScrapeResult{}, fmt.Errorf("swarmtest: scrape: %w", err)
	}
	top, _ := v.(map[string]any)
	files, ok := top["files"].(map[string]any)
	if !ok {
		return ScrapeResult{}, fmt.Errorf("swarmtest: scrape: no files dictionary in %q", body)
	}
	st, _ := files[string(raw)].(map[string]any)
	n := func(k string) int { i, _ := st[k].(int64); return int(i) }
	return ScrapeResult{Complete: n("complete"), Incomplete: n("incomplete"), Downloaded: n("downloaded")}, nil
}

// WaitSeeders polls the scrape until at least n seeders of infoHash have
// announced, or ctx ends.
func (t *Tracker) WaitSeeders(ctx context.Context, infoHash string, n int) error {
	var last ScrapeResult
	for {
		s, err := t.Scrape(ctx, infoHash)
		if err == nil {
			if s.Complete >= n {
				return nil
			}
			last = s
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarmtest: waiting for %d seeders of %s (scrape %+v, err %v): %w",
				n, infoHash, last, err, ctx.Err())
		case <-t.proc.Done():
			return fmt.Errorf("swarmtest: opentracker exited%s", t.proc.tailSuffix())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (t *Tracker) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := fmt.Sprintf("http://127.0.0.1:%d%s", t.Port, path)
	if len(q) > 0 {
		// Encode writes a space as '+' (a literal '+' as %2B), which opentracker does not
		// decode in info_hash: an info hash with a 0x20 byte would go unrecognised.
		u += "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("swarmtest: tracker: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("swarmtest: tracker %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("swarmtest: tracker %s: %s", path, resp.Status)
	}
	return body, nil
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
