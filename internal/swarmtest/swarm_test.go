package swarmtest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// TestTrackerAndSeeder brings up opentracker and a libtorrent seeder on a
// small payload and checks what the tracker sees. Downloads are the job of
// pipeline/interop_test.go.
func TestTrackerAndSeeder(t *testing.T) {
	ctx, dir, torrent, tr, hash := smokeSwarm(t, "smoke", 5)
	if want := infoHashOf(t, torrent); hash != want {
		t.Errorf("InfoHash = %s, want %s (SHA-1 of the info dictionary)", hash, want)
	}
	if err := tr.Allow(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if s, err := tr.Scrape(ctx, hash); err != nil || s != (ScrapeResult{}) {
		t.Errorf("Scrape before any peer = %+v, %v; want zeros (the Allow probe must leave)", s, err)
	}

	seeder, err := StartLibtorrentSeeder(ctx, torrent, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Stop()
	if err := tr.WaitSeeders(ctx, hash, 1); err != nil {
		t.Fatal(err)
	}
	if s, err := tr.Scrape(ctx, hash); err != nil || s.Complete != 1 || s.Incomplete != 0 {
		t.Errorf("Scrape with one seeder = %+v, %v; want 1 complete", s, err)
	}

	// A second tracker that knows the hash from the start.
	tr2, err := StartTracker(ctx, dir, hash)
	if err != nil {
		t.Fatal(err)
	}
	if tr2.Port == tr.Port {
		t.Errorf("two trackers on port %d", tr.Port)
	}
	tr2.Stop()

	seeder.Stop()
	select {
	case <-seeder.Done():
	default:
		t.Error("seeder still runs after Stop")
	}
	if b, err := os.ReadFile(seeder.LogPath); err != nil || !bytes.Contains(b, []byte("seeding port=")) {
		t.Errorf("seeder log %s: %v\n%s", seeder.LogPath, err, b)
	}
}

// TestTrackerAndSeeders runs three seeders in one libtorrent process and checks that the
// tracker counts three, each at the port the helper returned.
func TestTrackerAndSeeders(t *testing.T) {
	ctx, dir, torrent, tr, hash := smokeSwarm(t, "trio", 6)
	if err := tr.Allow(ctx, hash); err != nil {
		t.Fatal(err)
	}
	seeders, ports, err := StartLibtorrentSeeders(ctx, torrent, dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer seeders.Stop()
	if len(ports) != 3 {
		t.Fatalf("StartLibtorrentSeeders returned ports %v, want 3", ports)
	}
	if err := tr.WaitSeeders(ctx, hash, 3); err != nil {
		t.Fatal(err)
	}
	// Each session listens where it said: a handshake-less dial connects.
	for _, p := range ports {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("seeder port %d: %v", p, err)
			continue
		}
		c.Close()
	}
	if s, err := tr.Scrape(ctx, hash); err != nil || s.Complete != 3 {
		t.Errorf("Scrape with three seeders = %+v, %v; want 3 complete", s, err)
	}
}

// smokeSwarm begins a test of the harness: it skips under -short, requires opentracker,
// mktorrent and libtorrent, writes a payload of two small files under name from seed,
// starts opentracker, and makes the torrent, whose info hash it returns (not yet allowed).
func smokeSwarm(t *testing.T, name string, seed int64) (ctx context.Context, dir, torrent string, tr *Tracker, hash string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs opentracker and libtorrent")
	}
	Require(t, Opentracker, Mktorrent, Libtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	dir = t.TempDir()
	files := []FileSpec{{name + "/a.bin", 1<<20 + 3}, {name + "/sub/b.txt", 999}}
	if err := WritePayload(dir, seed, files); err != nil {
		t.Fatal(err)
	}
	tr, err := StartTracker(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	torrent = filepath.Join(dir, name+".torrent")
	if err := MakeTorrent(ctx, filepath.Join(dir, name), torrent, tr.AnnounceURL, 15); err != nil {
		t.Fatal(err)
	}
	if hash, err = InfoHash(ctx, torrent); err != nil {
		t.Fatal(err)
	}
	return ctx, dir, torrent, tr, hash
}

// infoHashOf computes the info hash without libtorrent: the SHA-1 of the info
// dictionary's bytes as they stand in the file.
func infoHashOf(t *testing.T, torrent string) string {
	t.Helper()
	b, err := os.ReadFile(torrent)
	if err != nil {
		t.Fatal(err)
	}
	info, err := bencode.DictValue(b, "info")
	if err != nil {
		t.Fatalf("%s: %v", torrent, err)
	}
	sum := sha1.Sum(info)
	return hex.EncodeToString(sum[:])
}
