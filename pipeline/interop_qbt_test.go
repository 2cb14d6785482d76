package pipeline_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// TestInteropQBittorrent trades a multi-file torrent with qBittorrent (qbittorrent-nox,
// libtorrent inside) both ways: qBittorrent downloads it from a BitStorm seeder, then,
// the BitStorm seeder gone, a BitStorm leecher downloads it from qBittorrent alone. The
// bytes must match each time.
func TestInteropQBittorrent(t *testing.T) {
	ctx, bin, sw, seeder, seedPort := bitstormSeededSwarm(t, 20241126, swarmtest.QBittorrent)
	qbt, err := swarmtest.StartQBittorrent(ctx, filepath.Join(t.TempDir(), "qbt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(qbt.Stop)

	// qBittorrent leeches from the BitStorm seeder, which it finds through opentracker
	// and is also given directly.
	qbtOut := t.TempDir()
	if err := qbt.Add(ctx, sw.torrent, qbtOut); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	if err := qbt.AddPeers(ctx, sw.hash, "127.0.0.1:"+strconv.Itoa(seedPort)); err != nil {
		t.Logf("addPeers: %v (it may not know the torrent yet; opentracker still tells it)", err)
	}
	for {
		st, err := qbt.Torrent(ctx, sw.hash)
		if err == nil && st.Progress >= 1 {
			break
		}
		if err == nil && st.State == "error" {
			t.Fatalf("qBittorrent: torrent in error state\n%s", qbt.Tail(20))
		}
		sleepOrFail(t, ctx, 100*time.Millisecond, func() string {
			return "qBittorrent did not finish\nqbittorrent:\n" + qbt.Tail(20) + "\nbitstorm seeder:\n" + seeder.Tail(20)
		})
	}
	size := float64(swarmtest.TotalSize(seedFiles)) / (1 << 20)
	t.Logf("qBittorrent from the bitstorm seeder: %.1f MiB in %.2fs from the add", size, time.Since(added).Seconds())
	if err := swarmtest.ComparePayload(sw.dir, qbtOut, seedFiles); err != nil {
		t.Fatalf("qBittorrent's files differ from the payload:\n%v", err)
	}
	seeder.Stop()

	// Now qBittorrent seeds, and a BitStorm leecher takes the torrent from it alone.
	leechFromOnly(t, ctx, bin, sw, "qBittorrent", "127.0.0.1:"+strconv.Itoa(qbt.PeerPort), func() string { return qbt.Tail(20) })
}
