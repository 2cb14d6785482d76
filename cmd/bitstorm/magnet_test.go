package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// someHash is a well-formed info hash for links that are wrong elsewhere.
const someHash = "0123456789abcdef0123456789abcdef01234567"

// malformedMagnets are magnet links that download and info must refuse: want holds what
// the one error line must name.
var malformedMagnets = []struct {
	name, link string
	want       []string
}{
	{"hash too short", "magnet:?xt=urn:btih:0123456789abcdef&tr=udp%3A%2F%2F127.0.0.1%3A1",
		[]string{`xt: "urn:btih:0123456789abcdef"`, "40 hex or 32 base32"}},
	{"hash too long", "magnet:?xt=urn:btih:" + someHash + "89&x.pe=127.0.0.1:1",
		[]string{`xt: "urn:btih:` + someHash + `89"`, "40 hex or 32 base32"}},
	{"hash not hex", "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef0123456g&x.pe=127.0.0.1:1",
		[]string{`xt: "urn:btih:0123456789abcdef0123456789abcdef0123456g"`, "40 hex or 32 base32"}},
	{"no xt", "magnet:?dn=name&tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce&x.pe=127.0.0.1:1",
		[]string{"no xt=urn:btih"}},
	{"only a v2 hash", "magnet:?xt=urn:btmh:1220" + someHash + someHash + "&x.pe=127.0.0.1:1",
		[]string{`xt: "urn:btmh:1220`, "v2"}},
	{"no question mark", "magnet:xt=urn:btih:" + someHash, []string{`no "?" after "magnet:"`}},
	// Not a magnet link: download and info take it for a file name, and say so.
	{"http scheme", "http://127.0.0.1:1/?xt=urn:btih:" + someHash, []string{"http://127.0.0.1:1/?xt=urn:btih:" + someHash}},
	{"x.pe without port", "magnet:?xt=urn:btih:" + someHash + "&x.pe=127.0.0.1", []string{`x.pe: "127.0.0.1"`, "host:port"}},
	{"x.pe port 0", "magnet:?xt=urn:btih:" + someHash + "&x.pe=127.0.0.1:0", []string{`x.pe: "127.0.0.1:0"`, `port "0"`}},
	{"x.pe port too big", "magnet:?xt=urn:btih:" + someHash + "&x.pe=127.0.0.1:65536", []string{`x.pe: "127.0.0.1:65536"`, `port "65536"`}},
	{"x.pe bad host", "magnet:?xt=urn:btih:" + someHash + "&x.pe=bad_host:6881", []string{`x.pe: "bad_host:6881"`, `"bad_host"`}},
	{"x.pe unspecified", "magnet:?xt=urn:btih:" + someHash + "&x.pe=0.0.0.0:6881", []string{`x.pe: "0.0.0.0:6881"`}},
	{"x.pe v4 in brackets", "magnet:?xt=urn:btih:" + someHash + "&x.pe=%5B10.0.0.1%5D:6881", []string{`x.pe: "[10.0.0.1]:6881"`, "brackets"}},
}

// TestMagnetCLIErrors gives download and info malformed magnet links: each exits 1 with
// one line on stderr, "bitstorm: ...", that names the part at fault, before it asks any
// peer or tracker, and leaves nothing behind: the output directory (an existing, empty
// one) stays empty, the working and state directories too, and info writes no --save
// file. Downloads run with --no-dht, as every test's does (the DHT's default routers are
// public hosts); TestMagnetCLIErrorsBeforeDHT runs them with the DHT.
func TestMagnetCLIErrors(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range malformedMagnets {
		for _, command := range []string{"download", "info"} {
			t.Run(tc.name+"/"+command, func(t *testing.T) {
				var args []string
				if command == "download" {
					args = []string{command, "--no-dht", "--listen", "127.0.0.1", "--port", "0", "--no-peers-timeout", "5s"}
				} else {
					args = []string{command, "--timeout", "5s"}
				}
				refuseMagnet(t, bin, args, tc.link, tc.want)
			})
		}
	}
}

// TestMagnetCLIErrorsBeforeDHT is TestMagnetCLIErrors for download with the DHT on (its
// only router 127.0.0.1:1, so that nothing leaves the machine): a malformed link must be
// refused before the DHT node starts, so that the state directory stays empty.
func TestMagnetCLIErrorsBeforeDHT(t *testing.T) {
	// Known bug: run (download.go) starts the DHT node, which creates
	// $XDG_STATE_HOME/bitstorm and asks the routers for nodes, before loadTorrent parses
	// the magnet link; a .torrent file is loaded first. Remove this skip with the fix.
	bin := buildBinary(t)
	for _, tc := range malformedMagnets {
		t.Run(tc.name, func(t *testing.T) {
			refuseMagnet(t, bin, []string{"download", "--dht-bootstrap", "127.0.0.1:1", "--listen", "127.0.0.1", "--port", "0",
				"--no-peers-timeout", "5s"}, tc.link, tc.want)
		})
	}
}

// refuseMagnet runs bin with args, then --out DIR (download) or --save FILE (info), then
// link, in a new working directory and with a new $XDG_STATE_HOME, and checks that it
// exits 1 with one line on stderr that names each of want, prints nothing on stdout, and
// leaves the three directories empty and no --save file.
func refuseMagnet(t *testing.T, bin string, args []string, link string, want []string) {
	t.Helper()
	work := t.TempDir() // the working directory: download's --out defaults to "."
	out := t.TempDir()
	state := t.TempDir() // $XDG_STATE_HOME, where the DHT keeps its nodes
	save := filepath.Join(t.TempDir(), "saved.torrent")
	if args[0] == "download" {
		args = append(args, "--out", out, link)
	} else {
		args = append(args, "--save", save, link)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("bitstorm %q: exit = %v (context: %v), want status 1; stderr:\n%s", args, err, ctx.Err(), stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "bitstorm: ") {
		t.Fatalf("stderr = %q, want one line starting %q", stderr.String(), "bitstorm: ")
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("stderr line %q does not name %q", lines[0], w)
		}
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
	for _, dir := range []string{work, out, state} {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
			t.Errorf("%s holds %v (%v), want nothing", dir, ents, err)
		}
	}
	if _, err := os.Lstat(save); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--save file %s: %v, want none", save, err)
	}
}
