package pipeline_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"fmt"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/resume"
	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// magnetFiles is a multi-file torrent of about 28 MiB for the magnet and UDP tracker
// tests. In 32 KiB pieces it has 898 of them, so its info dictionary (18 KB of piece
// hashes) takes two 16 KiB metadata pieces (BEP 9), the last one short.
var magnetFiles = []swarmtest.FileSpec{
	{Path: "magnetic/one.bin", Size: 11<<20 + 4_321},
	{Path: "magnetic/notes.txt", Size: 20_001},
	{Path: "magnetic/sub/two.bin", Size: 9<<20 - 77},
	{Path: "magnetic/sub/deep/three.bin", Size: 8<<20 + 32_769},
}

// magnetSetup says how magnetSwarm makes the torrent.
type magnetSetup struct {
	udp    bool // its only tracker is opentracker's udp:// URL, not its http:// one
	create bool // bitstorm create makes it, not mktorrent
}

// magnetSwarm begins a magnet or UDP tracker interop test: it skips under -short,
// requires opentracker, mktorrent and libtorrent (a failure under CI=true), builds the
// bitstorm binary, writes magnetFiles from seed, starts opentracker (HTTP and UDP on one
// port) and makes the torrent in 32 KiB pieces with the one tracker setup asks for, which
// opentracker allows. It checks that libtorrent and BitStorm agree on the info hash and
// that the info dictionary takes more than one metadata piece. The context ends after
// three minutes, or with the test.
func magnetSwarm(t *testing.T, seed int64, setup magnetSetup) (context.Context, string, *trackedPayload, *metainfo.MetaInfo) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs opentracker, libtorrent and the bitstorm binary")
	}
	swarmtest.Require(t, swarmtest.Opentracker, swarmtest.Mktorrent, swarmtest.Libtorrent)
	bin := buildBitstorm(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)

	sw := &trackedPayload{dir: t.TempDir(), files: magnetFiles}
	if err := swarmtest.WritePayload(sw.dir, seed, magnetFiles); err != nil {
		t.Fatal(err)
	}
	tr, err := swarmtest.StartTracker(ctx, sw.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	sw.tracker = tr
	announce := tr.AnnounceURL
	if setup.udp {
		announce = tr.UDPAnnounceURL
	}
	src := filepath.Join(sw.dir, "magnetic")
	sw.torrent = filepath.Join(sw.dir, "magnetic.torrent")
	if setup.create {
		cmd := exec.CommandContext(ctx, bin, "create", "--tracker", announce, "--piece-length", "32K", "--out", sw.torrent, src)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bitstorm create: %v\n%s", err, out)
		}
	} else if err := swarmtest.MakeTorrent(ctx, src, sw.torrent, announce, 15); err != nil {
		t.Fatal(err)
	}
	if sw.hash, err = swarmtest.InfoHash(ctx, sw.torrent); err != nil {
		t.Fatal(err)
	}
	if err := tr.Allow(ctx, sw.hash); err != nil {
		t.Fatal(err)
	}
	m, err := metainfo.Load(sw.torrent)
	if err != nil {
		t.Fatal(err)
	}
	if m.HexHash() != sw.hash {
		t.Fatalf("info hash: BitStorm reads %s, libtorrent %s", m.HexHash(), sw.hash)
	}
	if n, err := wire.MetadataPieces(len(m.RawInfo)); err != nil || n < 2 {
		t.Fatalf("info dictionary of %d bytes is %d metadata pieces (%v), want at least 2", len(m.RawInfo), n, err)
	}
	if got := m.Trackers(); !reflect.DeepEqual(got, [][]string{{announce}}) {
		t.Fatalf("torrent trackers = %q, want only %s", got, announce)
	}
	return ctx, bin, sw, m
}

// magnetLink writes a magnet link by hand (not with package magnet, whose parser it
// tests): the info hash (hex or base32, as given), then dn when name is not empty, then one tr per tracker.
func magnetLink(hash, name string, trackers ...string) string {
	link := "magnet:?xt=urn:btih:" + hash
	if name != "" {
		link += "&dn=" + url.QueryEscape(name)
	}
	for _, tr := range trackers {
		link += "&tr=" + url.QueryEscape(tr)
	}
	return link
}

