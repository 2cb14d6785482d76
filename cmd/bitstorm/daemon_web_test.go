package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// webScreenshot is where TestWebPage leaves a picture of the page for people to look at.
const webScreenshot = "/tmp/bitstorm-web.png"

// browser is a headless chromium (Debian's) driven over chromedp, with what its page
// wrote to the console.
type browser struct {
	ctx context.Context // a chromedp context: its tab
	wg  sync.WaitGroup  // the goroutines reading its events

	mu         sync.Mutex
	console    []chromedp.ConsoleMessage
	challenges int // HTTP auth challenges answered
}

// newBrowser starts chromium for the test, ended by its deadline or when the test ends;
// chromedp gives it a new --user-data-dir, and kills it and its children (found by that
// directory) when it ends.
func newBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	swarmtest.Require(t, swarmtest.Chromium)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(swarmtest.ChromiumPath),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), // as root
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900))
	bctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{ctx: bctx}
	messages := chromedp.Console(bctx) // starts the browser
	b.wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		cancelTab()   // closes the browser
		cancelAlloc() // waits for its process to end
		b.wg.Wait()
	})
	return b
}

// signIn makes the browser answer HTTP auth challenges with user and pass, as a person
// would at its prompt: through the Fetch domain, which pauses every request until it is
// let go.
func (b *browser) signIn(t *testing.T, user, pass string) {
	t.Helper()
	paused, challenged := chromedp.Events(b.ctx, fetch.RequestPaused), chromedp.Events(b.ctx, fetch.AuthRequired)
	b.wg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	})
	b.wg.Go(func() {
		for ev, err := range challenged {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.challenges++
			b.mu.Unlock()
			chromedp.Call(b.ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials,
					Username: user, Password: pass}})
		}
	})
	handle := true
	if _, err := chromedp.Call(b.ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handle}); err != nil {
		t.Fatalf("browser: Fetch.enable: %v", err)
	}
}

// do runs the actions in the tab, failing the test with what is named.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v\nconsole: %v", what, err, b.messages())
	}
}

// waitJS polls the JavaScript expression in the page until it is true (bounded by the
// test's deadline).
func (b *browser) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	// The wait ends a little before the test's deadline, which ends the browser: what the
	// page says can still be read then.
	timeout := 2 * time.Minute
	if d, ok := b.ctx.Deadline(); ok {
		timeout = time.Until(d) - 5*time.Second
	}
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("browser: %s: %v\npage:\n%s\nconsole: %v", what, err, text, b.messages())
	}
}

// checkConsole fails the test for an exception, a Content-Security-Policy violation
// or an error in the page's console. The 409s of the session-id handshake are logged as
// failed loads: they are expected.
func (b *browser) checkConsole(t *testing.T) {
	t.Helper()
	for _, m := range b.messages() {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") ||
			(m.Type == chromedp.ConsoleError && !strings.Contains(m.Text, "status of 409")) {
			t.Errorf("browser console: %s (%s:%d)", m, m.URL, m.Line)
		}
	}
}

func (b *browser) messages() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.console...)
}

