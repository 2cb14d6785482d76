package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/bitstorm/bitstorm/internal/create"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
)

// The RPC table: how long `bitstorm daemon` takes to answer torrent-get with many torrents
// loaded. -rpc-torrents one-file torrents of -rpc-kib KiB of seeded random data, already on
// disk, are added over the RPC (torrent-add, its time counted too), every other one
// stopped; the others recheck and seed (no tracker, no DHT: nobody connects). Once they
// all seed, -rpc-calls torrent-get requests are sent one after another over one kept-alive
// connection for each row: the fields transmission-remote -l asks, every field of the
// spec, and every field of one torrent; each is timed from the request to the last byte of
// the reply. The daemon's CPU per call is from /proc over the row, its idle CPU included
// (printed before the rows).
//
//	go run ./internal/swarmtest/cmd/bench -bitstorm bin/bitstorm -rpc-only [-rpc-torrents 1000] [-rpc-calls 200]

var rpcFlags struct {
	on, only bool
	torrents int
	kib      int
	calls    int
}

func init() {
	flag.BoolVar(&rpcFlags.on, "rpc", true, "also run the RPC table (rpc.go): torrent-get latency of bitstorm daemon with many torrents")
	flag.BoolVar(&rpcFlags.only, "rpc-only", false, "run only the RPC table")
	flag.IntVar(&rpcFlags.torrents, "rpc-torrents", 1000, "the RPC table's torrents in the daemon")
	flag.IntVar(&rpcFlags.kib, "rpc-kib", 64, "the RPC table's torrents: KiB of each (16 KiB pieces)")
	flag.IntVar(&rpcFlags.calls, "rpc-calls", 200, "the RPC table's torrent-get calls per row")
}

// listFields are what transmission-remote 3.00 -l asks for (captured from its request).
var listFields = []string{"error", "errorString", "eta", "id", "isFinished", "leftUntilDone", "name",
	"peersGettingFromUs", "peersSendingToUs", "rateDownload", "rateUpload", "sizeWhenDone", "status", "uploadRatio"}

// allFields are every torrent-get field of the RPC spec (transmission 3.00, section 3.3).
var allFields = []string{"activityDate", "addedDate", "bandwidthPriority", "comment", "corruptEver", "creator",
	"dateCreated", "desiredAvailable", "doneDate", "downloadDir", "downloadedEver", "downloadLimit", "downloadLimited",
	"editDate", "error", "errorString", "eta", "etaIdle", "files", "fileStats", "hashString", "haveUnchecked", "haveValid",
	"honorsSessionLimits", "id", "isFinished", "isPrivate", "isStalled", "labels", "leftUntilDone", "magnetLink",
	"manualAnnounceTime", "maxConnectedPeers", "metadataPercentComplete", "name", "peer-limit", "peers", "peersConnected",
	"peersFrom", "peersGettingFromUs", "peersSendingToUs", "percentDone", "pieces", "pieceCount", "pieceSize", "priorities",
	"queuePosition", "rateDownload", "rateUpload", "recheckProgress", "secondsDownloading", "secondsSeeding",
	"seedIdleLimit", "seedIdleMode", "seedRatioLimit", "seedRatioMode", "sizeWhenDone", "startDate", "status",
	"trackers", "trackerStats", "totalSize", "torrentFile", "uploadedEver", "uploadLimit", "uploadLimited",
	"uploadRatio", "wanted", "webseeds", "webseedsSendingToUs"}

// rpcOnly is run for -rpc-only: the RPC table alone.
func rpcOnly(ctx context.Context, cfg config) error {
	dir, done, err := benchDir(cfg)
	if err != nil {
		return err
	}
	defer done()
	return rpcTable(ctx, cfg, dir)
}