// seedWithLibtorrent starts a libtorrent seeder of sw's torrent, stopped when the test
// ends, and waits until the tracker counts it; it returns the seeder and its address.
func seedWithLibtorrent(t *testing.T, ctx context.Context, sw *trackedPayload) (*swarmtest.Process, netip.AddrPort) {
	t.Helper()
	lt, err := swarmtest.StartLibtorrentSeeder(ctx, sw.torrent, sw.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lt.Stop)
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, 1); err != nil {
		t.Fatalf("%v\nlibtorrent seeder:\n%s", err, lt.Tail(20))
	}
	return lt, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(libtorrentPort(t, lt)))
}

// downloadWithBitstorm runs `bitstorm download ARG` (a .torrent file or a magnet link)
// into a new directory, which it must create, and checks the bytes. It returns that
// directory. seeder tells what the other side logged, for failures.
func downloadWithBitstorm(t *testing.T, ctx context.Context, bin string, sw *trackedPayload, arg string, seeder *swarmtest.Process) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	p, _ := startBitstorm(t, ctx, bin, filepath.Join(sw.dir, "bitstorm.log"),
		"download", "--verbose", "--out", out, "--listen", "127.0.0.1", "--port", strconv.Itoa(freePort(t)), arg)
	res, err := p.Wait()
	if err != nil || ctx.Err() != nil {
		t.Fatalf("bitstorm download %s: %v (context: %v)\n%s\nseeder:\n%s", arg, err, ctx.Err(), p.Tail(30), seeder.Tail(20))
	}
	if err := swarmtest.ComparePayload(sw.dir, out, sw.files); err != nil {
		t.Fatalf("bitstorm's files differ from the payload:\n%v", err)
	}
	t.Logf("bitstorm download %s: %.1f MiB in %.2fs (start-up and announces included, and a magnet link's metadata phase); cpu %.2fs",
		arg, float64(swarmtest.TotalSize(sw.files))/(1<<20), res.Wall.Seconds(), res.CPU().Seconds())
	return out
}

// checkKeptMetadata checks the .torrent a magnet download keeps under out
// (.bitstorm/HASH.torrent): the very info dictionary of m, and the link's trackers.
func checkKeptMetadata(t *testing.T, out string, m *metainfo.MetaInfo, trackers [][]string) {
	t.Helper()
	path := resume.MetadataPath(out, m.InfoHash)
	kept, err := metainfo.Load(path)
	if err != nil {
		t.Fatalf("kept metadata: %v", err)
	}
	if kept.InfoHash != m.InfoHash || !bytes.Equal(kept.RawInfo, m.RawInfo) {
		t.Errorf("%s: info hash %s, %d bytes of info; want %s, %d bytes", path, kept.HexHash(), len(kept.RawInfo), m.HexHash(), len(m.RawInfo))
	}
	if got := kept.Trackers(); len(got) != len(trackers) || len(got) > 0 && !reflect.DeepEqual(got, trackers) {
		t.Errorf("%s: trackers %q, want %q", path, got, trackers)
	}
}

// TestInteropMagnetHTTPTracker: libtorrent seeds through opentracker over HTTP, and
// `bitstorm download MAGNET`, whose only tracker is that HTTP announce URL (no x.pe),
// finds it there, fetches the two metadata pieces from it, downloads the payload with
// the right bytes and keeps the metadata as OUT/.bitstorm/HASH.torrent.
func TestInteropMagnetHTTPTracker(t *testing.T) {
	ctx, bin, sw, m := magnetSwarm(t, 20250301, magnetSetup{})
	lt, _ := seedWithLibtorrent(t, ctx, sw)
	link := magnetLink(sw.hash, "", sw.tracker.AnnounceURL)
	out := downloadWithBitstorm(t, ctx, bin, sw, link, lt)
	checkKeptMetadata(t, out, m, [][]string{{sw.tracker.AnnounceURL}})
}