// waitRPC polls the RPC until ok accepts the torrents' fields.
func waitRPC(t *testing.T, ctx context.Context, c *rpcClient, what string, ok func([]map[string]any) bool, fields ...string) {
	t.Helper()
	for {
		got := c.torrentGet(t, fields...)
		if ok(got) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("RPC: %s: torrent-get still says %v", what, got)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestWebPage drives the daemon's web page in chromium: add a .torrent through the
// file input, see it reach 100 % from a seeder on 127.0.0.1, skip and want a file, pause
// and resume it, and remove it with its data, each checked through the RPC too.
func TestWebPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	b := newBrowser(t, ctx)
	tor := swarm(t, stagetest.NewTorrent(t, 121, "web album", 16<<10, 150_000, 60_000, 5_000))[0]
	hash := tor.Meta.HexHash()
	dl := t.TempDir()
	p := startDaemonProc(t, ctx, buildBinary(t), "--download-dir", dl, "--state-dir", t.TempDir())
	c := &rpcClient{addr: p.rpc}
	torrentFile := saveTorrent(t, t.TempDir(), tor)

	row := fmt.Sprintf(`document.querySelector('tr[data-hash=%q]')`, hash)
	b.do(t, "open the page", chromedp.Navigate("http://"+p.rpc+"/"))
	b.waitJS(t, "the page reaches the RPC", `document.getElementById('conn').textContent === 'connected'`)
	b.do(t, "add the .torrent",
		chromedp.SetUploadFiles(chromedp.ID("add-file"), []string{torrentFile}),
		chromedp.Click(chromedp.ID("add-submit")))
	b.waitJS(t, "the row shows 100%", row+`?.querySelector('.pct').textContent === '100%'`)
	checkOnDisk(t, dl, tor)
	if got := c.torrentGet(t, "hashString", "percentDone"); len(got) != 1 || got[0]["hashString"] != hash || got[0]["percentDone"] != 1.0 {
		t.Fatalf("torrent-get after the page's add: %v, want %s complete", got, hash)
	}
	// The add selected it: its details show its files.
	b.waitJS(t, "the details list the files", `document.querySelectorAll('#file-rows tr').length === 3 &&
		document.getElementById('detail-name').textContent === 'web album'`)

	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(t.TempDir(), "web.png")
	for _, path := range []string{shot, webScreenshot} {
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s (also %s)", shot, webScreenshot)

	wanted := func(want float64) func([]map[string]any) bool {
		return func(got []map[string]any) bool {
			w, _ := got[0]["wanted"].([]any)
			return len(w) == 3 && w[1] == want
		}
	}
	file1 := chromedp.CSS(`#file-rows tr[data-index="1"] input.wanted`)
	b.do(t, "skip file 1", chromedp.Click(file1))
	waitRPC(t, ctx, c, "file 1 skipped", wanted(0), "wanted")
	b.do(t, "want file 1", chromedp.Click(file1))
	waitRPC(t, ctx, c, "file 1 wanted", wanted(1), "wanted")

	status := func(ok func(float64) bool) func([]map[string]any) bool {
		return func(got []map[string]any) bool { s, _ := got[0]["status"].(float64); return ok(s) }
	}
	toggle := chromedp.CSS(fmt.Sprintf(`tr[data-hash=%q] button.toggle`, hash))
	b.do(t, "pause", chromedp.Click(toggle))
	waitRPC(t, ctx, c, "paused", status(func(s float64) bool { return s == float64(transmission.StatusStopped) }), "status")
	b.waitJS(t, "the row offers Resume", row+`.querySelector('button.toggle').textContent === 'Resume'`)
	b.do(t, "resume", chromedp.Click(toggle))
	waitRPC(t, ctx, c, "seeding again", status(func(s float64) bool { return s == float64(transmission.StatusSeed) }), "status")
	b.waitJS(t, "the row offers Pause at 100%", row+`.querySelector('button.toggle').textContent === 'Pause' &&
		`+row+`.querySelector('.pct').textContent === '100%'`)

	b.do(t, "remove with its data",
		chromedp.Click(chromedp.ID("remove-ask")),
		chromedp.Click(chromedp.ID("remove-data")),
		chromedp.Click(chromedp.ID("remove-do")))
	waitRPC(t, ctx, c, "removed", func(got []map[string]any) bool { return len(got) == 0 }, "id")
	b.waitJS(t, "the row is gone", row+` === null && document.getElementById('detail').hidden`)
	if _, err := os.Stat(filepath.Join(dl, "web album")); !os.IsNotExist(err) {
		t.Errorf("after the page's remove with data, %s: %v, want gone", filepath.Join(dl, "web album"), err)
	}
	b.checkConsole(t) // before the daemon stops: the page's next poll would fail
	p.stop(t, ctx)
}

// TestWebPageSignIn: with --rpc-auth the browser is challenged for the page, and the
// credentials it was given go with the page's RPC calls too (the script has none): the
// page connects, adds a magnet link through its field (its name, markup, shown as text)
// and removes it.
func TestWebPageSignIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := newBrowser(t, ctx)
	addr := startDaemonApp(t, "--download-dir", t.TempDir(), "--state-dir", t.TempDir(), "--rpc-auth", "admin:s3cret")
	c := &rpcClient{addr: addr, user: "admin", pass: "s3cret"}
	const hash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	// A tracker where nothing listens: the torrent waits for its metadata.
	// The name is a stranger's text: the page shows it, and runs nothing of it.
	const name = `signed in <img src=x onerror="document.title='pwned'">`
	link := "magnet:?xt=urn:btih:" + hash + "&dn=" + url.QueryEscape(name) + "&tr=" + url.QueryEscape(fmt.Sprintf("http://127.0.0.1:%d/announce", freePort(t)))
	row := fmt.Sprintf(`document.querySelector('tr[data-hash=%q]')`, hash)

	b.signIn(t, "admin", "s3cret")
	b.do(t, "open the page", chromedp.Navigate("http://"+addr+"/web/"))
	b.waitJS(t, "the page reaches the RPC", `document.getElementById('conn').textContent === 'connected'`)
	b.mu.Lock()
	challenges := b.challenges
	b.mu.Unlock()
	if challenges == 0 {
		t.Fatalf("the page opened without an auth challenge")
	}
	b.do(t, "add the magnet link",
		chromedp.SendKeys(chromedp.ID("add-magnet"), link),
		chromedp.Click(chromedp.ID("add-submit")))
	b.waitJS(t, "the row waits for metadata", fmt.Sprintf(`%s?.querySelector('.status').textContent === 'Fetching metadata' &&
		%[1]s.querySelector('.name').textContent === %q && document.getElementById('detail-name').textContent === %[2]q &&
		document.querySelector('main img') === null && document.title === 'BitStorm'`, row, name))
	waitRPC(t, ctx, c, "added", func(got []map[string]any) bool {
		return len(got) == 1 && got[0]["hashString"] == hash && got[0]["magnetLink"] != ""
	}, "hashString", "magnetLink")
	b.do(t, "remove",
		chromedp.Click(chromedp.ID("remove-ask")),
		chromedp.Click(chromedp.ID("remove-do")))
	waitRPC(t, ctx, c, "removed", func(got []map[string]any) bool { return len(got) == 0 }, "id")
	b.waitJS(t, "the row is gone", row+` === null`)
	b.checkConsole(t)
}

// TestWebPageGuarded: the page is guarded as the RPC: without the credentials of
// --rpc-auth it is 401 (with the challenge that makes a browser prompt), a foreign Host
// is 421; with them it comes with its Content-Security-Policy and no inline script, and
// the RPC's replies are not cached.
func TestWebPageGuarded(t *testing.T) {
	addr := startDaemonApp(t, "--download-dir", t.TempDir(), "--state-dir", t.TempDir(),
		"--rpc-auth", "admin:s3cret", "--rpc-host-whitelist", "box.lan")
	get := func(path, user, pass, host string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	for _, path := range []string{"/", "/web/", "/web/index.html", "/web/app.js", "/web/style.css", "/nothing"} {
		for _, tc := range []struct {
			name, user, pass, host string
			want                   int
		}{
			{"no credentials", "", "", "", http.StatusUnauthorized},
			{"wrong password", "admin", "guess", "", http.StatusUnauthorized},
			{"foreign Host", "admin", "s3cret", "evil.example:9091", http.StatusMisdirectedRequest},
		} {
			resp, body := get(path, tc.user, tc.pass, tc.host)
			if resp.StatusCode != tc.want {
				t.Errorf("GET %s, %s: %d, want %d", path, tc.name, resp.StatusCode, tc.want)
			}
			for _, page := range []string{"<script", "use strict", ":root"} { // index.html, app.js, style.css
				if strings.Contains(body, page) {
					t.Errorf("GET %s, %s: the reply has the page in it: %.100q", path, tc.name, body)
				}
			}
			if resp.Header.Get(transmission.SessionIDHeader) != "" {
				t.Errorf("GET %s, %s: the reply gives the session id", path, tc.name)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("GET %s, %s: WWW-Authenticate %q, want a Basic challenge", path, tc.name, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}

	inline := regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]|\son[a-z]+=`)
	for path, ctype := range map[string]string{"/": "text/html", "/web/": "text/html", "/web/app.js": "text/javascript",
		"/web/style.css": "text/css"} {
		for _, host := range []string{"", "box.lan:9091", "localhost"} {
			resp, body := get(path, "admin", "s3cret", host)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
				t.Errorf("GET %s (Host %q) with the credentials: %d %s, want 200 %s", path, host, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
				continue
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'self' and nothing unsafe", path, csp)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("GET %s: X-Frame-Options %q, want DENY", path, resp.Header.Get("X-Frame-Options"))
			}
			if ctype == "text/html" && (!strings.Contains(body, `<script src="/web/app.js"`) || inline.MatchString(body)) {
				t.Errorf("GET %s: want the script from /web/app.js and none inline:\n%s", path, body)
			}
		}
	}
	if resp, _ := get("/nothing", "admin", "s3cret", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing with the credentials: %d, want 404", resp.StatusCode)
	}

	c := &rpcClient{addr: addr, user: "admin", pass: "s3cret"}
	if res, _ := c.call(t, "session-stats", nil); res != "success" {
		t.Fatalf("session-stats: %s", res)
	}
	resp, _ := c.post(t, `{"method":"torrent-get","arguments":{"fields":["id"]}}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("torrent-get: %d, Cache-Control %q, want 200 no-store", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}
