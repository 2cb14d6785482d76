package swarmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// QBittorrentClient is a qbittorrent-nox (qBittorrent 4.5, libtorrent inside) with a
// profile of its own, driven through its Web API on 127.0.0.1.
type QBittorrentClient struct {
	*Process
	// PeerPort is where it accepts peers, on 127.0.0.1 only.
	PeerPort int
	api      string
	client   *http.Client
}

// qbtConfig is the profile StartQBittorrent writes before the first start (the notes on
// real peers): the legal notice accepted, peers on the loopback interface only, no DHT,
// LSD, PeX or UPnP, several connections per IP (every peer is 127.0.0.1 here), and the Web
// UI on 127.0.0.1 without a login from localhost.
const qbtConfig = `[LegalNotice]
Accepted=true

[BitTorrent]
Session\Port=%d
Session\Interface=lo
Session\InterfaceName=lo
Session\InterfaceAddress=127.0.0.1
Session\DHTEnabled=false
Session\LSDEnabled=false
Session\PeXEnabled=false
Session\MultiConnectionsPerIp=true

[Preferences]
WebUI\Address=127.0.0.1
WebUI\Port=%d
WebUI\LocalHostAuth=false
WebUI\CSRFProtection=false
WebUI\HostHeaderValidation=false
Connection\UPnP=false
`

// StartQBittorrent starts qbittorrent-nox with a fresh profile in dir and returns once
// its Web API answers. It stops when ctx ends or Stop is called.
func StartQBittorrent(ctx context.Context, dir string) (*QBittorrentClient, error) {
	peerPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	webPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "qBittorrent", "config")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return nil, fmt.Errorf("swarmtest: qbittorrent profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(conf, "qBittorrent.conf"), fmt.Appendf(nil, qbtConfig, peerPort, webPort), 0o644); err != nil {
		return nil, fmt.Errorf("swarmtest: qbittorrent profile: %w", err)
	}
	p, err := Start(ctx, exec.Command("qbittorrent-nox", "--profile="+dir), filepath.Join(dir, "qbittorrent.log"))
	if err != nil {
		return nil, err
	}
	q := &QBittorrentClient{Process: p, PeerPort: peerPort,
		api: fmt.Sprintf("http://127.0.0.1:%d/api/v2", webPort), client: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := q.call(ctx, "GET", "/app/version", nil, ""); err == nil {
			return q, nil
		} else if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("swarmtest: qbittorrent's Web API never answered: %v%s", err, p.tailSuffix())
		}
		select {
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-p.Done():
			return nil, fmt.Errorf("swarmtest: qbittorrent-nox exited%s", p.tailSuffix())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call sends one request to the Web API and returns the body of a 200 answer.
func (q *QBittorrentClient) call(ctx context.Context, method, path string, body io.Reader, contentType string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, q.api+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := q.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("swarmtest: qbittorrent %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("swarmtest: qbittorrent %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("swarmtest: qbittorrent %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// Add adds the torrent in the file torrentPath, to be downloaded into (or seeded from) saveDir.
func (q *QBittorrentClient) Add(ctx context.Context, torrentPath, saveDir string) error {
	data, err := os.ReadFile(torrentPath)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, err := w.CreateFormFile("torrents", filepath.Base(torrentPath))
	if err != nil {
		return err
	}
	fw.Write(data)
	w.WriteField("savepath", saveDir)
	w.WriteField("autoTMM", "false")
	w.Close()
	b, err := q.call(ctx, "POST", "/torrents/add", &body, w.FormDataContentType())
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(b)); s != "Ok." {
		return fmt.Errorf("swarmtest: qbittorrent refused the torrent: %q", s)
	}
	return nil
}

// AddPeers has qBittorrent connect to peers (host:port) for the torrent infoHash (hex).
func (q *QBittorrentClient) AddPeers(ctx context.Context, infoHash string, peers ...string) error {
	form := url.Values{"hashes": {infoHash}, "peers": {strings.Join(peers, "|")}}
	_, err := q.call(ctx, "POST", "/torrents/addPeers", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	return err
}

// QBittorrentTorrent is what the Web API says of one torrent.
type QBittorrentTorrent struct {
	Progress   float64 `json:"progress"` // 0 to 1
	State      string  `json:"state"`    // "downloading", "uploading", "stalledUP", "error", ...
	Downloaded int64   `json:"downloaded"`
	Uploaded   int64   `json:"uploaded"`
	NumSeeds   int     `json:"num_seeds"`
}

// Torrent returns the state of the torrent infoHash (hex).
func (q *QBittorrentClient) Torrent(ctx context.Context, infoHash string) (QBittorrentTorrent, error) {
	b, err := q.call(ctx, "GET", "/torrents/info?hashes="+infoHash, nil, "")
	if err != nil {
		return QBittorrentTorrent{}, err
	}
	var ts []QBittorrentTorrent
	if err := json.Unmarshal(b, &ts); err != nil {
		return QBittorrentTorrent{}, fmt.Errorf("swarmtest: qbittorrent torrents/info: %w", err)
	}
	if len(ts) != 1 {
		return QBittorrentTorrent{}, fmt.Errorf("swarmtest: qbittorrent knows %d torrents of hash %s", len(ts), infoHash)
	}
	return ts[0], nil
}
