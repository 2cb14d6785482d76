package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/dhtnode"
	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

func downloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "download",
		Usage:     "download torrents, several at once in one process; exits 0 once every piece of each is verified on disk",
		ArgsUsage: "FILE.torrent | MAGNET ...",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: ".", Usage: "directory to download into"},
			&cli.UintFlag{Name: "port", Aliases: []string{"p"}, Value: 6881, Usage: "port to accept peers on (IPv4 and IPv6) and announce; 0 picks a free one"},
			&cli.StringFlag{Name: "listen", Usage: "accept peers on this IP address only (e.g. 127.0.0.1 or ::1); default every interface"},
			&cli.IntFlag{Name: "max-peers", Value: 50, Usage: "concurrent peer connections"},
			&cli.IntFlag{Name: "max-conns", Value: 200, Usage: "peer connections of all the torrents together (as Transmission's peer-limit-global); each keeps to --max-peers too"},
			&cli.IntFlag{Name: "max-active-downloads", Usage: "download at most `N` torrents at once; the others wait their turn, in order (0: no limit)"},
			&cli.IntFlag{Name: "upload-slots", Value: 4, Usage: "peers uploaded to at once, the optimistic unchoke included (BEP 3 choking)"},
			&cli.StringSliceFlag{Name: "peer", Usage: "dial this peer (host:port) instead of asking the trackers; repeatable"},
			&cli.BoolFlag{Name: "no-webseeds", Usage: "do not download from the torrent's web seeds (BEP 19 url-list), used by default beside the peers"},
			&cli.DurationFlag{Name: "no-peers-timeout", Value: 2 * time.Minute, Usage: "give up when no peer is connected for this long"},
			&cli.StringFlag{Name: "picker", Value: "rarest", Usage: "piece picker: rarest, sequential (streaming) or random"},
			&cli.Float64Flag{Name: "seed-ratio", Usage: "after completing, seed until uploaded/size reaches `R`"},
			&cli.DurationFlag{Name: "seed-time", Usage: "after completing, seed for `D` (e.g. 30m)"},
			&cli.DurationFlag{Name: "seed-idle", Usage: "after completing, seed until no peer was sent a block for `D`"},
			rateFlags()[0], rateFlags()[1],
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug messages"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log only warnings and errors, no progress"},
			&cli.BoolFlag{Name: "no-dht", Usage: "do not use the DHT (BEP 5) to find peers; private torrents never do"},
			&cli.StringSliceFlag{Name: "dht-bootstrap", Usage: "ask this DHT node (`HOST:PORT`) when the routing table is empty, instead of the public routers; repeatable"},
			&cli.StringFlag{Name: "encryption", Value: "prefer", Usage: "protocol encryption (MSE/PE): prefer (encrypted handshake first, plain if the peer has none), require (RC4 only, both ways) or off (plain only)"},
			&cli.StringFlag{Name: "state-dir", Usage: "keep the DHT routing table in `DIR` (default $XDG_STATE_HOME/bitstorm or ~/.local/state/bitstorm)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per event on stdout, and a done or error object per torrent at its end; no progress view"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9100); served where told, without authentication"},
		}, selectFlags()...), // select.go
		Action: download,
	}
}

func download(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("download: expected one or more .torrent files or magnet links, got none")
	}
	cfg := pipeline.Config{
		OutDir: c.String("out"), Port: uint16(c.Uint("port")), MaxPeers: c.Int("max-peers"),
		NoPeersTimeout: c.Duration("no-peers-timeout"),
		SeedRatio:      c.Float64("seed-ratio"), SeedTime: c.Duration("seed-time"), SeedIdle: c.Duration("seed-idle"),
	}
	if c.NArg() > 1 {
		return runSession(c, cfg) // session.go: every torrent in one process, on one port
	}
	return run(c, cfg)
}

// settings is what every torrent of a command takes from the flags they share.
type settings struct {
	name   string // the command's
	cfg    pipeline.Config
	log    *slog.Logger
	out    *lineWriter // stderr, shared by the logs and the progress view
	term   bool        // draw the progress view
	peers  stages.StaticPeers
	picker func(numPieces int) stages.Picker // nil: rarest first, the pipeline's default
}

