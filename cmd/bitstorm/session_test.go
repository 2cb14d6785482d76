package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// seedSession seeds tors from memory in an in-process session on 127.0.0.1 and returns
// its address; it stops when the test ends.
func seedSession(t *testing.T, tors ...*stagetest.Torrent) netip.AddrPort {
	t.Helper()
	s, err := pipeline.NewSession(pipeline.SessionConfig{ListenAddr: "127.0.0.1:0",
		Defaults: pipeline.Config{Seed: true, Recheck: true, NoPex: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, tor := range tors {
		st := stagetest.NewMemStorage(tor.Meta.Info.Length)
		st.WriteAt(tor.Data, 0)
		if _, err := s.Add(pipeline.FromMetaInfo(tor.Meta), false, pipeline.WithStorage(st)); err != nil {
			t.Fatal(err)
		}
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.Port())
}

// jsonEvent is one line of download --json.
type jsonEvent struct {
	Time     time.Time `json:"time"`
	Torrent  string    `json:"torrent"`
	Event    string    `json:"event"`
	Piece    *int      `json:"piece"`
	Name     string    `json:"name"`
	Bytes    int64     `json:"bytes"`
	Error    string    `json:"error"`
	Limit    string    `json:"limit"`    // seeding_done
	Uploaded *int64    `json:"uploaded"` // seeding_done
}

// parseJSONLines parses --json's stdout, failing on any line that is not an object
// with time, torrent and event.
func parseJSONLines(t *testing.T, out []byte) []jsonEvent {
	t.Helper()
	var evs []jsonEvent
	for i, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		var e jsonEvent
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&e); err != nil || e.Time.IsZero() || len(e.Torrent) != 40 || e.Event == "" {
			t.Fatalf("stdout line %d %q: %v; want an object with time, torrent and event", i+1, line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// checkJSONDownload checks --json's events of tor: every piece verified, one done
// object naming it, last.
func checkJSONDownload(t *testing.T, evs []jsonEvent, tor *stagetest.Torrent) {
	t.Helper()
	hash := tor.Meta.HexHash()
	verified := make([]bool, tor.Meta.Info.NumPieces())
	var mine []jsonEvent
	for _, e := range evs {
		if e.Torrent != hash {
			continue
		}
		mine = append(mine, e)
		if e.Event == "piece_verified" {
			if e.Piece == nil || *e.Piece < 0 || *e.Piece >= len(verified) {
				t.Fatalf("%s: piece_verified without a piece in range: %+v", tor.Meta.Info.Name, e)
			}
			verified[*e.Piece] = true
		}
	}
	for i, ok := range verified {
		if !ok {
			t.Errorf("%s: no piece_verified for piece %d", tor.Meta.Info.Name, i)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("%s: no events", tor.Meta.Info.Name)
	}
	n := 0
	for _, e := range mine {
		if e.Event == "done" {
			n++
		}
	}
	if last := mine[len(mine)-1]; n != 1 || last.Event != "done" || last.Name != tor.Meta.Info.Name || last.Bytes != tor.Meta.Info.Length {
		t.Errorf("%s: %d done objects, last event %+v; want one done with its name and size, last", tor.Meta.Info.Name, n, last)
	}
}

// checkOnDisk checks that out holds tor's files with its payload.
func checkOnDisk(t *testing.T, out string, tor *stagetest.Torrent) {
	t.Helper()
	var got []byte
	for _, f := range tor.Meta.Info.Files {
		b, err := os.ReadFile(filepath.Join(append([]string{out}, f.Path...)...))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, tor.Data) {
		t.Errorf("%s: the bytes on disk differ from the payload", tor.Meta.Info.Name)
	}
}

// TestDownloadMany downloads two .torrent files and a magnet link in one process from
// one in-process seeder session: exit 0, the bytes on disk, and --json's events name
// every piece of each torrent and end each with one done object.
func TestDownloadMany(t *testing.T) {
	bin := buildBinary(t)
	tors := []*stagetest.Torrent{
		stagetest.NewTorrent(t, 91, "many-one", 32<<10, 300_001),
		stagetest.NewTorrent(t, 92, "many-two", 16<<10, 200_000, 77_777),
		stagetest.NewTorrent(t, 93, "many-three", 32<<10, 150_000),
	}
	seeder := seedSession(t, tors...)
	one, _ := writeTorrent(t, tors[0])
	two, _ := writeTorrent(t, tors[1])
	link := fmt.Sprintf("magnet:?xt=urn:btih:%s&x.pe=%s", tors[2].Meta.HexHash(), seeder)
	out := t.TempDir()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "download", "--no-dht", "--json", "--out", out, "--listen", "127.0.0.1", "--port", "0",
		"--peer", seeder.String(), one, two, link)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("download: %v (context: %v)\n%s", err, ctx.Err(), stderr.String())
	}
	evs := parseJSONLines(t, stdout.Bytes())
	for _, tor := range tors {
		checkOnDisk(t, out, tor)
		checkJSONDownload(t, evs, tor)
	}
	metadata := 0
	for _, e := range evs {
		if e.Event == "metadata_received" && e.Torrent == tors[2].Meta.HexHash() {
			metadata++
		}
	}
	if metadata != 1 {
		t.Errorf("%d metadata_received events for the magnet link, want 1", metadata)
	}
}

// TestDownloadJSONOne: --json with one torrent (the single pipeline's path) prints the
// same events.
func TestDownloadJSONOne(t *testing.T) {
	bin := buildBinary(t)
	tor := stagetest.NewTorrent(t, 94, "json-one", 16<<10, 100_000)
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	torrent, _ := writeTorrent(t, tor)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "download", "--no-dht", "--json", "--out", out, "--port", "0", "--peer", peer.Addr().String(), torrent)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("download: %v\n%s", err, stderr.String())
	}
	checkOnDisk(t, out, tor)
	checkJSONDownload(t, parseJSONLines(t, stdout.Bytes()), tor)
}

// TestDownloadManyRefused: a bad argument among good ones, a torrent named twice, or a
// --metrics address that cannot be served exits 1 with one line naming it before anything starts: no peer is dialed, nothing is
// written, nothing is printed on stdout.
func TestDownloadManyRefused(t *testing.T) {
	bin := buildBinary(t)
	a := stagetest.NewTorrent(t, 95, "refused-a", 16<<10, 50_000)
	b := stagetest.NewTorrent(t, 96, "refused-b", 16<<10, 50_000)
	peer := stagetest.NewFakePeer(t, a, stagetest.Honest)
	ta, _ := writeTorrent(t, a)
	tb, _ := writeTorrent(t, b)
	bad := filepath.Join(t.TempDir(), "bad.torrent")
	os.WriteFile(bad, []byte("d4:infod6:lengthi10e4:name1:x12:piece lengthi0e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"), 0o644)
	missing := filepath.Join(t.TempDir(), "missing.torrent")
	badLink := "magnet:?xt=urn:btih:0123456789abcdef&x.pe=127.0.0.1:1"
	aLink := fmt.Sprintf("magnet:?xt=urn:btih:%s&x.pe=127.0.0.1:1", a.Meta.HexHash())
	webAddr := "https://example.com/x.torrent"
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name  string
		args  []string
		want  []string
		flags []string
	}{
		{"bad torrent", []string{ta, bad, tb}, []string{"argument 2", bad, "piece length"}, nil},
		{"missing file", []string{ta, tb, missing}, []string{"argument 3", missing}, nil},
		{"bad magnet", []string{badLink, ta}, []string{"argument 1", badLink, "40 hex"}, nil},
		{"web address", []string{ta, webAddr}, []string{"argument 2", webAddr}, nil},
		{"same file twice", []string{ta, tb, ta}, []string{ta, "argument 3", "argument 1", a.Meta.HexHash()}, nil},
		{"file and its magnet", []string{ta, aLink}, []string{ta, aLink, a.Meta.HexHash()}, nil},
		{"metrics address taken", []string{ta, tb}, []string{"--metrics " + taken.Addr().String(), "in use"},
			[]string{"--metrics", taken.Addr().String()}},
		{"metrics address bad", []string{ta, tb}, []string{"--metrics nohost", "missing port"}, []string{"--metrics", "nohost"}},
		{"metrics address taken, one torrent", []string{ta}, []string{"--metrics " + taken.Addr().String(), "in use"},
			[]string{"--metrics", taken.Addr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			args := append([]string{"download", "--no-dht", "--json", "--out", out, "--listen", "127.0.0.1", "--port", "0",
				"--peer", peer.Addr().String()}, tc.flags...)
			args = append(args, tc.args...)
			cmd := exec.CommandContext(ctx, bin, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "bitstorm: download: ") {
				t.Fatalf("stderr = %q, want one line starting %q", stderr.String(), "bitstorm: download: ")
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("stderr line %q does not name %q", lines[0], w)
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			if ents, err := os.ReadDir(out); err != nil || len(ents) > 0 {
				t.Errorf("%s holds %v (%v), want nothing", out, ents, err)
			}
			if n := peer.Accepted.Load(); n != 0 {
				t.Errorf("the peer was dialed %d times, want never", n)
			}
		})
	}
}

// TestDownloadManyOneFails: one torrent finds no peer while another downloads: the
// good one completes on disk, then the command exits 1 with one line naming the failed
// torrent, not the good one, and --json ends the failed one with an error object.
func TestDownloadManyOneFails(t *testing.T) {
	bin := buildBinary(t)
	good := stagetest.NewTorrent(t, 97, "fails-good", 16<<10, 120_000)
	lost := stagetest.NewTorrent(t, 98, "fails-lost", 16<<10, 60_000)
	peer := stagetest.NewFakePeer(t, good, stagetest.Honest) // refuses lost's handshakes
	tg, _ := writeTorrent(t, good)
	tl, _ := writeTorrent(t, lost)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "download", "--no-dht", "--json", "--out", out, "--listen", "127.0.0.1", "--port", "0",
		"--no-peers-timeout", "1s", "--peer", peer.Addr().String(), tg, tl)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v (context: %v), want status 1; stderr:\n%s", err, ctx.Err(), stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "bitstorm: download: 1 of 2 torrents failed") || !strings.Contains(last, "fails-lost") ||
		!strings.Contains(last, tl) || !strings.Contains(last, "no peers") || strings.Contains(last, "fails-good") {
		t.Errorf("last stderr line = %q, want one naming fails-lost (%s) and its error, not fails-good", last, tl)
	}
	checkOnDisk(t, out, good)
	evs := parseJSONLines(t, stdout.Bytes())
	checkJSONDownload(t, evs, good)
	var ends []jsonEvent
	for _, e := range evs {
		if e.Torrent == lost.Meta.HexHash() && (e.Event == "done" || e.Event == "error") {
			ends = append(ends, e)
		}
	}
	if len(ends) != 1 || ends[0].Event != "error" || !strings.Contains(ends[0].Error, "no peers") {
		t.Errorf("fails-lost ends with %+v, want one error object saying no peers", ends)
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// scrape reads a /metrics page into name{labels} -> value, checking each sample line.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	samples := make(map[string]float64)
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q: want NAME VALUE", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

// TestDownloadManyMetrics downloads two torrents with --metrics and --seed-time, so
// that the process stays up seeding; once --json says both completed, /metrics has
// their bytes and pieces per torrent and in total, and the process metrics. Then
// SIGINT stops both: exit 130, an error object for each, their resume records saved.
func TestDownloadManyMetrics(t *testing.T) {
	bin := buildBinary(t)
	tors := []*stagetest.Torrent{
		stagetest.NewTorrent(t, 99, "metrics-one", 16<<10, 200_000),
		stagetest.NewTorrent(t, 100, "metrics-two", 32<<10, 100_000, 45_000),
	}
	seeder := seedSession(t, tors...)
	one, _ := writeTorrent(t, tors[0])
	two, _ := writeTorrent(t, tors[1])
	out := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "download", "--no-dht", "--json", "--metrics", addr, "--seed-time", "1h",
		"--out", out, "--listen", "127.0.0.1", "--port", "0", "--peer", seeder.String(), one, two)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	var all bytes.Buffer
	completed := map[string]bool{}
	for len(completed) < len(tors) {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("stdout ended before both completed:\n%s\n%s", all.String(), stderr.String())
			}
			all.Write(append(line, '\n'))
			if e := parseJSONLines(t, line); e[0].Event == "completed" {
				completed[e[0].Torrent] = true
			}
		case <-ctx.Done():
			t.Fatalf("no completed events in time:\n%s\n%s", all.String(), stderr.String())
		}
	}

	m := scrape(t, "http://"+addr+"/metrics")
	var size, pieces float64
	for _, tor := range tors {
		label := fmt.Sprintf("{info_hash=%q}", tor.Meta.HexHash())
		n, want := float64(tor.Meta.Info.NumPieces()), float64(tor.Meta.Info.Length)
		size, pieces = size+want, pieces+n
		for name, w := range map[string]float64{
			"bitstorm_torrent_downloaded_bytes_total": want,
			"bitstorm_torrent_verified_bytes":         want,
			"bitstorm_torrent_size_bytes":             want,
			"bitstorm_torrent_pieces_verified_total":  n,
			"bitstorm_torrent_pieces_failed_total":    0,
			"bitstorm_torrent_tracker_failures_total": 0, // no tracker: --peer
		} {
			if got, ok := m[name+label]; !ok || got != w {
				t.Errorf("%s%s = %v (present %v), want %v", name, label, got, ok, w)
			}
		}
		if _, ok := m["bitstorm_torrent_peers"+label]; !ok {
			t.Errorf("no bitstorm_torrent_peers%s", label)
		}
	}
	for name, w := range map[string]float64{
		"bitstorm_downloaded_bytes_total":    size,
		"bitstorm_verified_bytes":            size,
		"bitstorm_pieces_verified_total":     pieces,
		`bitstorm_torrents{state="running"}`: 2, // seeding
		`bitstorm_torrents{state="failed"}`:  0,
	} {
		if got, ok := m[name]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, w)
		}
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_goroutines", "process_open_fds"} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s among the process metrics", name)
		}
	}

	cmd.Process.Signal(syscall.SIGINT)
	for line := range lines {
		all.Write(append(line, '\n'))
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit = %v after SIGINT, want status 130; stderr:\n%s", err, stderr.String())
	}
	evs := parseJSONLines(t, all.Bytes())
	for _, tor := range tors {
		var ends []string
		for _, e := range evs {
			if e.Torrent == tor.Meta.HexHash() && (e.Event == "done" || e.Event == "error") {
				ends = append(ends, e.Event+": "+e.Error)
			}
		}
		if len(ends) != 1 || !strings.HasPrefix(ends[0], "error: ") || !strings.Contains(ends[0], "interrupted") {
			t.Errorf("%s ends with %q, want one error object saying interrupted", tor.Meta.Info.Name, ends)
		}
		rec, err := resume.Load(resume.Path(out, tor.Meta.InfoHash), &tor.Meta.Info, tor.Meta.InfoHash)
		if err != nil {
			t.Fatalf("%s: no resume record after SIGINT: %v", tor.Meta.Info.Name, err)
		}
		if n := rec.Pieces.Count(); n != tor.Meta.Info.NumPieces() {
			t.Errorf("%s: the resume record lists %d pieces, want all %d", tor.Meta.Info.Name, n, tor.Meta.Info.NumPieces())
		}
		checkOnDisk(t, out, tor)
	}
}

