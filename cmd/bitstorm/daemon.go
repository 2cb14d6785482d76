package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

// The daemon: a pipeline.Session that runs until SIGTERM or Ctrl-C, driven over
// Transmission's RPC (internal/transmission) by transmission-remote and the apps made for
// transmission-daemon. Its torrents and their settings live in <state-dir>/daemon.json
// (daemon_state.go), their .torrent files in <state-dir>/torrents/, their resume records
// beside their data as for every command. daemon_backend.go holds the torrents over the
// session, daemon_rpc.go is the RPC's Backend, daemon_view.go what torrent-get reads,
// daemon_stats.go the events and counters, daemon_files.go the file selection, and
// daemon_watch.go adds the .torrent files dropped into --watch-dir.

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run torrents in the background, driven over Transmission's RPC (transmission-remote, its web client and apps); stops on SIGTERM or Ctrl-C",
		Description: "Torrents, their settings and progress survive a restart: the state is kept in --state-dir.\n" +
			"The RPC listens on loopback unless --rpc-auth is set. Over RPC, torrents are added from magnet links,\n" +
			".torrent contents (transmission-remote -a FILE sends them) or .torrent files inside --download-dir;\n" +
			"download directories must be inside --download-dir. No URL is ever fetched.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "download-dir", Usage: "download into `DIR`, the root of every download directory the RPC may choose", Required: true},
			&cli.StringFlag{Name: "state-dir", Usage: "keep the daemon's state, the torrents' .torrent files and the DHT table in `DIR` (default $XDG_STATE_HOME/bitstorm or ~/.local/state/bitstorm)"},
			&cli.StringFlag{Name: "rpc-listen", Value: "127.0.0.1:9091", Usage: "serve the RPC at http://`ADDR`/transmission/rpc; beyond loopback only with --rpc-auth"},
			&cli.StringFlag{Name: "rpc-auth", Usage: "require HTTP Basic credentials `USER:PASS` of every RPC request"},
			&cli.StringSliceFlag{Name: "rpc-host-whitelist", Usage: "also accept RPC requests whose Host header is `NAME` (besides localhost and IP addresses; DNS rebinding defence); repeatable"},
			&cli.StringFlag{Name: "watch-dir", Usage: "add every .torrent file dropped into `DIR`, renamed to .added once added"},
			&cli.UintFlag{Name: "port", Aliases: []string{"p"}, Value: 51413, Usage: "port to accept peers on and announce; 0 picks a free one"},
			&cli.StringFlag{Name: "listen", Usage: "accept peers on this IP address only (e.g. 127.0.0.1); default every interface"},
			&cli.IntFlag{Name: "max-peers", Value: 50, Usage: "connections per torrent (the default of peer-limit-per-torrent)"},
			&cli.IntFlag{Name: "upload-slots", Value: 4, Usage: "peers each torrent uploads to at once"},
			&cli.BoolFlag{Name: "no-dht", Usage: "do not use the DHT (BEP 5); private torrents never do"},
			&cli.StringSliceFlag{Name: "dht-bootstrap", Usage: "ask this DHT node (`HOST:PORT`) when the routing table is empty; repeatable"},
			&cli.StringFlag{Name: "encryption", Value: "prefer", Usage: "protocol encryption (MSE/PE): prefer, require or off"},
		}, daemonLogFlags()...),
		Action: runDaemon,
	}
}

// daemonFlags are the daemon's flags, checked.
type daemonFlags struct {
	root, stateDir, watchDir string
	rpcAddr                  string
	user, pass               string
	hosts                    []string
	peerAddr                 string
	cfg                      pipeline.Config
	slots                    int
}