// setup checks the flags every command shares and sets up logging.
func setup(c *cli.Context, cfg pipeline.Config) (*settings, error) {
	name := c.Command.Name
	if c.Uint("port") > 65535 {
		return nil, fmt.Errorf("%s: --port %d: must be 0-65535", name, c.Uint("port"))
	}
	if c.Uint("port") == 0 {
		cfg.ListenAddr = ":0" // any free port; the one bound is announced
	}
	if ip := c.String("listen"); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("%s: --listen %q: want an IP address such as 127.0.0.1 or ::1", name, ip)
		}
		cfg.ListenAddr = netip.AddrPortFrom(a, uint16(c.Uint("port"))).String()
	}
	if c.Int("max-peers") < 1 {
		return nil, fmt.Errorf("%s: --max-peers %d: must be at least 1", name, c.Int("max-peers"))
	}
	if c.Int("max-conns") < 1 {
		return nil, fmt.Errorf("%s: --max-conns %d: must be at least 1", name, c.Int("max-conns"))
	}
	if c.Int("max-active-downloads") < 0 {
		return nil, fmt.Errorf("%s: --max-active-downloads %d: must not be negative", name, c.Int("max-active-downloads"))
	}
	cfg.MaxPeers = min(cfg.MaxPeers, c.Int("max-conns")) // one torrent alone: the process's cap is its own
	if c.Int("upload-slots") < 1 {
		return nil, fmt.Errorf("%s: --upload-slots %d: must be at least 1", name, c.Int("upload-slots"))
	}
	if c.Float64("seed-ratio") < 0 || c.Duration("seed-time") < 0 || c.Duration("seed-idle") < 0 {
		return nil, fmt.Errorf("%s: --seed-ratio, --seed-time and --seed-idle must not be negative", name)
	}
	enc, err := stages.ParseEncryption(c.String("encryption"))
	if err != nil {
		return nil, fmt.Errorf("%s: --%w", name, err)
	}
	cfg.Encryption = enc
	if err := checkFileFlags(c); err != nil { // select.go
		return nil, err
	}
	if cfg.DownloadLimit, cfg.UploadLimit, err = rateLimits(c); err != nil { // limits.go
		return nil, err
	}
	s := &settings{name: name, cfg: cfg}
	switch c.String("picker") {
	case "rarest":
	case "sequential":
		s.picker = func(n int) stages.Picker { return stages.NewSequential(n) }
	case "random":
		s.picker = func(n int) stages.Picker { return stages.NewRandom(n, uint64(time.Now().UnixNano())) }
	default:
		return nil, fmt.Errorf("%s: --picker %q: want rarest, sequential or random", name, c.String("picker"))
	}
	if s.peers, err = staticPeers(c); err != nil {
		return nil, err
	}
	level := slog.LevelInfo
	switch {
	case c.Bool("verbose"):
		level = slog.LevelDebug
	case c.Bool("quiet"):
		level = slog.LevelWarn
	}
	// With --json, stdout is for the events and the terminal gets no progress view.
	s.term = isTerminal(os.Stderr) && !c.Bool("quiet") && !c.Bool("json")
	s.out = newLineWriter(os.Stderr)
	s.log = slog.New(slog.NewTextHandler(s.out, &slog.HandlerOptions{Level: level}))
	return s, nil
}

// torrentOptions are one torrent's options from the flags: fresh for each torrent, since
// a choker and a picker hold the state of one.
func (s *settings) torrentOptions(c *cli.Context) []pipeline.Option {
	opts := []pipeline.Option{pipeline.WithChoker(&stages.RateChoker{Slots: c.Int("upload-slots")})}
	if len(s.peers) > 0 {
		opts = append(opts, pipeline.WithPeerSource(s.peers))
	}
	if c.Bool("no-webseeds") {
		opts = append(opts, pipeline.WithWebSeeds()) // none: the url-list is ignored
	}
	opts = append(opts, fileOptions(c)...) // --select, --exclude (select.go)
	if s.picker != nil {
		opts = append(opts, pipeline.WithPickerFor(s.picker))
	}
	return opts
}

// run loads the torrent named on the command line and runs a pipeline with cfg, with the
// logging, progress display and peer flags every command shares.
func run(c *cli.Context, cfg pipeline.Config) error {
	s, err := setup(c, cfg)
	if err != nil {
		return err
	}
	cfg = s.cfg
	// The torrent or link is read before anything starts, so that a bad one costs nothing.
	m, mag, err := parseTorrentArg(c.Args().First())
	if err != nil {
		return err
	}
	rep, err := newReporter(c, s.log) // --json, --metrics: nil without them
	if err != nil {
		return err
	}
	defer rep.close()
	opts := append([]pipeline.Option{pipeline.WithLogger(s.log), pipeline.WithConfig(cfg)}, s.torrentOptions(c)...)
	if m == nil || !m.Info.Private { // BEP 27: a private torrent never uses the DHT
		if node := startDHT(c, cfg, s.log); node != nil {
			defer node.Close()
			opts = append(opts, pipeline.WithDHT(node))
		}
	}
	var tr *tracked
	if rep.active() {
		tr = rep.track(c.Args().First(), m, mag)
		opts = append(opts, pipeline.WithEvents(tr.event))
	}
	var p *pipeline.Pipeline
	if m != nil {
		p, err = pipeline.New(m, opts...)
	} else {
		p, err = pipeline.NewMagnet(mag, opts...) // the metadata first, then the download, on the same connections
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.Command.Name, err)
	}
	start := time.Now()
	tr.attach(p, start)
	rep.start()
	var prog *progress
	if s.term {
		prog = startProgress(s.out, p.Stats)
	}
	err = p.Run(c.Context)
	if prog != nil {
		prog.stop()
	}
	tr.end(err)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if m = p.Meta(); !c.Bool("quiet") && !cfg.Seed {
		fmt.Fprintf(s.out, "%s: %s verified in %s (%s/s)\n", m.Info.Name, humanBytes(m.Info.Length),
			elapsed.Round(time.Millisecond), humanBytes(int64(float64(m.Info.Length)/elapsed.Seconds())))
	}
	return nil
}