// TestDownloadManyInterrupt sends SIGINT while two torrents download from slow peers:
// exit 130, and each torrent's resume record lists pieces, and only pieces on disk.
func TestDownloadManyInterrupt(t *testing.T) {
	bin := buildBinary(t)
	tors := []*stagetest.Torrent{
		stagetest.NewTorrent(t, 101, "interrupt-one", 32<<10, 2<<20),
		stagetest.NewTorrent(t, 102, "interrupt-two", 32<<10, 1<<20, 1<<20),
	}
	var peers []*stagetest.FakePeer
	args := []string{"download", "--no-dht", "--listen", "127.0.0.1", "--port", "0"}
	for _, tor := range tors {
		p := stagetest.NewFakePeer(t, tor, stagetest.Honest)
		p.Delay = 5 * time.Millisecond
		peers = append(peers, p)
		args = append(args, "--peer", p.Addr().String())
	}
	out := t.TempDir()
	args = append(args, "--out", out)
	for _, tor := range tors {
		torrent, _ := writeTorrent(t, tor)
		args = append(args, torrent)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if !p.WaitServed(ctx, 40) {
			t.Fatalf("a peer served %d blocks, want 40 before the interrupt: %v", p.Served.Load(), ctx.Err())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit = %v (context: %v), want status 130; stderr:\n%s", err, ctx.Err(), stderr.String())
	}
	for _, tor := range tors {
		info := &tor.Meta.Info
		rec, err := resume.Load(resume.Path(out, tor.Meta.InfoHash), info, tor.Meta.InfoHash)
		if err != nil {
			t.Fatalf("%s: no resume record after SIGINT: %v", info.Name, err)
		}
		var data []byte
		for _, f := range info.Files {
			b, err := os.ReadFile(filepath.Join(append([]string{out}, f.Path...)...))
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, b...)
		}
		n := 0
		for i := range info.NumPieces() {
			if !rec.Pieces.Has(i) {
				continue
			}
			n++
			off, size := info.PieceOffset(i), info.PieceSize(i)
			if int64(len(data)) < off+size || !bytes.Equal(data[off:off+size], tor.Data[off:off+size]) {
				t.Fatalf("%s: the record claims piece %d, which is not on disk", info.Name, i)
			}
		}
		if n == 0 {
			t.Errorf("%s: the record lists no piece although blocks were served", info.Name)
		}
	}
}
