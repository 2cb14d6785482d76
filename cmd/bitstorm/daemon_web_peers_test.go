package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// webPeersScreenshot is where TestWebPagePeersLive leaves a picture of the peers view.
const webPeersScreenshot = "/tmp/bitstorm-web-peers.png"

// failingEventSource replaces the browser's EventSource with one that fails at once, as
// a proxy that buffers or cuts streams would make it.
const failingEventSource = `window.EventSource = class {
  constructor(url) { this.url = url; this.readyState = 0; setTimeout(() => { this.readyState = 2; if (this.onerror) this.onerror(new Event('error')); }, 0); }
  close() { this.readyState = 2; }
};`

// TestWebPagePeersLive: while a torrent downloads from a rate-limited libtorrent seeder,
// the page shows the seeder in its peers view (address, libtorrent's name, 100 %, the D
// flag), and follows the download's progress: by polling when its EventSource fails,
// then, reloaded with a working one, through the daemon's event stream (the page counts
// the events it got, and marks the list with where it came from).
func TestWebPagePeersLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	b := newBrowser(t, ctx)
	const size, rate = 8 << 20, 256 << 10 // 32 s at the least
	s := startLimitedSeeder(t, ctx, "live.bin", size, rate)
	dl := t.TempDir()
	p := startDaemonProc(t, ctx, buildBinary(t), "--download-dir", dl, "--state-dir", t.TempDir())

	const row = `document.querySelector('tr.torrent')`
	const midway = `(pct => pct !== '0.0%' && pct !== '100%')(` + row + `?.querySelector('.pct').textContent ?? '0.0%')`
	const source = `document.getElementById('torrents').dataset.source`
	const seederShown = `[...document.querySelectorAll('#peer-rows tr')].some(tr => tr.dataset.address === '127.0.0.1' &&
		tr.querySelector('.client').textContent.startsWith('libtorrent/') && tr.querySelector('.pct').textContent === '100%' &&
		tr.querySelector('.flags').textContent.includes('D'))`

	stub, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: failingEventSource})
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	b.do(t, "open the page", chromedp.Navigate("http://"+p.rpc+"/"))
	b.waitJS(t, "the page reaches the RPC", `document.getElementById('conn').textContent === 'connected'`)
	b.do(t, "add the .torrent",
		chromedp.SetUploadFiles(chromedp.ID("add-file"), []string{s.torrent}),
		chromedp.Click(chromedp.ID("add-submit")))
	b.waitJS(t, "the list polled while the event stream fails, midway", `document.body.dataset.sse === 'failed' && `+
		source+` === 'poll' && `+midway)
	b.waitJS(t, "the peers view shows the seeder", seederShown)

	if _, err := chromedp.Call(b.ctx, page.RemoveScriptToEvaluateOnNewDocument,
		page.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: stub.Identifier}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	b.do(t, "reload the page", chromedp.Navigate("http://"+p.rpc+"/"))
	b.waitJS(t, "the list from the event stream, midway", `document.body.dataset.sse === 'open' && `+
		`Number(document.body.dataset.sseEvents) >= 2 && `+source+` === 'sse' && `+midway)
	b.do(t, "select the torrent", chromedp.Click(chromedp.CSS(`tr.torrent td.name`)))
	b.waitJS(t, "the peers view shows the seeder", seederShown)
	if png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)); err == nil {
		if err := os.WriteFile(webPeersScreenshot, png, 0o644); err == nil {
			t.Logf("screenshot of the peers view: %s", webPeersScreenshot)
		}
	}
	b.waitJS(t, "100% from the event stream", row+`.querySelector('.pct').textContent === '100%' && `+source+` === 'sse'`)
	if err := swarmtest.ComparePayload(s.dir, dl, s.files); err != nil {
		t.Error(err)
	}
	b.checkConsole(t)
	p.stop(t, ctx)
}
