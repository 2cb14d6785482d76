package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// The SIGKILL test's numbers. Each libtorrent seeder uploads at most sigkillRate, so a
// torrent of 12-16 MiB takes 30 s at least on any machine. The daemon is killed
// sigkillKills times, each time once the torrents have together verified a random 0 to
// sigkillMaxGain more pieces on disk than when it was started (0: as soon as its RPC
// listens, while it still restores its torrents); the test checks before the first kill
// that the torrents need more pieces than all the kills can take, so that every kill
// lands before the end however fast the machine is. A slow machine only takes longer.
const (
	sigkillRate    = 400 << 10 // bytes/s per seeder
	sigkillKills   = 20
	sigkillMaxGain = 10 // pieces
)

// killTorrent is one torrent of the SIGKILL test and what the test knows of it.
type killTorrent struct {
	name     string
	sizes    []int64 // file sizes; one file: a single-file torrent
	unwanted []int   // files set unwanted over RPC
	high     []int   // files set to high priority over RPC
	paused   bool    // stopped over RPC once it has a few pieces, started again at the end
	limit    int64   // a download limit (kB/s) set over RPC; 0 for none

	files []swarmtest.FileSpec
	path  string // its .torrent
	m     *metainfo.MetaInfo
	id    int    // its RPC id, as torrent-add answered
	good  []bool // pieces that hash right on disk (files, or the part file)
	need  []bool // pieces that hold bytes of a wanted file
}

func (k *killTorrent) wanted(i int) bool { return !slices.Contains(k.unwanted, i) }

