package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
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

// TestServeFFmpeg plays a video over HTTP from bitstorm serve while it downloads: ffmpeg
// makes a 20 s clip (with its index at the front, as streamed files have it), a fake
// seeder serves it at 16 KiB per 40 ms (400 KiB/s: the download takes 19 s at least,
// however fast the machine), and ffprobe reads its duration, then ffmpeg seeks to 10 s
// and decodes a frame, each before the download can have completed: the pieces each
// reads are fetched first. The pieces on disk are counted when each finishes.
func TestServeFFmpeg(t *testing.T) {
	swarmtest.Require(t, swarmtest.FFmpeg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	makeClip(t, ctx, clip)
	torrent := filepath.Join(dir, "clip.torrent")
	if out, err := runCreateCommand(t, "--piece-length", "64K", "--out", torrent, clip); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(torrent)
	data, _ := os.ReadFile(clip)
	m, err := metainfo.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	seeder := stagetest.NewFakePeer(t, &stagetest.Torrent{Meta: m, Raw: raw, Data: data}, stagetest.Honest)
	seeder.Delay = 40 * time.Millisecond
	blocks := (len(data) + 16<<10 - 1) / (16 << 10)
	out := filepath.Join(dir, "out")
	start := time.Now()
	urls := startServe(t, torrent, 1, "--out", out, "--peer", seeder.Addr().String())
	notDone := func(who string) {
		t.Helper()
		have := piecesOnDisk(t, m, filepath.Join(out, "clip.mp4"))
		served := seeder.Served.Load()
		t.Logf("%s done after %v: %d of %d pieces on disk, %d of %d blocks served",
			who, time.Since(start).Round(time.Millisecond), have, m.Info.NumPieces(), served, blocks)
		if have == m.Info.NumPieces() || served >= int64(blocks) {
			t.Errorf("%s finished after the download had completed", who)
		}
	}

	probe, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration",
		"-of", "default=noprint_wrappers=1:nokey=1", urls[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe)
	}
	notDone("ffprobe")
	if d, err := strconv.ParseFloat(strings.TrimSpace(string(probe)), 64); err != nil || d < 19.9 || d > 20.1 {
		t.Errorf("ffprobe: duration %q, want 20 s", probe)
	}

	seek, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-ss", "10", "-i", urls[0],
		"-frames:v", "1", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg -ss 10: %v\n%s", err, seek)
	}
	notDone("ffmpeg -ss 10")
}

// makeClip has ffmpeg encode a 20 s test pattern, with noise that keeps it at 3 Mbit/s
// (7.5 MB), its index at the front (+faststart): H.264 when ffmpeg has libx264, else
// MPEG-4 part 2.
func makeClip(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	enc, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-encoders").Output()
	if err != nil {
		t.Fatalf("ffmpeg -encoders: %v", err)
	}
	codec := []string{"-c:v", "mpeg4"}
	if bytes.Contains(enc, []byte(" libx264 ")) {
		codec = []string{"-c:v", "libx264", "-preset", "ultrafast"}
	}
	args := append([]string{"-hide_banner", "-v", "error", "-f", "lavfi",
		"-i", "testsrc=duration=20:size=320x240:rate=25,noise=alls=40:allf=t"}, codec...)
	out, err := exec.CommandContext(ctx, "ffmpeg", append(args, "-g", "25", "-b:v", "3M", "-movflags", "+faststart", name)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(codec, " "), err, out)
	}
}

// piecesOnDisk counts the pieces of the single-file torrent m that hash right in name.
func piecesOnDisk(t *testing.T, m *metainfo.MetaInfo, name string) int {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		return 0
	}
	n := 0
	for i := range m.Info.NumPieces() {
		off := m.Info.PieceOffset(i)
		end := off + m.Info.PieceSize(i)
		if end <= int64(len(b)) && sha1.Sum(b[off:end]) == m.Info.PieceHash(i) {
			n++
		}
	}
	return n
}
