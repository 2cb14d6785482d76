package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bitstorm/bitstorm/internal/trackerd"
)

// trackerShutdownTimeout bounds how long the tracker waits for requests in flight once
// asked to stop; then it closes their connections.
const trackerShutdownTimeout = 2 * time.Second

// trackerSweepEvery is how often the tracker drops peers that stopped announcing.
const trackerSweepEvery = time.Minute

func trackerCommand() *cli.Command {
	return &cli.Command{
		Name:  "tracker",
		Usage: "run an HTTP and UDP tracker (announce and scrape, in memory) for local swarms, until Ctrl-C",
		Description: "Serves HTTP (BEP 3) and UDP (BEP 15) on the same port number, from the same swarms.\n" +
			"Once it accepts requests it prints two lines on stdout, and nothing else ever: \"tracker\n" +
			"listening on http://ADDR/announce\", then \"tracker listening on udp://ADDR/announce\", with\n" +
			"the port it got when --listen asks for port 0. Scripts read the URL there; the log goes\n" +
			"to stderr.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:6969", Usage: "address to serve HTTP (TCP) and UDP on; port 0 picks a free one"},
			&cli.DurationFlag{Name: "interval", Value: 30 * time.Minute, Usage: "re-announce interval sent to clients"},
			&cli.StringSliceFlag{Name: "allow", Usage: "serve only this info hash (40 hex digits); repeatable; none serves all"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log every request"},
		},
		Action: runTracker,
	}
}

func runTracker(c *cli.Context) error {
	if c.NArg() != 0 {
		return fmt.Errorf("tracker: unexpected arguments %q", c.Args().Slice())
	}
	interval := c.Duration("interval")
	if interval < time.Second {
		return fmt.Errorf("tracker: --interval %v: must be at least 1s", interval)
	}
	allowed, err := parseAllow(c.StringSlice("allow"))
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))

	ctx := c.Context
	ln, pc, err := listenTCPAndUDP(ctx, c.String("listen"))
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	defer pc.Close()
	td := trackerd.New(trackerd.Config{Interval: interval, AllowedInfoHashes: allowed})
	srv := &http.Server{
		Handler:           logRequests(log, td),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    256 << 10, // a full scrape names up to 1000 hashes of 60 escaped bytes
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	udpCtx, stopUDP := context.WithCancel(ctx)
	defer stopUDP()
	udpServed := make(chan error, 1)
	go func() { udpServed <- td.ServeUDP(udpCtx, pc) }()

	attrs := []any{"interval", interval}
	if allowed != nil {
		attrs = append(attrs, "allowed", len(allowed))
	}
	// Scripts wait for the first line of stdout, and take the http URL from it: the lines
	// are the command's output, not log records.
	for _, scheme := range []string{"http", "udp"} {
		u := (&url.URL{Scheme: scheme, Host: ln.Addr().String(), Path: "/announce"}).String()
		log.Info("listening", append([]any{"url", u}, attrs...)...)
		fmt.Fprintln(c.App.Writer, "tracker listening on "+u)
	}

	sweep := time.NewTicker(trackerSweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-sweep.C:
			td.Sweep()
			torrents, peers := td.Stats()
			log.Debug("swept stale peers", "torrents", torrents, "peers", peers)
		case err := <-served:
			stopUDP()
			<-udpServed
			return fmt.Errorf("tracker: serve: %w", err)
		case err := <-udpServed:
			srv.Close()
			<-served
			return fmt.Errorf("tracker: serve udp: %w", err)
		case <-ctx.Done():
			shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), trackerShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(shutCtx); err != nil {
				log.Warn("tracker: requests still running, closing their connections", "err", err)
				srv.Close()
			}
			udpErr := <-udpServed // ServeUDP returns as ctx ends
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("tracker: serve: %w", err)
			}
			if udpErr != nil {
				return fmt.Errorf("tracker: serve udp: %w", udpErr)
			}
			log.Info("tracker stopped")
			return nil
		}
	}
}

// listenTCPAndUDP listens on addr over TCP, then over UDP on the port TCP got, so that
// one port number serves both, as opentracker does. With port 0, the port TCP got may
// be taken for UDP: it tries again with other ports, a few times.
func listenTCPAndUDP(ctx context.Context, addr string) (net.Listener, net.PacketConn, error) {
	var lc net.ListenConfig
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 1; ; attempt++ {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		pc, err := lc.ListenPacket(ctx, "udp", ln.Addr().String())
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if port != "0" || attempt == 5 {
			return nil, nil, err
		}
	}
}

// parseAllow reads --allow values, 40 hex digits each; none means an open tracker (nil).
func parseAllow(hexes []string) (map[[20]byte]bool, error) {
	if len(hexes) == 0 {
		return nil, nil
	}
	allowed := make(map[[20]byte]bool, len(hexes))
	for _, s := range hexes {
		b, err := hex.DecodeString(strings.TrimSpace(s))
		if err != nil || len(b) != 20 {
			return nil, fmt.Errorf("tracker: --allow %q: want an info hash of 40 hex digits", s)
		}
		allowed[[20]byte(b)] = true
	}
	return allowed, nil
}

// logRequests logs each request at Debug level, with the info hash and event of an announce.
func logRequests(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !log.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		attrs := []any{"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", sw.status,
			"took", time.Since(start).Round(time.Microsecond)}
		if q, err := url.ParseQuery(r.URL.RawQuery); err == nil {
			switch ih := q["info_hash"]; len(ih) {
			case 0:
			case 1:
				attrs = append(attrs, "info_hash", hex.EncodeToString([]byte(ih[0][:min(len(ih[0]), 20)])))
			default:
				attrs = append(attrs, "info_hashes", len(ih))
			}
			if ev := q.Get("event"); ev != "" {
				attrs = append(attrs, "event", ev)
			}
		}
		if reason, ok := failureReason(sw.head); ok {
			attrs = append(attrs, "failure", reason)
		}
		log.Debug("request", attrs...)
	})
}

// statusWriter remembers the status code and the start of the body written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	head   []byte // at most maxHead bytes
}

const maxHead = 512

// Unwrap lets http.ResponseController reach the connection (the daemon's event streams
// flush through it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if n := min(len(b), maxHead-len(w.head)); n > 0 {
		w.head = append(w.head, b[:n]...)
	}
	return w.ResponseWriter.Write(b)
}

// failureReason reads the reason of a reply that is a bencoded {"failure reason": ...}.
func failureReason(body []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(body, []byte("d14:failure reason"))
	if !ok {
		return "", false
	}
	n, rest, ok := bytes.Cut(rest, []byte(":"))
	size, err := strconv.Atoi(string(n))
	if !ok || err != nil || size < 0 || size > len(rest) {
		return "", false
	}
	return string(rest[:size]), true
}
