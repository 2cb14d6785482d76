package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// startServe runs `bitstorm serve` in this process with args (before the torrent) and
// returns the URLs it prints; the command stops, and is checked to end cleanly, when the
// test ends.
func startServe(t *testing.T, torrent string, nfiles int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	pr, pw := io.Pipe()
	app := newApp()
	app.Writer = pw
	done := make(chan error, 1)
	go func() {
		args := append(append([]string{"bitstorm", "serve", "--no-dht", "--quiet", "--http", "127.0.0.1:0", "--port", "0", "--listen", "127.0.0.1"},
			args...), torrent)
		err := app.RunContext(ctx, args)
		pw.Close()
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve ended with %v, want nil at Ctrl-C", err)
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, pr)
	}()
	var urls []string
	for range nfiles {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended after printing %q: %v", urls, <-done)
			}
			urls = append(urls, l)
		case <-ctx.Done():
			t.Fatalf("serve printed %q within the deadline, want %d URLs", urls, nfiles)
		}
	}
	return urls
}

func get(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, body
}

// TestServeCommand: serve prints a URL per file (its path in the torrent, escaped), lists
// them at /, and answers a Range request for bytes not downloaded yet once they are; whole
// files, HEAD, unknown paths, other methods and unsatisfiable ranges as net/http does.
func TestServeCommand(t *testing.T) {
	tor := stagetest.NewTorrent(t, 7, "my films", 32<<10, 200_000, 300_001)
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	gate := make(chan struct{})
	peer.Gate = gate // no block before the first request is in
	torrent, _ := writeTorrent(t, tor)
	urls := startServe(t, torrent, 2, "--out", t.TempDir(), "--peer", peer.Addr().String())
	for i, u := range urls {
		if want := fmt.Sprintf("/my%%20films/f%d.bin", i); !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.HasSuffix(u, want) {
			t.Fatalf("URL %d = %q, want http://127.0.0.1:PORT%s", i, u, want)
		}
	}
	base := strings.TrimSuffix(urls[0], "/my%20films/f0.bin")
	f1 := tor.Data[200_000:]

	// A range in the middle of the second file, before any piece is downloaded.
	type result struct {
		resp *http.Response
		body []byte
		err  error
	}
	res := make(chan result, 1)
	sent := make(chan struct{})
	go func() {
		req, _ := http.NewRequest("GET", urls[1], nil)
		req.Header.Set("Range", "bytes=150000-160000")
		req = req.WithContext(httptrace.WithClientTrace(context.Background(),
			&httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(sent) }}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		res <- result{resp, body, err}
	}()
	<-sent
	close(gate)
	r := <-res
	if r.err != nil {
		t.Fatalf("range request: %v", r.err)
	}
	if r.resp.StatusCode != http.StatusPartialContent || r.resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 150000-160000/%d", len(f1)) {
		t.Fatalf("range request: %s, Content-Range %q", r.resp.Status, r.resp.Header.Get("Content-Range"))
	}
	if !bytes.Equal(r.body, f1[150_000:160_001]) {
		t.Fatal("range request: bytes differ from the file's")
	}

	resp, body := get(t, "GET", base+"/")
	for _, u := range urls {
		if href := fmt.Sprintf("<a href=%q>", strings.TrimPrefix(u, base)); !bytes.Contains(body, []byte(href)) {
			t.Errorf("listing (%s) has no %s:\n%s", resp.Status, href, body)
		}
	}
	if resp, body := get(t, "GET", urls[0]); resp.StatusCode != 200 || !bytes.Equal(body, tor.Data[:200_000]) {
		t.Errorf("GET %s: %s, %d bytes; want the file's %d", urls[0], resp.Status, len(body), 200_000)
	}
	if resp, body := get(t, "HEAD", urls[1]); resp.StatusCode != 200 || resp.ContentLength != int64(len(f1)) || len(body) != 0 {
		t.Errorf("HEAD: %s, Content-Length %d", resp.Status, resp.ContentLength)
	}
	if resp, _ := get(t, "GET", urls[1], "Range", "bytes=-10"); resp.StatusCode != http.StatusPartialContent {
		t.Errorf("last 10 bytes: %s", resp.Status)
	}
	for _, c := range []struct {
		method, path, rng string
		want              int
	}{
		{"GET", "/my%20films/f2.bin", "", http.StatusNotFound},
		{"GET", "/my films", "", http.StatusNotFound},
		{"POST", "/my%20films/f0.bin", "", http.StatusMethodNotAllowed},
		{"GET", "/my%20films/f0.bin", "bytes=300000-", http.StatusRequestedRangeNotSatisfiable},
	} {
		if resp, _ := get(t, c.method, base+strings.ReplaceAll(c.path, " ", "%20"), "Range", c.rng); resp.StatusCode != c.want {
			t.Errorf("%s %s (Range %q): %s, want %d", c.method, c.path, c.rng, resp.Status, c.want)
		}
	}
}

// TestServeCommandErrors: bad arguments fail before anything starts.
func TestServeCommandErrors(t *testing.T) {
	tor := stagetest.NewTorrent(t, 8, "x", 32<<10, 1000)
	torrent, _ := writeTorrent(t, tor)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no torrent", []string{"serve"}, "expected one"},
		{"two torrents", []string{"serve", torrent, torrent}, "expected one"},
		{"negative readahead", []string{"serve", "--readahead", "-1", torrent}, "--readahead -1"},
		{"bad http address", []string{"serve", "--no-dht", "--port", "0", "--http", "127.0.0.1:99999", torrent}, "--http"},
		{"missing file", []string{"serve", filepath.Join(t.TempDir(), "none.torrent")}, "no such file"},
	} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.RunContext(context.Background(), append([]string{"bitstorm"}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
