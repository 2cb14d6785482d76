package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// startDaemonApp runs `bitstorm daemon` in this process with args (after the RPC and peer
// flags) and returns its RPC address; it stops, and must end cleanly, when the test ends.
func startDaemonApp(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	done := make(chan error, 1)
	go func() {
		done <- newApp().RunContext(ctx, append([]string{"bitstorm", "daemon", "--rpc-listen", addr, "--port", "0",
			"--listen", "127.0.0.1", "--no-dht", "--quiet"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon ended with %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("daemon did not stop within 30s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-done:
			t.Fatalf("daemon exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon RPC not listening: %v", err)
		}
	}
}

// rpcClient speaks the RPC with net/http, as a browser or a script would.
type rpcClient struct {
	addr, user, pass, host, sid string
}

// post sends body once, with what c holds, and returns the status and the reply.
func (c *rpcClient) post(t *testing.T, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+c.addr+transmission.Path, strings.NewReader(body))
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if c.host != "" {
		req.Host = c.host
	}
	if c.sid != "" {
		req.Header.Set(transmission.SessionIDHeader, c.sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// call does the handshake when needed and returns the result and the arguments.
func (c *rpcClient) call(t *testing.T, method string, args any) (string, map[string]any) {
	t.Helper()
	a, _ := json.Marshal(args)
	body := fmt.Sprintf(`{"method":%q,"arguments":%s}`, method, a)
	resp, reply := c.post(t, body)
	if resp.StatusCode == http.StatusConflict {
		c.sid = resp.Header.Get(transmission.SessionIDHeader)
		resp, reply = c.post(t, body)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d %s", method, resp.StatusCode, reply)
	}
	var r struct {
		Result    string         `json:"result"`
		Arguments map[string]any `json:"arguments"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		t.Fatalf("%s: reply %q: %v", method, reply, err)
	}
	return r.Result, r.Arguments
}

// torrentGet returns the torrents' fields.
func (c *rpcClient) torrentGet(t *testing.T, fields ...string) []map[string]any {
	t.Helper()
	res, args := c.call(t, "torrent-get", map[string]any{"fields": fields})
	if res != "success" {
		t.Fatalf("torrent-get: %s", res)
	}
	var out []map[string]any
	for _, v := range args["torrents"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// TestDaemonRPCSecurity: with --rpc-auth every call needs the credentials (401), then
// the session id (409); a Host that is not localhost, an IP or a whitelisted name is
// refused (421); directories and local .torrent paths outside --download-dir are refused,
// symbolic links resolved; bodies are capped (413).
func TestDaemonRPCSecurity(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	addr := startDaemonApp(t, "--download-dir", root, "--state-dir", t.TempDir(),
		"--rpc-auth", "admin:s3cret", "--rpc-host-whitelist", "box.lan")

	stats := `{"method":"session-stats"}`
	anon := &rpcClient{addr: addr}
	if resp, _ := anon.post(t, stats); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: %d, want 401 with WWW-Authenticate", resp.StatusCode)
	}
	wrong := &rpcClient{addr: addr, user: "admin", pass: "guess"}
	if resp, _ := wrong.post(t, stats); resp.StatusCode != 401 {
		t.Errorf("wrong password: %d, want 401", resp.StatusCode)
	}
	c := &rpcClient{addr: addr, user: "admin", pass: "s3cret"}
	resp, _ := c.post(t, stats) // a cross-site form post has no session id
	if resp.StatusCode != 409 || resp.Header.Get(transmission.SessionIDHeader) == "" {
		t.Fatalf("credentials without session id: %d, want 409 with the id", resp.StatusCode)
	}
	if res, _ := c.call(t, "session-stats", nil); res != "success" {
		t.Fatalf("session-stats: %s", res)
	}
	for host, want := range map[string]int{"evil.example:9091": 421, "box.lan.evil.example": 421, "box.lan:9091": 200, "localhost:9091": 200} {
		hc := *c
		hc.host = host
		if resp, body := hc.post(t, stats); resp.StatusCode != want {
			t.Errorf("Host %s: %d %s, want %d", host, resp.StatusCode, body, want)
		}
	}

	tor := stagetest.NewTorrent(t, 101, "sec", 16<<10, 40_000)
	meta := base64.StdEncoding.EncodeToString(tor.Raw)
	for _, dir := range []string{"/etc", outside, filepath.Join(root, "link"), filepath.Join(root, "link", "deeper"),
		filepath.Join(root, "..", filepath.Base(outside)), "relative/dir"} {
		res, _ := c.call(t, "torrent-add", map[string]any{"metainfo": meta, "download-dir": dir, "paused": true})
		if !strings.Contains(res, "outside the download directory") && !strings.Contains(res, "not an absolute path") {
			t.Errorf("torrent-add into %s: %q, want refused", dir, res)
		}
		res, _ = c.call(t, "session-set", map[string]any{"download-dir": dir})
		if res == "success" {
			t.Errorf("session-set download-dir %s: accepted", dir)
		}
	}
	if got := c.torrentGet(t, "id"); len(got) != 0 {
		t.Fatalf("refused adds left torrents: %v", got)
	}
	// A local .torrent is read only from inside the root.
	inOutside := filepath.Join(outside, "x.torrent")
	os.WriteFile(inOutside, tor.Raw, 0o644)
	for _, path := range []string{"/etc/passwd", inOutside, filepath.Join(root, "link", "x.torrent")} {
		if res, _ := c.call(t, "torrent-add", map[string]any{"filename": path}); !strings.Contains(res, "outside the download directory") {
			t.Errorf("torrent-add filename %s: %q, want refused", path, res)
		}
	}
	if res, _ := c.call(t, "free-space", map[string]any{"path": "/"}); !strings.Contains(res, "outside the download directory") {
		t.Errorf("free-space /: %q, want refused", res)
	}
	if res, args := c.call(t, "free-space", map[string]any{"path": root}); res != "success" || args["size-bytes"].(float64) <= 0 {
		t.Errorf("free-space of the root: %s %v", res, args)
	}
	// Inside the root: allowed, a new subdirectory included.
	sub := filepath.Join(root, "films", "new")
	res, args := c.call(t, "torrent-add", map[string]any{"metainfo": meta, "download-dir": sub, "paused": true})
	if res != "success" || args["torrent-added"] == nil {
		t.Fatalf("torrent-add into %s: %s %v", sub, res, args)
	}
	if got := c.torrentGet(t, "id", "downloadDir", "status"); len(got) != 1 || got[0]["downloadDir"] != sub || got[0]["status"] != 0.0 {
		t.Errorf("torrent-get after the add: %v", got)
	}

	// A body over the cap is refused before it is read whole.
	big := `{"method":"torrent-add","arguments":{"metainfo":"` + strings.Repeat("QUFB", transmission.DefaultMaxBody/4+1) + `"}}`
	if resp, _ := c.post(t, big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body of %d bytes: %d, want 413", len(big), resp.StatusCode)
	}
}

// TestDaemonWatchAndVerify: a .torrent dropped into the watch dir is added and renamed
// .added, a file that is no torrent is left alone; torrent-verify of a stopped torrent
// whose data is on disk shows it complete.
func TestDaemonWatchAndVerify(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	root, watch := t.TempDir(), t.TempDir()
	p := startDaemonProc(t, ctx, buildBinary(t), "--download-dir", root, "--state-dir", t.TempDir(), "--watch-dir", watch)
	c := &rpcClient{addr: p.rpc}
	if res, _ := c.call(t, "session-set", map[string]any{"start-added-torrents": false}); res != "success" {
		t.Fatalf("session-set: %s", res)
	}
	tor := stagetest.NewTorrent(t, 102, "watched", 16<<10, 50_000, 30_000)
	writeFiles(t, root, tor)
	os.WriteFile(filepath.Join(watch, "bad.torrent"), []byte("not bencode"), 0o644)
	os.WriteFile(filepath.Join(watch, "watched.torrent"), tor.Raw, 0o644)

	p.waitRecord(t, ctx, evAdded, 1) // the file is renamed .added first
	got := c.torrentGet(t, "id", "hashString", "status", "percentDone", "name")
	if _, err := os.Stat(filepath.Join(watch, "watched.torrent.added")); len(got) != 1 || err != nil {
		t.Fatalf("watch dir: torrents %v, watched.torrent.added: %v", got, err)
	}
	if got[0]["hashString"] != tor.Meta.HexHash() || got[0]["status"] != 0.0 || got[0]["percentDone"] != 0.0 {
		t.Fatalf("added from the watch dir: %v, want %s stopped (start-added-torrents false) at 0", got[0], tor.Meta.HexHash())
	}
	if _, err := os.Stat(filepath.Join(watch, "bad.torrent")); err != nil {
		t.Errorf("bad.torrent: %v, want left as it is", err)
	}

	if res, _ := c.call(t, "torrent-verify", map[string]any{"ids": []int{1}}); res != "success" {
		t.Fatalf("torrent-verify: %s", res)
	}
	if r := p.waitRecord(t, ctx, evVerified, 1); r.Pieces != tor.Meta.Info.NumPieces() {
		t.Fatalf("verified record %+v, want every piece of %d", r, tor.Meta.Info.NumPieces())
	}
	got = c.torrentGet(t, "status", "percentDone", "leftUntilDone")
	if got[0]["status"] != 0.0 || got[0]["percentDone"] != 1.0 || got[0]["leftUntilDone"] != 0.0 {
		t.Fatalf("after torrent-verify: %v, want stopped and complete", got)
	}
	p.stop(t, ctx)
}

// writeFiles writes tor's payload below dir as a download would lay it out.
func writeFiles(t *testing.T, dir string, tor *stagetest.Torrent) {
	t.Helper()
	for _, f := range tor.Meta.Info.Files {
		name := filepath.Join(append([]string{dir}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, tor.Data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
