package pipeline_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// The reconnect test's addresses.
const (
	backSeeder   = "10.77.3.10"
	backBitstorm = "10.77.3.20"
)

var backFiles = []swarmtest.FileSpec{
	{Path: "backswarm/a.bin", Size: 4<<20 + 4321},
	{Path: "backswarm/b.bin", Size: 2<<20 - 99},
}

// backSeederLimit is the seeder's upload rate limit (bytes per second): the 6 MiB take at
// least 12 s, so the download is always far from complete when the test stops the seeder
// at a quarter of the pieces, on a fast machine as on a slow one.
const backSeederLimit = 512 << 10

// TestInteropSeederComesBack: bitstorm downloads from its one peer, a rate-limited
// libtorrent seeder; once a quarter of the pieces are on disk (counted by hashing the
// files, not by a timer) the seeder is killed, and then started again on the same address
// and port. bitstorm, which learned the address once (--peer; no tracker, no DHT), must
// dial it again from its peer list, which retries a peer that worked after it
// disconnects, and complete with the payload's bytes.
func TestInteropSeederComesBack(t *testing.T) {
	n := newPeerNet(t, 3*time.Minute, 20250711, backFiles, backBitstorm, backSeeder)
	info := &n.meta.Info
	pieces := info.NumPieces()
	limit := []string{"--upload-limit", fmt.Sprint(backSeederLimit)}
	seeder := n.seeder(t, "lt-seed-1.log", backSeeder, limit...)

	out := filepath.Join(n.dir, "out")
	seederAddr := backSeeder + ":" + peerPort
	leech := n.download(t, "bitstorm.log", backBitstorm, out, "--peer", seederAddr)
	good := make([]bool, pieces)
	if !waitPieces(t, n.ctx, leech, info, out, good, pieces/4) {
		t.Fatalf("bitstorm ended before %d of %d pieces were on disk (context: %v)\n%s\nseeder:\n%s",
			pieces/4, pieces, n.ctx.Err(), leech.Tail(30), seeder.Tail(10))
	}
	seeder.Stop()
	hashPieces(t, info, out, good, func(i int) bool { return !good[i] })
	atStop := count(good)
	if atStop >= pieces {
		t.Fatalf("all %d pieces were on disk when the seeder stopped: nothing is left to reconnect for", pieces)
	}
	if exited(leech) {
		t.Fatalf("bitstorm exited with the seeder\n%s", leech.Tail(30))
	}
	before := connections(leech.LogPath, seederAddr)
	if before == 0 {
		t.Fatalf("no connection to the seeder in bitstorm's log\n%s", leech.Tail(30))
	}

	again := n.seeder(t, "lt-seed-2.log", backSeeder, limit...)
	res, err := leech.Wait()
	if err != nil || n.ctx.Err() != nil {
		t.Fatalf("bitstorm download: %v (context: %v)\n%s\nrestarted seeder:\n%s", err, n.ctx.Err(),
			leech.Tail(30), again.Tail(10))
	}
	if err := swarmtest.ComparePayload(n.dir, out, backFiles); err != nil {
		t.Fatalf("the files differ from the payload:\n%v", err)
	}
	if after := connections(leech.LogPath, seederAddr); after <= before {
		t.Fatalf("bitstorm completed with no connection to the restarted seeder (%d before the stop, %d in all)", before, after)
	}
	t.Logf("seeder stopped with %d of %d pieces on disk; bitstorm reconnected and completed in %.2fs",
		atStop, pieces, res.Wall.Seconds())
}
