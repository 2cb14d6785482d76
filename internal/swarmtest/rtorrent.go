package swarmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RTorrentAddr is the loopback address rtorrent binds and announces. It keeps one peer per
// IP address and takes a peer at its own address for itself, so on 127.0.0.1, where every
// peer of a test swarm is, it would talk to none (the notes on real peers).
const RTorrentAddr = "127.0.0.3"

// rtorrentRC is the configuration StartRTorrent writes: headless, bound to RTorrentAddr,
// no DHT, PeX or UDP trackers, and the torrent loaded and started at once.
const rtorrentRC = `directory.default.set = %s
session.path.set = %s
network.bind_address.set = %s
network.local_address.set = %s
network.port_range.set = %d-%d
network.port_random.set = no
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = no
system.daemon.set = true
load.start = %s
`

// StartRTorrent starts a headless rtorrent in dir that downloads the torrent at
// torrentPath into downloadDir, or seeds it when the data is already there (it checks it
// first). It returns the port it accepts peers on, at RTorrentAddr. It stops when ctx
// ends or Stop is called.
func StartRTorrent(ctx context.Context, dir, torrentPath, downloadDir string) (*Process, int, error) {
	port, err := FreePort()
	if err != nil {
		return nil, 0, err
	}
	session := filepath.Join(dir, "session")
	if err := os.MkdirAll(session, 0o755); err != nil {
		return nil, 0, fmt.Errorf("swarmtest: rtorrent: %w", err)
	}
	rc := filepath.Join(dir, "rtorrent.rc")
	conf := fmt.Sprintf(rtorrentRC, downloadDir, session, RTorrentAddr, RTorrentAddr, port, port, torrentPath)
	if err := os.WriteFile(rc, []byte(conf), 0o644); err != nil {
		return nil, 0, fmt.Errorf("swarmtest: rtorrent: %w", err)
	}
	p, err := Start(ctx, exec.Command("rtorrent", "-n", "-o", "import="+rc), filepath.Join(dir, "rtorrent.log"))
	if err != nil {
		return nil, 0, err
	}
	return p, port, nil
}