// TestInteropMagnetUDPTracker is TestInteropMagnetHTTPTracker over UDP (BEP 15): the
// libtorrent seeder announces to opentracker's udp:// URL, and that URL is the magnet
// link's only way to a peer. This link gives the info hash in base32 (BEP 9: clients
// should support it) and a dn.
func TestInteropMagnetUDPTracker(t *testing.T) {
	ctx, bin, sw, m := magnetSwarm(t, 20250302, magnetSetup{udp: true})
	lt, _ := seedWithLibtorrent(t, ctx, sw)
	link := magnetLink(base32.StdEncoding.EncodeToString(m.InfoHash[:]), "magnetic", sw.tracker.UDPAnnounceURL)
	out := downloadWithBitstorm(t, ctx, bin, sw, link, lt)
	checkKeptMetadata(t, out, m, [][]string{{sw.tracker.UDPAnnounceURL}})
}

// TestInteropMagnetPeerOnly: `bitstorm download MAGNET` whose only source is an x.pe
// peer, a libtorrent seeder (no tracker): the metadata and then the data must come from
// that peer.
func TestInteropMagnetPeerOnly(t *testing.T) {
	// Known bug: the metadata comes, then the download (--no-dht) exits 1 with "download:
	// torrent has no tracker, and no peers were given"; with the DHT it would wait for
	// peers the DHT never finds. cmd/bitstorm/download.go gives the link's x.pe peers to
	// FetchMetadata only, not to the pipeline that downloads. Remove this skip with the fix.
	ctx, bin, sw, m := magnetSwarm(t, 20250306, magnetSetup{})
	lt, addr := seedWithLibtorrent(t, ctx, sw)
	link := magnetLink(sw.hash, "") + "&x.pe=" + addr.String()
	out := downloadWithBitstorm(t, ctx, bin, sw, link, lt)
	checkKeptMetadata(t, out, m, nil)
}

// TestInteropTorrentUDPOnly: a .torrent made by bitstorm create whose only tracker is
// opentracker's udp:// URL; libtorrent seeds it (so libtorrent reads our torrent and
// announces over UDP), and bitstorm downloads it, finding the seeder over UDP alone.
func TestInteropTorrentUDPOnly(t *testing.T) {
	ctx, bin, sw, _ := magnetSwarm(t, 20250303, magnetSetup{udp: true, create: true})
	lt, _ := seedWithLibtorrent(t, ctx, sw)
	downloadWithBitstorm(t, ctx, bin, sw, sw.torrent, lt)
}

// TestInteropLibtorrentMagnetFromBitStorm: a BitStorm seeder announces over UDP to
// opentracker, which must count it as a seeder, and libtorrent leechers that hold only a
// magnet link download from it: one whose link has no tracker and no name, which dials
// the seeder itself, and one whose link's only tracker is the udp:// one. Each must get
// the metadata (two pieces) from BitStorm, find in it the right name and info hash, and
// download every byte; the seeder must drop no peer.
func TestInteropLibtorrentMagnetFromBitStorm(t *testing.T) {
	ctx, bin, sw, m := magnetSwarm(t, 20250304, magnetSetup{udp: true})
	port := freePort(t)
	seeder := startBitstormSeeder(t, ctx, bin, sw.torrent, sw.dir, port, filepath.Join(sw.dir, "bitstorm-seed.log"))
	if err := sw.tracker.WaitSeeders(ctx, sw.hash, 1); err != nil {
		t.Fatalf("%v\nbitstorm seeder:\n%s", err, seeder.Tail(20))
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	for _, tc := range []struct {
		name  string
		link  string
		peers []netip.AddrPort
	}{
		{"dialed", magnetLink(sw.hash, ""), []netip.AddrPort{addr}},
		{"udp tracker", magnetLink(sw.hash, "", sw.tracker.UDPAnnounceURL), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, md, err := swarmtest.RunLibtorrentMagnetLeecher(ctx, tc.link, out, tc.peers...)
			if err != nil || ctx.Err() != nil {
				t.Fatalf("libtorrent magnet leecher: %v (context: %v)\nbitstorm seeder:\n%s", err, ctx.Err(), seeder.Tail(30))
			}
			if md.InfoHash != sw.hash || md.Name != m.Info.Name {
				t.Errorf("libtorrent's metadata: info hash %s, name %q; want %s, %q", md.InfoHash, md.Name, sw.hash, m.Info.Name)
			}
			if err := swarmtest.ComparePayload(sw.dir, out, sw.files); err != nil {
				t.Fatalf("libtorrent's files differ from the payload:\n%v", err)
			}
			t.Logf("libtorrent from a magnet link, from the bitstorm seeder: %.1f MiB in %.2fs (metadata included); cpu %.2fs",
				float64(swarmtest.TotalSize(sw.files))/(1<<20), res.Wall.Seconds(), res.CPU().Seconds())
		})
	}
	if d := droppedPeers(seeder.LogPath); len(d) > 0 {
		t.Errorf("the bitstorm seeder dropped peers: %+v", d)
	}
}

