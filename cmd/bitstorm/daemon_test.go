package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/trackerd"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// syncBuffer is a bytes.Buffer a child process writes while the test reads it.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced at each write; nil until Changed
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// Changed is closed at the next write.
func (s *syncBuffer) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemonProc is a `bitstorm daemon` child process.
type daemonProc struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	rpc    string // 127.0.0.1:PORT
	exited chan error
}

// startDaemonProc runs the daemon binary with args (after the RPC, peer and log flags)
// and waits until its RPC answers; it is killed when the test ends if still running. It
// logs JSON (records reads it).
func startDaemonProc(t *testing.T, ctx context.Context, bin string, args ...string) *daemonProc {
	t.Helper()
	port := freePort(t)
	p := &daemonProc{log: &syncBuffer{}, rpc: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan error, 1)}
	args = append([]string{"daemon", "--rpc-listen", p.rpc, "--port", "0", "--listen", "127.0.0.1", "--no-dht", "--log-format", "json"}, args...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr, p.cmd.Stdout = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.log.String())
		}
		p.exited <- nil // for a stop after this cleanup
	})
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.rpc)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the daemon's RPC never listened: %v\n%s", err, p.log.String())
		case err := <-p.exited:
			t.Fatalf("the daemon exited: %v\n%s", err, p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and checks the daemon exits 0.
func (p *daemonProc) stop(t *testing.T, ctx context.Context) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("daemon after SIGTERM: %v, want exit 0\n%s", err, p.log.String())
		}
		p.exited <- nil
	case <-ctx.Done():
		t.Fatalf("daemon still running after SIGTERM\n%s", p.log.String())
	}
}

// kill sends SIGKILL and waits for the daemon to be gone: nothing of its own shutdown runs.
func (p *daemonProc) kill(t *testing.T, ctx context.Context) {
	t.Helper()
	p.cmd.Process.Kill()
	select {
	case <-p.exited:
		p.exited <- nil
	case <-ctx.Done():
		t.Fatal("daemon still running after SIGKILL")
	}
}

// daemonRecord is one record of the daemon's JSON log: the fields tests read (the
// torrents' lifecycle records: daemon_log.go).
type daemonRecord struct {
	Level      string `json:"level"`
	Msg        string `json:"msg"`
	Event      string `json:"event"`
	ID         int    `json:"id"`
	Name       string `json:"name"`
	Pieces     int    `json:"pieces"`
	FromRecord bool   `json:"from_record"`
	Limit      string `json:"limit"`   // seeding_done's
	Torrent    string `json:"torrent"` // a run's own records: its info hash's first digits
}

// records decodes the daemon's log so far, one JSON object per line; any other line
// fails the test. A last line without its newline yet is left out.
func (p *daemonProc) records(t *testing.T) []daemonRecord {
	t.Helper()
	text := p.log.String()
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i+1]
	} else {
		text = ""
	}
	var out []daemonRecord
	for line := range strings.Lines(text) {
		var r daemonRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Level == "" || r.Msg == "" {
			t.Fatalf("daemon log line %q: want a JSON record with level and msg (%v)", line, err)
		}
		out = append(out, r)
	}
	return out
}

// torrentRecords are p's lifecycle records of event ev.
func (p *daemonProc) torrentRecords(t *testing.T, ev torrentEvent) []daemonRecord {
	t.Helper()
	var out []daemonRecord
	for _, r := range p.records(t) {
		if r.Event == string(ev) && r.Msg == "torrent "+r.Event {
			out = append(out, r)
		}
	}
	return out
}

// waitRecord waits until the log has a lifecycle record of event ev for torrent id,
// looking again at each write to it.
func (p *daemonProc) waitRecord(t *testing.T, ctx context.Context, ev torrentEvent, id int) daemonRecord {
	t.Helper()
	return p.waitRecordAfter(t, ctx, ev, id, 0)
}