// rpcTable loads the daemon, prints the table and stops the daemon.
func rpcTable(ctx context.Context, cfg config, dir string) error {
	bin, err := filepath.Abs(cfg.bitstorm)
	if err != nil {
		return err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return fmt.Errorf("no bitstorm binary at %s (make build)", bin)
	}
	n := rpcFlags.torrents
	if n < 1 || rpcFlags.calls < 1 || rpcFlags.kib < 1 {
		return errors.New("rpc table: -rpc-torrents, -rpc-calls and -rpc-kib must be at least 1")
	}
	rdir := filepath.Join(dir, "rpc")
	data, state := filepath.Join(rdir, "data"), filepath.Join(rdir, "state")
	for _, d := range []string{data, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	fmt.Printf("\nrpc: bitstorm daemon with %d torrents of %d KiB (every other one stopped), torrent-get %d times per row, one at a time\n",
		n, rpcFlags.kib, rpcFlags.calls)
	torrents, err := rpcTorrents(ctx, data, n, int64(rpcFlags.kib)<<10)
	if err != nil {
		return err
	}

	port, err := swarmtest.FreePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "daemon", "--rpc-listen", addr, "--port", "0", "--listen", "127.0.0.1", "--no-dht", "--quiet",
		"--download-dir", data, "--state-dir", state)
	p, err := swarmtest.Start(ctx, cmd, filepath.Join(rdir, "daemon.log"))
	if err != nil {
		return err
	}
	defer p.Stop()
	c := &rpcConn{url: "http://" + addr + "/transmission/rpc", client: &http.Client{Timeout: time.Minute}}
	if err := waitListening(ctx, p, addr); err != nil {
		return err
	}

	// Add them all; the adds are timed too.
	var adds []time.Duration
	t0 := time.Now()
	for i, raw := range torrents {
		args := map[string]any{"metainfo": base64.StdEncoding.EncodeToString(raw), "paused": i%2 == 1}
		d, _, err := c.timed(ctx, "torrent-add", args)
		if err != nil {
			return fmt.Errorf("rpc table: torrent-add %d: %w", i, err)
		}
		adds = append(adds, d)
	}
	addWall := time.Since(t0)
	// Wait until the running half seeds: their rechecks are done.
	for {
		var r struct {
			Torrents []struct {
				Status int `json:"status"`
			} `json:"torrents"`
		}
		if err := c.call(ctx, "torrent-get", map[string]any{"fields": []string{"status"}}, &r); err != nil {
			return err
		}
		seeding := 0
		for _, t := range r.Torrents {
			if t.Status == 6 {
				seeding++
			}
		}
		if len(r.Torrents) != n {
			return fmt.Errorf("rpc table: the daemon lists %d torrents, want %d", len(r.Torrents), n)
		}
		if seeding == (n+1)/2 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rpc table: %d of %d torrents seeding: %w", seeding, (n+1)/2, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("  torrent-add x%d: %.1f s in all; each p50 %s, p99 %s, max %s (the state file is rewritten after each)\n",
		n, addWall.Seconds(), msec(percentile(adds, 50)), msec(percentile(adds, 99)), msec(slices.Max(adds)))

	// The daemon's own CPU with nothing asked (1000 torrents, a sampler each second): the
	// CPU per call below includes it over the row's time.
	idle0, t1 := procCPU(p.PID()), time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(3 * time.Second):
	}
	fmt.Printf("  daemon idle: %.1f%% of a core\n", 100*float64(procCPU(p.PID())-idle0)/float64(time.Since(t1)))

	const rpcRowFormat = "  %-38s  %9s  %9s  %9s  %10s  %14s\n"
	fmt.Printf(rpcRowFormat, "torrent-get", "p50", "p99", "max", "reply", "daemon CPU/call")
	rows := []struct {
		name string
		args map[string]any
	}{
		{fmt.Sprintf("-l's %d fields, all torrents", len(listFields)), map[string]any{"fields": listFields}},
		{fmt.Sprintf("all %d spec fields, all torrents", len(allFields)), map[string]any{"fields": allFields}},
		{"all fields, one torrent (ids [n/2])", map[string]any{"fields": allFields, "ids": []int{n / 2}}},
	}
	for _, row := range rows {
		for range 5 { // warm up the connection and the daemon
			if _, _, err := c.timed(ctx, "torrent-get", row.args); err != nil {
				return err
			}
		}
		var ds []time.Duration
		var size int
		cpu0 := procCPU(p.PID())
		for range rpcFlags.calls {
			d, reply, err := c.timed(ctx, "torrent-get", row.args)
			if err != nil {
				return fmt.Errorf("rpc table: %s: %w", row.name, err)
			}
			ds, size = append(ds, d), len(reply)
		}
		cpu := (procCPU(p.PID()) - cpu0) / time.Duration(rpcFlags.calls)
		fmt.Printf(rpcRowFormat, row.name, msec(percentile(ds, 50)), msec(percentile(ds, 99)), msec(slices.Max(ds)),
			fmt.Sprintf("%.0f KiB", float64(size)/1024), msec(cpu))
	}

	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		return err
	}
	if _, err := p.Wait(); err != nil {
		return fmt.Errorf("rpc table: the daemon after SIGTERM: %w", err)
	}
	return nil
}