// TestInteropMagnetInfo: `bitstorm info MAGNET --save F.torrent` against a libtorrent
// seeder and against a BitStorm seeder, each named by --peer (which replaces the link's
// tracker as the source of peers), and against the libtorrent seeder named by the link's
// x.pe alone. It prints the torrent's name, info hash and piece count, and F.torrent holds
// the very info dictionary (so the same info hash) and the link's trackers.
func TestInteropMagnetInfo(t *testing.T) {
	ctx, bin, sw, m := magnetSwarm(t, 20250305, magnetSetup{})
	_, ltAddr := seedWithLibtorrent(t, ctx, sw)
	bsPort := freePort(t)
	startBitstormSeeder(t, ctx, bin, sw.torrent, sw.dir, bsPort, filepath.Join(sw.dir, "bitstorm-seed.log"))
	bsAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(bsPort))
	withTracker := magnetLink(sw.hash, "", sw.tracker.AnnounceURL)
	for _, tc := range []struct {
		name     string
		args     []string
		trackers [][]string
	}{
		{"libtorrent", []string{"--peer", ltAddr.String(), withTracker}, [][]string{{sw.tracker.AnnounceURL}}},
		{"bitstorm", []string{"--peer", bsAddr.String(), withTracker}, [][]string{{sw.tracker.AnnounceURL}}},
		{"libtorrent x.pe", []string{magnetLink(sw.hash, "") + "&x.pe=" + ltAddr.String()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			save := filepath.Join(t.TempDir(), "fetched.torrent")
			cmd := exec.CommandContext(ctx, bin, append([]string{"info", "--verbose", "--save", save}, tc.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("bitstorm info: %v (context: %v)\n%s\n%s", err, ctx.Err(), stdout.String(), stderr.String())
			}
			for _, re := range []string{`(?m)^name:\s+` + regexp.QuoteMeta(m.Info.Name) + `$`, `(?m)^info hash:\s+` + sw.hash + `$`,
				fmt.Sprintf(`(?m)^pieces:\s+%d$`, m.Info.NumPieces())} {
				if !regexp.MustCompile(re).MatchString(stdout.String()) {
					t.Errorf("bitstorm info printed no line matching %s:\n%s", re, stdout.String())
				}
			}
			f, err := metainfo.Load(save)
			if err != nil {
				t.Fatalf("--save file: %v", err)
			}
			if f.InfoHash != m.InfoHash || !bytes.Equal(f.RawInfo, m.RawInfo) {
				t.Errorf("--save file: info hash %s, %d bytes of info; want %s, %d bytes", f.HexHash(), len(f.RawInfo), sw.hash, len(m.RawInfo))
			}
			if got := f.Trackers(); len(got) != len(tc.trackers) || len(got) > 0 && !reflect.DeepEqual(got, tc.trackers) {
				t.Errorf("--save file: trackers %q, want %q", got, tc.trackers)
			}
		})
	}
}
