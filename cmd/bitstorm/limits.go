package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// rateFlags are --download-limit and --upload-limit: bytes per second, with a K, M or G
// suffix (powers of 1024), as --piece-length takes sizes.
func rateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "download-limit", Usage: "download at most `RATE` bytes per second (e.g. 500K, 10M); none by default"},
		&cli.StringFlag{Name: "upload-limit", Usage: "upload at most `RATE` bytes per second (e.g. 1M); none by default"},
	}
}

// rateLimits reads the rate flags: 0 for a flag not given. A rate of 0, a negative one
// or one that is not a number is an error naming the flag: no limit is the flag left out.
func rateLimits(c *cli.Context) (down, up int64, err error) {
	parse := func(name string) (int64, error) {
		s := c.String(name)
		if !c.IsSet(name) {
			return 0, nil
		}
		if t := strings.TrimSpace(s); t == "" || strings.EqualFold(t, "auto") {
			return 0, fmt.Errorf("%s: --%s %q: want bytes per second, e.g. 500K or 10M (leave the flag out for no limit)", c.Command.Name, name, s)
		}
		n, err := parsePieceLength(s)
		if err != nil {
			return 0, fmt.Errorf("%s: --%s %q: %v (leave the flag out for no limit)", c.Command.Name, name, s, err)
		}
		return n, nil
	}
	if down, err = parse("download-limit"); err != nil {
		return 0, 0, err
	}
	up, err = parse("upload-limit")
	return down, up, err
}