// rpcTorrents writes n one-file payloads of size bytes into data and returns a .torrent
// of each (16 KiB pieces, no tracker).
func rpcTorrents(ctx context.Context, data string, n int, size int64) ([][]byte, error) {
	specs := make([]swarmtest.FileSpec, n)
	for i := range specs {
		specs[i] = swarmtest.FileSpec{Path: fmt.Sprintf("rpc%04d.bin", i), Size: size}
	}
	if err := swarmtest.WritePayload(data, 16, specs); err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i, s := range specs {
		b, err := create.Build(ctx, filepath.Join(data, s.Path), create.Options{PieceLength: 16 << 10, NoDate: true})
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// waitListening waits until addr accepts connections, p exits, or ctx ends.
func waitListening(ctx context.Context, p *swarmtest.Process, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("rpc table: the daemon exited\n%s", p.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("rpc table: the daemon's RPC never listened: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rpcConn speaks Transmission's RPC, session id handshake included.
type rpcConn struct {
	url    string
	client *http.Client
	sid    string
}

// timed sends one request and returns the time to the reply's last byte and the reply.
// A 409 (session id) is answered and the request sent again, untimed.
func (c *rpcConn) timed(ctx context.Context, method string, args any) (time.Duration, []byte, error) {
	body, err := json.Marshal(map[string]any{"method": method, "arguments": args})
	if err != nil {
		return 0, nil, err
	}
	for range 2 {
		req, err := http.NewRequestWithContext(ctx, "POST", c.url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("X-Transmission-Session-Id", c.sid)
		t0 := time.Now()
		resp, err := c.client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		reply, err := io.ReadAll(resp.Body)
		d := time.Since(t0)
		resp.Body.Close()
		if err != nil {
			return 0, nil, err
		}
		switch resp.StatusCode {
		case http.StatusConflict:
			c.sid = resp.Header.Get("X-Transmission-Session-Id")
			continue
		case http.StatusOK:
		default:
			return 0, nil, fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, reply)
		}
		if !bytes.Contains(reply, []byte(`"result":"success"`)) {
			return 0, nil, fmt.Errorf("%s: %.200s", method, reply)
		}
		return d, reply, nil
	}
	return 0, nil, fmt.Errorf("%s: HTTP 409 twice", method)
}

// call sends one request and decodes the reply's arguments into v.
func (c *rpcConn) call(ctx context.Context, method string, args, v any) error {
	_, reply, err := c.timed(ctx, method, args)
	if err != nil {
		return err
	}
	var r struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return err
	}
	return json.Unmarshal(r.Arguments, v)
}

// percentile is the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

func msec(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