func seedCommand() *cli.Command {
	flags := downloadCommand().Flags
	flags = append([]cli.Flag{&cli.StringFlag{Name: "data", Value: ".", Usage: "directory holding the torrent's files (as download --out)"}}, flags[1:]...)
	return &cli.Command{
		Name:      "seed",
		Usage:     "check the data, then seed it (downloading what is missing) until Ctrl-C or the seed limits",
		ArgsUsage: "FILE.torrent",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("seed: expected one .torrent file, got %d arguments", c.NArg())
			}
			return run(c, pipeline.Config{
				OutDir: c.String("data"), Port: uint16(c.Uint("port")), MaxPeers: c.Int("max-peers"),
				NoPeersTimeout: c.Duration("no-peers-timeout"),
				Seed:           c.Float64("seed-ratio") == 0 && c.Duration("seed-time") == 0 && c.Duration("seed-idle") == 0,
				SeedRatio:      c.Float64("seed-ratio"), SeedTime: c.Duration("seed-time"), SeedIdle: c.Duration("seed-idle"),
			})
		},
	}
}

// startDHT starts the DHT node of --no-dht, --dht-bootstrap and --state-dir on the UDP
// port of the same number as the peer listener (another when it is taken). The DHT is
// never worth failing for: when the node cannot start, the run goes on without it.
func startDHT(c *cli.Context, cfg pipeline.Config, log *slog.Logger) *dhtnode.Node {
	if c.Bool("no-dht") {
		return nil
	}
	addr := cfg.ListenAddr
	if addr == "" {
		addr = fmt.Sprintf(":%d", cfg.Port)
	}
	dcfg := dhtnode.Config{Addr: addr, Bootstrap: c.StringSlice("dht-bootstrap"), Log: log}
	if dir := stateDir(c.String("state-dir")); dir != "" {
		dcfg.StateFile = filepath.Join(dir, "dht.dat")
	}
	node, err := dhtnode.Start(dcfg)
	if err != nil {
		log.Info("running without the DHT", "err", err)
		return nil
	}
	return node
}

// stateDir is dir, or where state goes by default: $XDG_STATE_HOME/bitstorm, or
// ~/.local/state/bitstorm; "" when there is no home.
func stateDir(dir string) string {
	if dir != "" {
		return dir
	}
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "bitstorm")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "bitstorm")
	}
	return ""
}

// staticPeers parses the --peer flags.
func staticPeers(c *cli.Context) (stages.StaticPeers, error) {
	var static stages.StaticPeers
	for _, s := range c.StringSlice("peer") {
		a, err := netip.ParseAddrPort(s)
		if err != nil {
			return nil, fmt.Errorf("%s: --peer %q: %w", c.Command.Name, s, err)
		}
		static = append(static, a)
	}
	return static, nil
}

// parseTorrentArg reads the command line's torrent: a .torrent file, or a magnet link
// (BEP 9), whose metadata is fetched later. A URL of another scheme is refused by name.
func parseTorrentArg(arg string) (*metainfo.MetaInfo, *magnet.Magnet, error) {
	if isMagnet(arg) {
		mag, err := magnet.Parse(arg)
		return nil, mag, err
	}
	if u, err := url.Parse(arg); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return nil, nil, fmt.Errorf("%q: a web address; give a .torrent file (download it first) or a magnet link", arg)
	}
	m, err := metainfo.Load(arg)
	return m, nil, err
}

// loadTorrent reads the .torrent file at arg or, when arg is a magnet link, fetches its
// metadata from peers (BEP 9) with the pipeline's options, or takes it from where an
// earlier run kept it.
func loadTorrent(ctx context.Context, arg string, opts []pipeline.Option) (*metainfo.MetaInfo, error) {
	m, mag, err := parseTorrentArg(arg)
	if err != nil || m != nil {
		return m, err
	}
	return pipeline.FetchMetadata(ctx, mag, opts...)
}

func isMagnet(arg string) bool { return strings.HasPrefix(strings.ToLower(arg), "magnet:") }
