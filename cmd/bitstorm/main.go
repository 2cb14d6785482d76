// Command bitstorm is a BitTorrent client whose download is a staged stream processor.
//
//	bitstorm download [--out DIR] [--listen IP] [--port N] [--max-peers N] [--max-conns N] [--max-active-downloads N] [--upload-slots N] [--picker P] [--seed-ratio R] [--seed-time D] [--seed-idle D] [--no-dht] [--dht-bootstrap HOST:PORT]... [--state-dir DIR] [--json] [--metrics ADDR] [--verbose] [--quiet] FILE.torrent|MAGNET...
//	bitstorm seed [--data DIR] [--listen IP] [--port N] [--upload-slots N] [--seed-ratio R] [--seed-time D] [--seed-idle D] [--no-dht] [--dht-bootstrap HOST:PORT]... [--state-dir DIR] [--json] [--metrics ADDR] FILE.torrent
//	bitstorm create [--tracker URL]... [--piece-length N] [--private] [--comment TEXT] [--web-seed URL]... PATH
//	bitstorm verify [--data DIR] FILE.torrent
//	bitstorm info FILE.torrent
//	bitstorm tracker [--listen ADDR]
//	bitstorm sim [--peers N] [--pieces N] [--upload RATE[-RATE]] [--latency D] [--churn N] [--seed N] [--compare]
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newApp().RunContext(ctx, os.Args)
	stop()
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "bitstorm: %v\n", err)
	if errors.Is(err, context.Canceled) {
		os.Exit(130)
	}
	os.Exit(1)
}

func newApp() *cli.App {
	return &cli.App{
		Name:            "bitstorm",
		Usage:           "a BitTorrent client built as a stream processor",
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile to `FILE` (go tool pprof)"},
		},
		Before: func(c *cli.Context) error {
			if name := c.String("cpuprofile"); name != "" {
				f, err := os.Create(name)
				if err != nil {
					return err
				}
				return pprof.StartCPUProfile(f)
			}
			return nil
		},
		After: func(c *cli.Context) error {
			pprof.StopCPUProfile()
			return nil
		},
		Commands: []*cli.Command{downloadCommand(), seedCommand(), createCommand(), verifyCommand(),
			infoCommand(), trackerCommand(), simCommand(), serveCommand(), daemonCommand()},
	}
}