// waitRecordAfter is waitRecord past the first after records of event ev (of any torrent).
func (p *daemonProc) waitRecordAfter(t *testing.T, ctx context.Context, ev torrentEvent, id, after int) daemonRecord {
	t.Helper()
	for {
		changed := p.log.Changed() // before reading: a write after it closes changed
		recs := p.torrentRecords(t, ev)
		for _, r := range recs[min(after, len(recs)):] {
			if r.ID == id {
				return r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %q record of torrent %d past the first %d", ev, id, after)
		case <-changed:
		}
	}
}

// lifecycle is the events of torrent id's lifecycle records, in order, but resumed (which
// comes with each run of the torrent, racing the RPC's replies).
func (p *daemonProc) lifecycle(t *testing.T, id int) []string {
	t.Helper()
	var evs []string
	for _, r := range p.records(t) {
		if r.Event != "" && r.Msg == "torrent "+r.Event && r.ID == id && r.Event != string(evResumed) {
			evs = append(evs, r.Event)
		}
	}
	return evs
}

// remote runs transmission-remote against the daemon; ok is its exit status.
func (p *daemonProc) remote(t *testing.T, ctx context.Context, args ...string) (string, bool) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "transmission-remote", append([]string{p.rpc}, args...)...).CombinedOutput()
	return string(out), err == nil
}