// TestDaemonSIGKILL: ten torrents download from real libtorrent seeders into one daemon,
// added over RPC with a mix of settings (files unwanted, a file of high priority, one
// stopped, one with a download limit). The daemon is SIGKILLed 20 times at random piece
// counts and restarted on the same state dir. After each kill the state file is valid JSON
// that still holds every torrent with its id and settings, every resume record claims only
// pieces that hash right, and no piece that was on disk went bad. After the 20th restart
// every torrent finishes with the right bytes in its wanted files, its settings and id
// intact; the stopped one stays stopped until started over RPC.
func TestDaemonSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs opentracker, ten libtorrent seeders and the bitstorm daemon for minutes")
	}
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("runs real BitTorrent software on loopback for minutes: as root, or with CI=true")
	}
	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent, swarmtest.TransmissionRemote)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	const mib = 1 << 20
	tors := []*killTorrent{
		{name: "k0.bin", sizes: []int64{12*mib + 1000}},
		{name: "k1", sizes: []int64{4*mib + 100, 5*mib + 300, 4*mib + 700}, unwanted: []int{1}},
		{name: "k2.bin", sizes: []int64{14 * mib}},
		{name: "k3", sizes: []int64{3*mib + 5, 6*mib + 11, 3*mib + 17}, unwanted: []int{0, 2}},
		{name: "k4.bin", sizes: []int64{12*mib + 4321}, paused: true},
		{name: "k5.bin", sizes: []int64{13*mib + 77}, limit: 300},
		{name: "k6", sizes: []int64{6*mib + 1, 6*mib + 2}, unwanted: []int{0}},
		{name: "k7.bin", sizes: []int64{15 * mib}},
		{name: "k8.bin", sizes: []int64{16*mib - 999}},
		{name: "k9", sizes: []int64{2*mib + 3, 2*mib + 5, 8*mib + 7}, high: []int{2}},
	}
	payload := killSwarm(t, ctx, tors)

	dl, state, logs := t.TempDir(), t.TempDir(), t.TempDir()
	run := 0
	p, rpc := startKillDaemon(t, ctx, bin, dl, state, logs, run)
	addKillTorrents(t, ctx, p, rpc, dl, tors)

	// Before the first kill: the torrents that run need more pieces than the kills can take.
	left := 0
	for _, k := range tors {
		k.hashPieces(t, dl, func(i int) bool { return !k.good[i] })
		for i := range k.need {
			if k.need[i] && !k.good[i] && !k.paused {
				left++
			}
		}
	}
	if left <= sigkillKills*sigkillMaxGain {
		t.Fatalf("%d pieces left to download: %d kills of up to %d pieces may cover them all", left, sigkillKills, sigkillMaxGain)
	}

	rng := rand.New(rand.NewPCG(20240615, 13))
	landed, early, midSave := 0, 0, 0
	for kill := 1; kill <= sigkillKills; kill++ {
		if kill > 1 {
			run++
			p, _ = startKillDaemon(t, ctx, bin, dl, state, logs, run)
		}
		// 0 (about one kill in four): as soon as the RPC listens, the torrents being restored.
		gain := max(0, rng.IntN(sigkillMaxGain+4)-3)
		base := totalGood(tors)
		if gain > 0 {
			waitKillPieces(t, ctx, p, dl, tors, base+gain)
		}
		select {
		case <-p.Done():
			t.Fatalf("run %d: the daemon exited before its kill\n%s", run, p.Tail(30))
		default:
		}
		p.Stop() // SIGKILL to its process group
		res, _ := p.Wait()
		if res.ExitCode != -1 {
			t.Fatalf("run %d: exit %d after SIGKILL, want killed by the signal\n%s", run, res.ExitCode, p.Tail(30))
		}
		landed++
		if gain == 0 {
			early++
		}
		checkAfterKill(t, dl, state, tors)
		// A kill in the middle of a save leaves its temporary file, which the next start
		// removes: they never pile up.
		switch tmp, _ := filepath.Glob(filepath.Join(state, ".daemon.json.tmp-*")); {
		case len(tmp) > 1:
			t.Errorf("after kill %d, temporary state files pile up: %q", kill, tmp)
		case len(tmp) == 1:
			midSave++
		}
		t.Logf("kill %d: run %d after %d new pieces (wanted %d), %v; %d pieces on disk",
			kill, run, totalGood(tors)-base, gain, res.Wall.Round(time.Millisecond), totalGood(tors))
	}
	if landed != sigkillKills {
		t.Fatalf("%d kills landed, want %d", landed, sigkillKills)
	}

	t.Logf("%d kills came in the middle of a save of the state file", midSave)
	run++
	p, rpc = startKillDaemon(t, ctx, bin, dl, state, logs, run)
	finishKillTorrents(t, ctx, p, rpc, tors)
	for _, k := range tors {
		var want []swarmtest.FileSpec
		for i, f := range k.files {
			if k.wanted(i) {
				want = append(want, f)
			}
		}
		if err := swarmtest.ComparePayload(payload, dl, want); err != nil {
			t.Errorf("%s: the wanted files differ from the payload: %v", k.name, err)
		}
	}
	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Errorf("the last run after SIGTERM: %v, want exit 0", err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(state, ".daemon.json.tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary state files left after the last start: %q", tmp)
	}
	t.Logf("%d kills landed (%d as soon as the RPC listened), then every torrent finished; %v in all",
		landed, early, time.Since(start).Round(time.Second))
}