func parseDaemonFlags(c *cli.Context) (*daemonFlags, error) {
	f := &daemonFlags{rpcAddr: c.String("rpc-listen"), hosts: c.StringSlice("rpc-host-whitelist"), slots: c.Int("upload-slots")}
	if c.NArg() > 0 {
		return nil, fmt.Errorf("daemon: unexpected arguments %q: add torrents over RPC or with --watch-dir", c.Args().Slice())
	}
	if auth := c.String("rpc-auth"); auth != "" {
		var ok bool
		if f.user, f.pass, ok = strings.Cut(auth, ":"); !ok || f.user == "" || f.pass == "" {
			return nil, errors.New("daemon: --rpc-auth: want USER:PASS, both not empty")
		}
	}
	host, _, err := net.SplitHostPort(f.rpcAddr)
	if err != nil {
		return nil, fmt.Errorf("daemon: --rpc-listen %q: %w", f.rpcAddr, err)
	}
	if !isLoopback(host) && f.user == "" {
		return nil, fmt.Errorf("daemon: --rpc-listen %s is reachable beyond this machine: set --rpc-auth USER:PASS, or listen on 127.0.0.1", f.rpcAddr)
	}
	if c.Uint("port") > 65535 {
		return nil, fmt.Errorf("daemon: --port %d: must be 0-65535", c.Uint("port"))
	}
	f.peerAddr = fmt.Sprintf(":%d", c.Uint("port"))
	if ip := c.String("listen"); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("daemon: --listen %q: want an IP address such as 127.0.0.1 or ::1", ip)
		}
		f.peerAddr = netip.AddrPortFrom(a, uint16(c.Uint("port"))).String()
	}
	if c.Int("max-peers") < 1 || f.slots < 1 {
		return nil, errors.New("daemon: --max-peers and --upload-slots must be at least 1")
	}
	enc, err := stages.ParseEncryption(c.String("encryption"))
	if err != nil {
		return nil, fmt.Errorf("daemon: --%w", err)
	}
	// Seed: a torrent seeds once complete until it is stopped, as transmission's do.
	f.cfg = pipeline.Config{MaxPeers: c.Int("max-peers"), Seed: true, Encryption: enc}
	if f.root, err = realDir(c.String("download-dir"), "--download-dir"); err != nil {
		return nil, err
	}
	sd := stateDir(c.String("state-dir"))
	if sd == "" {
		return nil, errors.New("daemon: no --state-dir and no home directory to keep the state in")
	}
	if f.stateDir, err = realDir(sd, "--state-dir"); err != nil {
		return nil, err
	}
	if w := c.String("watch-dir"); w != "" {
		if f.watchDir, err = realDir(w, "--watch-dir"); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// realDir creates dir when missing and returns it absolute, symbolic links resolved.
func realDir(dir, flag string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("daemon: %s: %w", flag, err)
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", fmt.Errorf("daemon: %s: %w", flag, err)
	}
	return abs, nil
}

// isLoopback reports whether host (of an address to listen on) is reachable from this
// machine only. An empty host or a name other than localhost is not.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func runDaemon(c *cli.Context) error {
	f, err := parseDaemonFlags(c)
	if err != nil {
		return err
	}
	log, runsLog, err := daemonLogger(c, os.Stderr)
	if err != nil {
		return err
	}

	unlock, err := lockStateDir(f.stateDir)
	if err != nil {
		return err
	}
	defer unlock()
	removeStaleTemps(f.stateDir)
	st, err := loadState(f.stateDir)
	if err != nil {
		return err
	}
	// The RPC port is taken before anything starts, so that a port in use costs nothing.
	rpcLn, err := net.Listen("tcp", f.rpcAddr)
	if err != nil {
		return fmt.Errorf("daemon: --rpc-listen: %w", err)
	}
	defer rpcLn.Close()

	d := newDaemon(f, log, st)
	sc := pipeline.SessionConfig{ListenAddr: f.peerAddr, PeerID: d.cfg.PeerID, Log: runsLog, Defaults: d.cfg, Events: d.event}
	sc.DownloadLimit, sc.UploadLimit = sessionLimits(d.settings) // daemon_limits.go
	// peer-limit-global and the queues (daemon_queue.go)
	sc.MaxConns, sc.MaxActiveDownloads, sc.MaxActiveSeeds = sessionQueue(d.settings)
	if node := startDHT(c, pipeline.Config{ListenAddr: f.peerAddr}, log); node != nil {
		defer node.Close()
		sc.DHT = node
		d.info.DHTEnabled = true
	}
	sess, err := pipeline.NewSession(sc)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.start(sess)
	d.restore(st)

	rpc := transmission.NewServer(transmission.Config{Backend: d, Username: f.user, Password: f.pass, AllowedHosts: f.hosts})
	events := newEventStreams(rpc)
	srv := &http.Server{
		// The RPC, and the web page beside it (daemon_web.go).
		Handler:           d.rpcHandler(webHandler(rpc, events)),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
	}
	srv.RegisterOnShutdown(events.close) // the page's event streams end, or Shutdown would wait for them
	served := make(chan error, 1)
	go func() { served <- srv.Serve(rpcLn) }()
	log.Info("daemon started", "rpc", "http://"+rpcLn.Addr().String()+transmission.Path, "web", "http://"+rpcLn.Addr().String()+"/", "peer_port", sess.Port(),
		"download_dir", f.root, "state_dir", f.stateDir, "torrents", len(d.Torrents()), "auth", f.user != "")

	ctx, stop := context.WithCancel(c.Context)
	defer stop()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if f.watchDir != "" {
			d.watch(ctx, f.watchDir)
		}
	}()
	select {
	case <-c.Context.Done():
		log.Info("stopping: signal received")
	case <-d.closeReq:
		log.Info("stopping: session-close over the RPC")
	case err = <-served:
		err = fmt.Errorf("daemon: rpc: %w", err)
		log.Error("stopping: the RPC server failed", "err", err)
	}
	stop()
	<-watched
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(shutdown) // requests under way finish; a torrent-add cannot race the close
	cancel()
	srv.Close()
	events.wait()
	d.close() // every torrent pauses and saves its resume record; the state is saved
	if err == nil {
		log.Info("daemon stopped")
	}
	return err
}

// rpcHandler logs each RPC request at Debug, with its answer's status.
func (d *daemon) rpcHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK} // tracker.go's
		h.ServeHTTP(rec, r)
		d.log.Debug("rpc", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}