// mustRemote is remote that fails the test unless transmission-remote succeeds.
func (p *daemonProc) mustRemote(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, ok := p.remote(t, ctx, args...)
	if !ok {
		t.Fatalf("transmission-remote %s failed:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// listRow is one torrent of transmission-remote -l.
type listRow struct {
	id     int
	failed bool // the id has a '*': the torrent has an error
	done   string
	status string
	name   string
}

// The line format of transmission-remote 3.00 -l: id (with '*' on error), done, have,
// ETA, up, down, ratio, status (one of these), name.
var listLine = regexp.MustCompile(`^\s*(\d+)(\*?)\s+(\d+%|n/a)\s+.*?\s(Idle|Seeding|Downloading|Up & Down|Stopped|Finished|Queued|Verifying|Will Verify)\s+(\S.*)$`)

// list runs -l and parses it.
func (p *daemonProc) list(t *testing.T, ctx context.Context) []listRow {
	t.Helper()
	out := p.mustRemote(t, ctx, "-l")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "ID") || !strings.HasPrefix(lines[len(lines)-1], "Sum:") {
		t.Fatalf("-l printed %q: want a header, rows and a Sum line", out)
	}
	var rows []listRow
	for _, l := range lines[1 : len(lines)-1] {
		m := listLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("-l row %q does not parse", l)
		}
		id, _ := strconv.Atoi(m[1])
		rows = append(rows, listRow{id: id, failed: m[2] == "*", done: m[3], status: m[4], name: m[5]})
	}
	return rows
}

// row is the row of -l named name; it fails the test if there is none.
func (p *daemonProc) row(t *testing.T, ctx context.Context, name string) listRow {
	t.Helper()
	rows := p.list(t, ctx)
	for _, r := range rows {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("-l lists %+v, want a row named %q", rows, name)
	return listRow{}
}

// waitRow polls -l until it has a row of name (a magnet link's row is named by its hash
// until its metadata arrives) that ok accepts.
func (p *daemonProc) waitRow(t *testing.T, ctx context.Context, name string, ok func(listRow) bool) listRow {
	t.Helper()
	for {
		rows := p.list(t, ctx)
		i := slices.IndexFunc(rows, func(r listRow) bool { return r.name == name })
		if i >= 0 && ok(rows[i]) {
			return rows[i]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("-l rows %+v: none named %s that is done waiting for", rows, name)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func complete100(r listRow) bool { return r.done == "100%" && r.status != "Stopped" }

// swarm is a tracker on 127.0.0.1 and an in-process seeder of tors, announced there.
func swarm(t *testing.T, tors ...*stagetest.Torrent) []*stagetest.Torrent {
	t.Helper()
	tr := httptest.NewServer(trackerd.New(trackerd.Config{Interval: time.Second}))
	t.Cleanup(tr.Close)
	out := make([]*stagetest.Torrent, len(tors))
	for i, tor := range tors {
		out[i] = tor.WithAnnounce(t, tr.URL+"/announce")
	}
	seedSession(t, out...)
	return out
}

// saveTorrent writes tor's .torrent into dir and returns its path.
func saveTorrent(t *testing.T, dir string, tor *stagetest.Torrent) string {
	t.Helper()
	path := filepath.Join(dir, tor.Meta.Info.Name+".torrent")
	if err := os.WriteFile(path, tor.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDaemonTransmissionRemote drives the daemon with transmission-remote 3.00: add
// torrents that download from a seeder on 127.0.0.1, list them (what -l shows is what
// is on disk), show one, list its files, stop and start it, skip and want a file,
// remove it, then add another and remove it with its data.
func TestDaemonTransmissionRemote(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tors := swarm(t, stagetest.NewTorrent(t, 81, "album", 16<<10, 100_000, 50_000, 70_000),
		stagetest.NewTorrent(t, 82, "single.bin", 16<<10, 120_000))
	album, single := tors[0], tors[1]
	dl, tdir := t.TempDir(), t.TempDir()
	p := startDaemonProc(t, ctx, buildBinary(t), "--download-dir", dl, "--state-dir", t.TempDir())

	if rows := p.list(t, ctx); len(rows) != 0 {
		t.Fatalf("a new daemon lists %+v", rows)
	}
	if out := p.mustRemote(t, ctx, "-a", saveTorrent(t, tdir, album)); !strings.Contains(out, `responded: "success"`) {
		t.Fatalf("-a: %s", out)
	}
	r := p.waitRow(t, ctx, "album", complete100)
	if r.id != 1 || r.failed {
		t.Fatalf("-l row %+v, want id 1 without error", r)
	}
	checkOnDisk(t, dl, album)

	info := p.mustRemote(t, ctx, "-t", "1", "-i")
	for _, want := range []string{"Id: 1", "Name: album", "Hash: " + album.Meta.HexHash(), "Percent Done: 100%",
		"Location: " + dl, "Total size: 220.0 kB (220.0 kB wanted)", "Piece Count: 14"} {
		if !strings.Contains(info, want) {
			t.Errorf("-i lacks %q:\n%s", want, info)
		}
	}
	files := p.mustRemote(t, ctx, "-t", "1", "-f")
	for i, size := range []string{"100.0 kB", "50.00 kB", "70.00 kB"} {
		want := regexp.MustCompile(fmt.Sprintf(`(?m)^\s*%d: 100%% Normal\s+Yes\s+%s\s+album/f%d.bin$`, i, regexp.QuoteMeta(size), i))
		if !want.MatchString(files) {
			t.Errorf("-f lacks file %d done, normal, wanted, %s:\n%s", i, size, files)
		}
	}

	p.waitRecord(t, ctx, evCompleted, 1)
	p.mustRemote(t, ctx, "-t", "1", "-S")
	if r := p.row(t, ctx, "album"); r.status != "Stopped" || r.done != "100%" {
		t.Errorf("after -S: %+v, want Stopped at 100%%", r)
	}
	p.mustRemote(t, ctx, "-t", "1", "-s")
	p.waitRow(t, ctx, "album", complete100)
	// Verify a running torrent: its data is rechecked, and it is still all there.
	p.mustRemote(t, ctx, "-t", "1", "-v")
	if r := p.waitRecord(t, ctx, evVerified, 1); r.Pieces != album.Meta.Info.NumPieces() {
		t.Errorf("verified %+v, want all %d pieces", r, album.Meta.Info.NumPieces())
	}
	p.waitRow(t, ctx, "album", complete100)

	// File selection: file 1 skipped, then wanted again; the torrent stays complete.
	p.mustRemote(t, ctx, "-t", "1", "-G", "1")
	if files := p.mustRemote(t, ctx, "-t", "1", "-f"); !regexp.MustCompile(`(?m)^\s*1: 100% Normal\s+No\s`).MatchString(files) {
		t.Errorf("after -G 1, -f shows:\n%s", files)
	}
	p.mustRemote(t, ctx, "-t", "1", "-ph", "0")
	p.mustRemote(t, ctx, "-t", "1", "-g", "1")
	if files := p.mustRemote(t, ctx, "-t", "1", "-f"); !regexp.MustCompile(`(?m)^\s*1: 100% Normal\s+Yes\s`).MatchString(files) ||
		!regexp.MustCompile(`(?m)^\s*0: 100% High\s+Yes\s`).MatchString(files) {
		t.Errorf("after -g 1 and -ph 0, -f shows:\n%s", files)
	}
	if out, ok := p.remote(t, ctx, "-t", "1", "-G", "7"); ok || !strings.Contains(out, "file 7 does not exist") {
		t.Errorf("-G 7 (no such file): ok=%v %s", ok, out)
	}

	// Remove keeps the data; remove-and-delete deletes it.
	p.mustRemote(t, ctx, "-t", "1", "-r")
	if rows := p.list(t, ctx); len(rows) != 0 {
		t.Errorf("after -r: %+v", rows)
	}
	checkOnDisk(t, dl, album)
	p.mustRemote(t, ctx, "-a", saveTorrent(t, tdir, single))
	r = p.waitRow(t, ctx, "single.bin", complete100)
	if r.id != 2 {
		t.Errorf("second torrent has id %d, want 2 (ids are not reused)", r.id)
	}
	checkOnDisk(t, dl, single)
	p.waitRecord(t, ctx, evCompleted, 2)
	p.mustRemote(t, ctx, "-t", "2", "--remove-and-delete")
	if _, err := os.Stat(filepath.Join(dl, "single.bin")); !os.IsNotExist(err) {
		t.Errorf("after --remove-and-delete, single.bin: %v, want gone", err)
	}
	if ents, _ := filepath.Glob(filepath.Join(dl, ".bitstorm", single.Meta.HexHash()+"*")); len(ents) != 0 {
		t.Errorf("after --remove-and-delete, kept files remain: %q", ents)
	}
	checkOnDisk(t, dl, album) // another torrent's data is not touched
	// The log has each step of each torrent's lifecycle, once, in order.
	p.waitRecord(t, ctx, evRemoved, 2)
	if got, want := p.lifecycle(t, 1), []string{"added", "completed", "stopped", "started", "verifying", "verified", "removed"}; !slices.Equal(got, want) {
		t.Errorf("torrent 1's lifecycle records %q, want %q", got, want)
	}
	if got, want := p.lifecycle(t, 2), []string{"added", "completed", "removed"}; !slices.Equal(got, want) {
		t.Errorf("torrent 2's lifecycle records %q, want %q", got, want)
	}
	for _, r := range p.records(t) { // a run's info records would tell the lifecycle twice
		if r.Torrent != "" && (r.Level == "INFO" || r.Level == "DEBUG") {
			t.Errorf("a run's record at %s: %+v", r.Level, r)
		}
	}

	// What the daemon refuses, transmission-remote reports as an error.
	if out, ok := p.remote(t, ctx, "-a", "http://example.com/x.torrent"); ok || !strings.Contains(out, "fetches no URLs") {
		t.Errorf("-a URL: ok=%v %s", ok, out)
	}
	if out, ok := p.remote(t, ctx, "-w", "/tmp"); ok || !strings.Contains(out, "outside the download directory") {
		t.Errorf("-w /tmp: ok=%v %s", ok, out)
	}
	p.stop(t, ctx)
}

// TestDaemonRestart: torrents, their state and settings survive a SIGTERM and a start on
// the same state dir; a complete torrent is not downloaded again.
func TestDaemonRestart(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tors := swarm(t, stagetest.NewTorrent(t, 91, "first", 16<<10, 90_000, 40_000),
		stagetest.NewTorrent(t, 92, "second", 16<<10, 60_000), stagetest.NewTorrent(t, 93, "third", 16<<10, 70_000))
	first, second, third := tors[0], tors[1], tors[2]
	link := "magnet:?xt=urn:btih:" + third.Meta.HexHash() + "&tr=" + url.QueryEscape(third.Meta.Announce)
	dl, state, tdir := t.TempDir(), t.TempDir(), t.TempDir()
	bin := buildBinary(t)
	p := startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	p.mustRemote(t, ctx, "-a", saveTorrent(t, tdir, first))
	p.waitRow(t, ctx, "first", complete100)
	p.mustRemote(t, ctx, "-t", "1", "-d", "100")
	sub := filepath.Join(dl, "sub")
	p.mustRemote(t, ctx, "--start-paused", "-w", sub, "-a", saveTorrent(t, tdir, second))
	if r := p.row(t, ctx, "second"); r.status != "Stopped" || r.id != 2 {
		t.Fatalf("second, added paused: %+v", r)
	}
	// Id 3 is taken and freed: ids are not reused, and stay what they were after a restart.
	p.mustRemote(t, ctx, "-a", saveTorrent(t, tdir, stagetest.NewTorrent(t, 94, "gone", 16<<10, 1000)))
	p.mustRemote(t, ctx, "-t", "3", "-r")
	p.mustRemote(t, ctx, "-w", dl, "-a", link) // start-added-torrents is false now: -s starts it
	p.mustRemote(t, ctx, "-t", "4", "-s")
	p.waitRow(t, ctx, "third", complete100) // named once its metadata came from the seeder
	p.stop(t, ctx)
	for _, r := range p.records(t) {
		if r.Level == "ERROR" {
			t.Errorf("error logged: %+v", r)
		}
	}
	st, err := loadState(state)
	if err != nil || len(st.Torrents) != 3 {
		t.Fatalf("state after the stop: %+v, %v", st, err)
	}
	if rec := st.Torrents[2]; rec.Name != "third" || rec.TorrentFile == "" || rec.Magnet != "" {
		t.Errorf("the magnet link's record: %+v, want its metadata kept as a .torrent", rec)
	}

	p = startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	r1 := p.waitRow(t, ctx, "first", func(r listRow) bool { return r.status != "Verifying" && r.status != "Will Verify" })
	r2 := p.row(t, ctx, "second")
	if r1.id != 1 || r1.done != "100%" || r1.status == "Stopped" {
		t.Errorf("first after the restart: %+v, want id 1, 100%%, running", r1)
	}
	if r2.id != 2 || r2.done != "0%" || r2.status != "Stopped" {
		t.Errorf("second after the restart: %+v, want id 2, 0%%, Stopped", r2)
	}
	info := p.mustRemote(t, ctx, "-t", "1", "-i")
	if !strings.Contains(info, "Download Limit: 100 kB/s") || !strings.Contains(info, "Location: "+dl) {
		t.Errorf("first's settings after the restart:\n%s", info)
	}
	if r3 := p.waitRow(t, ctx, "third", complete100); r3.id != 4 {
		t.Errorf("third (a magnet link) after the restart: %+v, want id 4", r3)
	}
	checkOnDisk(t, dl, third)
	if info := p.mustRemote(t, ctx, "-t", "2", "-i"); !strings.Contains(info, "Location: "+sub) {
		t.Errorf("second's directory after the restart:\n%s", info)
	}
	if si := p.mustRemote(t, ctx, "-si"); !strings.Contains(si, "Autostart added torrents: No") || !strings.Contains(si, "Download directory: "+dl) {
		t.Errorf("session settings after the restart:\n%s", si)
	}
	if st := p.mustRemote(t, ctx, "-st"); !strings.Contains(st, "Started 2 times") {
		t.Errorf("session stats after the restart:\n%s", st)
	}
	checkOnDisk(t, dl, first)
	// Started, the second downloads into its own directory.
	p.mustRemote(t, ctx, "-t", "2", "-s")
	p.waitRow(t, ctx, "second", complete100)
	checkOnDisk(t, sub, second)
	p.stop(t, ctx)
	// The complete torrents resumed from their records (the second had no data), and once.
	resumed := map[int]int{}
	for _, r := range p.torrentRecords(t, evResumed) {
		if !r.FromRecord {
			t.Errorf("a restart rechecked data its resume record covers: %+v", r)
		}
		resumed[r.ID] = r.Pieces
	}
	if want := map[int]int{1: first.Meta.Info.NumPieces(), 4: third.Meta.Info.NumPieces()}; !maps.Equal(resumed, want) {
		t.Errorf("after the restart, pieces resumed per id %v, want %v", resumed, want)
	}
	if ends := p.torrentRecords(t, evCompleted); len(ends) != 1 || ends[0].ID != 2 || ends[0].Name != "second" {
		t.Errorf("completed records after the restart %+v, want one, of the second", ends)
	}
}

// TestDaemonLogFlags: a bad --log-format or --log-level is refused in one line, exit
// status 1, before anything starts.
func TestDaemonLogFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	bin := buildBinary(t)
	for _, tc := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}} {
		args := append([]string{"daemon", "--download-dir", t.TempDir(), "--state-dir", t.TempDir(), "--rpc-listen", "127.0.0.1:0"}, tc...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], tc[0]+" ") || !strings.Contains(lines[0], strconv.Quote(tc[1])) {
			t.Errorf("%s %s: exit %d, %q; want exit 1 and one line naming the flag and its value", tc[0], tc[1], code, out)
		}
	}
}

// TestDaemonRefusesOpenRPC: without --rpc-auth the RPC listens on loopback only; the
// refusal is one line and exit status 1.
func TestDaemonRefusesOpenRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	bin := buildBinary(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "example.com:9091"} {
		cmd := exec.CommandContext(ctx, bin, "daemon", "--download-dir", t.TempDir(), "--state-dir", t.TempDir(), "--rpc-listen", addr)
		out, err := cmd.CombinedOutput()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "--rpc-auth") {
			t.Errorf("--rpc-listen %s without --rpc-auth: exit %d, %q; want exit 1 and one line naming --rpc-auth", addr, code, out)
		}
	}
}
