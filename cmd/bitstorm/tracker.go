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
		Usage: "run an HTTP tracker (announce and scrape, in memory) for local swarms, until Ctrl-C",
		Description: "Prints \"tracker listening on http://ADDR/announce\" on stdout once it accepts\n" +
			"connections, with the port it got when --listen asks for port 0.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:6969", Usage: "address to serve on; port 0 picks a free one"},
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
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
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

	line := "tracker listening on " + (&url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/announce"}).String()
	attrs := []any{"interval", interval}
	if allowed != nil {
		attrs = append(attrs, "allowed", len(allowed))
	}
	log.Info(line, attrs...)
	fmt.Fprintln(c.App.Writer, line) // scripts wait for this line

	sweep := time.NewTicker(trackerSweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-sweep.C:
			td.Sweep()
			torrents, peers := td.Stats()
			log.Debug("swept stale peers", "torrents", torrents, "peers", peers)
		case err := <-served:
			return fmt.Errorf("tracker: serve: %w", err)
		case <-ctx.Done():
			shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), trackerShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(shutCtx); err != nil {
				log.Warn("tracker: requests still running, closing their connections", "err", err)
				srv.Close()
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("tracker: serve: %w", err)
			}
			log.Info("tracker stopped")
			return nil
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