// killSwarm writes each torrent's payload, makes its .torrent, starts opentracker and one
// rate-limited libtorrent seeder per torrent, and returns the payload directory.
func killSwarm(t *testing.T, ctx context.Context, tors []*killTorrent) string {
	t.Helper()
	dir := t.TempDir()
	tr, err := swarmtest.StartTracker(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	var hashes []string
	for n, k := range tors {
		if len(k.sizes) == 1 {
			k.files = []swarmtest.FileSpec{{Path: k.name, Size: k.sizes[0]}}
		}
		for i, size := range k.sizes {
			if len(k.sizes) > 1 {
				k.files = append(k.files, swarmtest.FileSpec{Path: fmt.Sprintf("%s/f%d.bin", k.name, i), Size: size})
			}
		}
		if err := swarmtest.WritePayload(dir, int64(100+n), k.files); err != nil {
			t.Fatal(err)
		}
		k.path = filepath.Join(dir, k.name+".torrent")
		if err := swarmtest.MakeTorrent(ctx, filepath.Join(dir, k.name), k.path, tr.AnnounceURL, 18); err != nil {
			t.Fatal(err)
		}
		if k.m, err = metainfo.Load(k.path); err != nil {
			t.Fatal(err)
		}
		info := &k.m.Info
		k.good, k.need = make([]bool, info.NumPieces()), make([]bool, info.NumPieces())
		for i, f := range info.Files {
			if !k.wanted(i) || f.Length == 0 {
				continue
			}
			first, last := f.Offset/info.PieceLength, (f.Offset+f.Length-1)/info.PieceLength
			for p := first; p <= last; p++ {
				k.need[p] = true
			}
		}
		hashes = append(hashes, k.m.HexHash())
	}
	if err := tr.Allow(ctx, hashes...); err != nil {
		t.Fatal(err)
	}
	// The seeders start side by side: each waits for its interpreter and an announce.
	var wg sync.WaitGroup
	errs := make([]error, len(tors))
	for n, k := range tors {
		wg.Go(func() {
			s, err := swarmtest.StartLibtorrentSeederLimited(ctx, k.path, dir, sigkillRate)
			if err == nil {
				t.Cleanup(s.Stop)
				err = tr.WaitSeeders(ctx, k.m.HexHash(), 1)
			}
			errs[n] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startKillDaemon starts run number run of the daemon binary on dl and state, its log in
// logs, and returns once its RPC listens (the torrents may still be being restored).
func startKillDaemon(t *testing.T, ctx context.Context, bin, dl, state, logs string, run int) (*swarmtest.Process, *rpcClient) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "daemon", "--rpc-listen", addr, "--port", "0", "--listen", "127.0.0.1", "--no-dht",
		"--download-dir", dl, "--state-dir", state)
	p, err := swarmtest.Start(ctx, cmd, filepath.Join(logs, fmt.Sprintf("run-%02d.log", run)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, &rpcClient{addr: addr}
		}
		select {
		case <-p.Done():
			t.Fatalf("run %d: the daemon exited before its RPC listened\n%s", run, p.Tail(30))
		case <-ctx.Done():
			t.Fatalf("run %d: the daemon's RPC never listened: %v\n%s", run, err, p.Tail(30))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// addKillTorrents adds every torrent stopped, applies its settings, starts them, and stops
// the paused one again once it has a few pieces on disk.
func addKillTorrents(t *testing.T, ctx context.Context, p *swarmtest.Process, c *rpcClient, dl string, tors []*killTorrent) {
	t.Helper()
	for _, k := range tors {
		raw, err := os.ReadFile(k.path)
		if err != nil {
			t.Fatal(err)
		}
		res, args := c.call(t, "torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(raw), "paused": true})
		added, ok := args["torrent-added"].(map[string]any)
		if res != "success" || !ok {
			t.Fatalf("torrent-add %s: %s %v", k.name, res, args)
		}
		k.id = int(added["id"].(float64))
		set := map[string]any{"ids": []int{k.id}}
		if len(k.unwanted) > 0 {
			set["files-unwanted"] = k.unwanted
		}
		if len(k.high) > 0 {
			set["priority-high"] = k.high
		}
		if k.limit > 0 {
			set["downloadLimit"], set["downloadLimited"] = k.limit, true
		}
		if len(set) > 1 {
			if res, _ := c.call(t, "torrent-set", set); res != "success" {
				t.Fatalf("torrent-set %s: %s", k.name, res)
			}
		}
	}
	var ids []int
	var paused *killTorrent
	for _, k := range tors {
		ids = append(ids, k.id)
		if k.paused {
			paused = k
		}
	}
	if res, _ := c.call(t, "torrent-start", map[string]any{"ids": ids}); res != "success" {
		t.Fatalf("torrent-start: %s", res)
	}
	// The paused torrent has a few pieces when it is stopped, which must stay on disk.
	waitKillPieces(t, ctx, p, dl, []*killTorrent{paused}, 4)
	if res, _ := c.call(t, "torrent-stop", map[string]any{"ids": []int{paused.id}}); res != "success" {
		t.Fatalf("torrent-stop: %s", res)
	}
}

// waitKillPieces polls the files under dl until tors have at least target pieces that hash
// right, together. A piece once good is not read again here.
func waitKillPieces(t *testing.T, ctx context.Context, p *swarmtest.Process, dl string, tors []*killTorrent, target int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, k := range tors {
			k.hashPieces(t, dl, func(i int) bool { return !k.good[i] })
		}
		if totalGood(tors) >= target {
			return
		}
		select {
		case <-p.Done():
			t.Fatalf("the daemon exited with %d of %d pieces on disk\n%s", totalGood(tors), target, p.Tail(30))
		case <-ctx.Done():
			t.Fatalf("%d of %d pieces on disk: %v\n%s", totalGood(tors), target, ctx.Err(), p.Tail(30))
		case <-tick.C:
		}
	}
}

func totalGood(tors []*killTorrent) int {
	n := 0
	for _, k := range tors {
		for _, g := range k.good {
			if g {
				n++
			}
		}
	}
	return n
}

// hashPieces hashes the pieces of k that check selects, read as the daemon reads them
// (files, and the part file for files not on disk), and sets good for each.
func (k *killTorrent) hashPieces(t *testing.T, dl string, check func(i int) bool) {
	t.Helper()
	info := &k.m.Info
	r, err := resume.OpenReader(dl, info)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.UsePart(resume.PartPath(dl, k.m.InfoHash)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, info.PieceLength)
	zeros := make([]byte, 16<<10)
	for i := range info.NumPieces() {
		if !check(i) {
			continue
		}
		b := buf[:info.PieceSize(i)]
		head := b[:min(len(b), len(zeros))]
		// A piece whose first block is zeros is not written yet (the payload is random).
		if _, err := r.ReadAt(head, info.PieceOffset(i)); err != nil || bytes.Equal(head, zeros[:len(head)]) {
			k.good[i] = false
			continue
		}
		_, err := r.ReadAt(b, info.PieceOffset(i))
		k.good[i] = err == nil && sha1.Sum(b) == info.PieceHash(i)
	}
}

// checkAfterKill checks what a kill left: a state file that is valid JSON and holds every
// torrent with its id and settings, resume records that claim only pieces that hash
// right, and every piece that was on disk still there.
func checkAfterKill(t *testing.T, dl, state string, tors []*killTorrent) {
	t.Helper()
	b, err := os.ReadFile(statePath(state))
	if err != nil || !json.Valid(b) {
		t.Fatalf("state file after a kill: %v, valid JSON %v:\n%s", err, json.Valid(b), b)
	}
	st, err := loadState(state)
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[string]torrentRecord{}
	for _, rec := range st.Torrents {
		byHash[rec.Hash] = rec
	}
	if len(st.Torrents) != len(tors) {
		t.Errorf("the state file holds %d torrents, want %d", len(st.Torrents), len(tors))
	}
	for _, k := range tors {
		rec, ok := byHash[k.m.HexHash()]
		if !ok {
			t.Fatalf("%s (id %d) is gone from the state file", k.name, k.id)
		}
		if msg := k.recordDiff(rec); msg != "" {
			t.Errorf("%s in the state file: %s", k.name, msg)
		}
		before := slices.Clone(k.good)
		k.hashPieces(t, dl, func(int) bool { return true })
		for i := range before {
			if before[i] && !k.good[i] {
				t.Errorf("%s: piece %d was on disk and no longer hashes right", k.name, i)
			}
		}
		r, err := resume.Load(resume.Path(dl, k.m.InfoHash), &k.m.Info, k.m.InfoHash)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Errorf("%s: resume record: %v", k.name, err)
			continue
		}
		var bad []int
		for i := range k.good {
			if r.Pieces.Has(i) && !k.good[i] {
				bad = append(bad, i)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s: the resume record claims %d pieces that do not hash right: %v", k.name, len(bad), bad)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// recordDiff says how rec differs from what was set over RPC; "" when it does not.
func (k *killTorrent) recordDiff(rec torrentRecord) string {
	var diffs []string
	if rec.ID != k.id {
		diffs = append(diffs, fmt.Sprintf("id %d, want %d", rec.ID, k.id))
	}
	if rec.Paused != k.paused {
		diffs = append(diffs, fmt.Sprintf("paused %v, want %v", rec.Paused, k.paused))
	}
	for i := range k.sizes {
		if got := i >= len(rec.Wanted) || rec.Wanted[i]; got != k.wanted(i) {
			diffs = append(diffs, fmt.Sprintf("file %d wanted %v", i, got))
		}
		prio := transmission.PriorityNormal
		if i < len(rec.Priorities) {
			prio = rec.Priorities[i]
		}
		if want := slices.Contains(k.high, i); (prio == transmission.PriorityHigh) != want {
			diffs = append(diffs, fmt.Sprintf("file %d priority %d", i, prio))
		}
	}
	if s := rec.Settings; (k.limit > 0) != s.DownloadLimited || s.DownloadLimit != k.limit {
		diffs = append(diffs, fmt.Sprintf("download limit %d (limited %v), want %d", s.DownloadLimit, s.DownloadLimited, k.limit))
	}
	return strings.Join(diffs, "; ")
}

// finishKillTorrents checks, over RPC, that the last run has every torrent with its id
// and settings and the paused one stopped, starts that one, and waits until every torrent
// has its wanted bytes; transmission-remote then lists them all and shows the limit.
func finishKillTorrents(t *testing.T, ctx context.Context, p *swarmtest.Process, c *rpcClient, tors []*killTorrent) {
	t.Helper()
	fields := []string{"id", "hashString", "name", "status", "error", "errorString", "percentDone", "leftUntilDone",
		"wanted", "priorities", "downloadLimit", "downloadLimited"}
	got := c.torrentGet(t, fields...)
	if len(got) != len(tors) {
		t.Fatalf("torrent-get lists %d torrents after the last restart, want %d", len(got), len(tors))
	}
	byHash := map[string]map[string]any{}
	for _, g := range got {
		byHash[g["hashString"].(string)] = g
	}
	var paused *killTorrent
	for _, k := range tors {
		g := byHash[k.m.HexHash()]
		if g == nil {
			t.Fatalf("%s is gone after the last restart", k.name)
		}
		if int(g["id"].(float64)) != k.id {
			t.Errorf("%s: id %v, want %d", k.name, g["id"], k.id)
		}
		if stopped := g["status"].(float64) == float64(transmission.StatusStopped); stopped != k.paused {
			t.Errorf("%s: status %v, want stopped %v", k.name, g["status"], k.paused)
		}
		wanted, prios := g["wanted"].([]any), g["priorities"].([]any)
		for i := range k.sizes {
			if w := wanted[i].(float64) == 1; w != k.wanted(i) {
				t.Errorf("%s: file %d wanted %v", k.name, i, w)
			}
			if h := prios[i].(float64) == float64(transmission.PriorityHigh); h != slices.Contains(k.high, i) {
				t.Errorf("%s: file %d priority %v", k.name, i, prios[i])
			}
		}
		if g["downloadLimit"].(float64) != float64(k.limit) || g["downloadLimited"].(bool) != (k.limit > 0) {
			t.Errorf("%s: download limit %v (limited %v), want %d", k.name, g["downloadLimit"], g["downloadLimited"], k.limit)
		}
		if k.paused {
			paused = k
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if res, _ := c.call(t, "torrent-start", map[string]any{"ids": []int{paused.id}}); res != "success" {
		t.Fatalf("torrent-start: %s", res)
	}
	for {
		got = c.torrentGet(t, fields...)
		done := 0
		for _, g := range got {
			if g["error"].(float64) != 0 {
				t.Fatalf("torrent %v: error %v", g["name"], g["errorString"])
			}
			if g["percentDone"].(float64) == 1 && g["leftUntilDone"].(float64) == 0 {
				done++
			}
		}
		if done == len(tors) {
			break
		}
		select {
		case <-p.Done():
			t.Fatalf("the daemon exited with %d of %d torrents done\n%s", done, len(tors), p.Tail(30))
		case <-ctx.Done():
			t.Fatalf("%d of %d torrents done: %v: %v", done, len(tors), ctx.Err(), got)
		case <-time.After(250 * time.Millisecond):
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "transmission-remote", c.addr, "-l").CombinedOutput()
	if rows := strings.Count(string(out), "100%"); err != nil || rows != len(tors) {
		t.Errorf("transmission-remote -l: %v, %d rows at 100%%, want %d:\n%s", err, rows, len(tors), out)
	}
	for _, k := range tors {
		if k.limit == 0 {
			continue
		}
		out, err := exec.CommandContext(cctx, "transmission-remote", c.addr, "-t", fmt.Sprint(k.id), "-i").CombinedOutput()
		if want := fmt.Sprintf("Download Limit: %d kB/s", k.limit); err != nil || !strings.Contains(string(out), want) {
			t.Errorf("transmission-remote -t %d -i: %v, lacks %q:\n%s", k.id, err, want, out)
		}
	}
}

// TestDaemonSIGKILLDuringRestore: a torrent that completes while the daemon restores its
// torrents must not have the state file saved with only the torrents restored so far: a
// kill at that moment would lose the others. The state holds a complete torrent whose
// completion was never saved (a kill came first) and many stopped ones; the daemon is
// killed at its first write of the state file, which must list them all. Temporary files
// that earlier kills left in the state dir are gone once it has started.
func TestDaemonSIGKILLDuringRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	root, state, logs := t.TempDir(), t.TempDir(), t.TempDir()
	const n = 150
	st := daemonState{Version: stateVersion, Session: transmission.SessionSettings{DownloadDir: root, StartAddedTorrents: true}}
	for i := range n {
		tor := stagetest.NewTorrent(t, uint64(1000+i), fmt.Sprintf("restored-%03d", i), 16<<10, 20_000)
		file := torrentPath(tor.Meta.InfoHash)
		if err := os.MkdirAll(filepath.Join(state, "torrents"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(state, file), tor.Raw, 0o644); err != nil {
			t.Fatal(err)
		}
		rec := torrentRecord{ID: i + 1, Hash: tor.Meta.HexHash(), Name: tor.Meta.Info.Name, TorrentFile: file,
			DownloadDir: root, Paused: i > 0, Added: time.Now().Unix(), Settings: transmission.TorrentSettings{PeerLimit: 50}}
		if i == 0 {
			writeFiles(t, root, tor) // complete on disk; Done is 0: it completes again at the restore
		}
		st.Torrents = append(st.Torrents, rec)
	}
	before, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath(state), before, 0o644); err != nil {
		t.Fatal(err)
	}
	// What kills in the middle of writes left: a start removes it.
	stale := []string{filepath.Join(state, ".daemon.json.tmp-123"), filepath.Join(state, "torrents", ".abc.torrent.tmp-456")}
	for _, f := range stale {
		if err := os.WriteFile(f, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	p, _ := startKillDaemon(t, ctx, bin, root, state, logs, 0)
	var seen []byte
	for seen == nil {
		if b, err := os.ReadFile(statePath(state)); err == nil && !bytes.Equal(b, before) {
			seen = b
			break
		}
		select {
		case <-p.Done():
			t.Fatalf("the daemon exited\n%s", p.Tail(30))
		case <-ctx.Done():
			t.Fatalf("the state file never changed\n%s", p.Tail(30))
		case <-time.After(time.Millisecond):
		}
	}
	p.Stop() // SIGKILL at the first write
	for _, f := range stale {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after a start: %v, want removed", f, err)
		}
	}
	var got daemonState
	if err := json.Unmarshal(seen, &got); err != nil || len(got.Torrents) != n {
		t.Errorf("the first write of the state file during the restore holds %d torrents (%v), want %d", len(got.Torrents), err, n)
	}
	p, c := startKillDaemon(t, ctx, bin, root, state, logs, 1)
	if got := c.torrentGet(t, "id"); len(got) != n {
		t.Fatalf("after the kill, the daemon has %d torrents, want %d", len(got), n)
	}
	p.Stop()
}
