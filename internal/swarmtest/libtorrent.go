package swarmtest

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

//go:embed ltpeer.py
var libtorrentScript string

// StartLibtorrentSeeder seeds torrentPath from dataDir (the directory that
// holds the torrent's name) with libtorrent on 127.0.0.1 at a free port. It
// skips the initial hash check (seed_mode), announces to the torrent's
// tracker, and returns once libtorrent seeds and the tracker has answered.
// The seeder runs until Stop or until ctx ends. Its log goes beside
// torrentPath.
func StartLibtorrentSeeder(ctx context.Context, torrentPath, dataDir string) (*Process, error) {
	return StartLibtorrentSeederLimited(ctx, torrentPath, dataDir, 0)
}

// StartLibtorrentSeederLimited is StartLibtorrentSeeder with libtorrent's own upload
// rate limit (upload_rate_limit, bytes per second; 0 for none). A test that must
// interrupt a download part-way uses it, so that the download takes as long on a fast
// machine as on a slow one.
func StartLibtorrentSeederLimited(ctx context.Context, torrentPath, dataDir string, uploadLimit int) (*Process, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logPath := logBeside(torrentPath, fmt.Sprintf("libtorrent-seed-%d", port))
	cmd, err := libtorrentCmd("seed", torrentPath, dataDir, port, filepath.Dir(logPath),
		"--upload-limit", strconv.Itoa(uploadLimit))
	if err != nil {
		return nil, err
	}
	var lw *lineWatcher
	p, err := start(ctx, "libtorrent seeder", cmd, logPath,
		func(w io.Writer) io.Writer { lw = newLineWatcher(w, "seeding "); return lw })
	if err != nil {
		return nil, err
	}
	if _, err := waitLine(ctx, p, lw, time.Minute); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// StartLibtorrentSeeders seeds torrentPath from dataDir with n libtorrent
// sessions in one Python process: n seeders of one torrent, as a tracker and a
// leecher see them, for the cost of one interpreter. Each session listens on a
// port of 127.0.0.1 that the system picks (so no two can race for one), skips
// the initial hash check, and announces to the torrent's tracker without
// asking it for peers, so the seeders do not dial one another. It returns the
// ports once every session seeds and the tracker has answered each; the
// process runs until Stop or until ctx ends. Its log goes beside torrentPath
// and has a line "status port=P peers=N uploaded=U" each second a session's
// upload total changed.
func StartLibtorrentSeeders(ctx context.Context, torrentPath, dataDir string, n int) (*Process, []int, error) {
	if n < 1 {
		return nil, nil, fmt.Errorf("swarmtest: libtorrent seeders: count %d, want at least 1", n)
	}
	logPath := logBeside(torrentPath, fmt.Sprintf("libtorrent-seeders-%d-%d", n, seedersRun.Add(1)))
	cmd, err := libtorrentCmd("seeds", torrentPath, dataDir, 0, filepath.Dir(logPath), "--count", strconv.Itoa(n))
	if err != nil {
		return nil, nil, err
	}
	var lw *lineWatcher
	p, err := start(ctx, "libtorrent seeders", cmd, logPath,
		func(w io.Writer) io.Writer { lw = newLineWatcher(w, "seeding ports="); return lw })
	if err != nil {
		return nil, nil, err
	}
	// Sessions start and announce one after another: allow more than one seeder's minute.
	line, err := waitLine(ctx, p, lw, time.Minute+time.Duration(n)*time.Second)
	if err == nil {
		var ports []int
		ports, err = parsePorts(strings.TrimPrefix(line, "seeding ports="), n)
		if err == nil {
			return p, ports, nil
		}
	}
	p.Stop()
	return nil, nil, err
}

// seedersRun numbers the StartLibtorrentSeeders calls, for their log names.
var seedersRun atomic.Int64

// parsePorts reads n comma-separated distinct ports.
func parsePorts(s string, n int) ([]int, error) {
	fields := strings.Split(s, ",")
	if len(fields) != n {
		return nil, fmt.Errorf("swarmtest: libtorrent seeders: %d ports in %q, want %d", len(fields), s, n)
	}
	ports := make([]int, n)
	seen := make(map[int]bool, n)
	for i, f := range fields {
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 || p > 65535 || seen[p] {
			return nil, fmt.Errorf("swarmtest: libtorrent seeders: bad or repeated port %q in %q", f, s)
		}
		ports[i], seen[p] = p, true
	}
	return ports, nil
}

// RunLibtorrentLeecher downloads torrentPath into outDir with libtorrent on
// 127.0.0.1 and returns when it has every piece. Result.Wall includes the
// interpreter's start and the first announce. Its log goes to outDir+".log".
func RunLibtorrentLeecher(ctx context.Context, torrentPath, outDir string) (Result, error) {
	port, err := FreePort()
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("swarmtest: libtorrent leecher: %w", err)
	}
	logPath := filepath.Clean(outDir) + ".log"
	cmd, err := libtorrentCmd("leech", torrentPath, outDir, port, filepath.Dir(logPath))
	if err != nil {
		return Result{}, err
	}
	p, err := start(ctx, "libtorrent leecher", cmd, logPath, nil)
	if err != nil {
		return Result{}, err
	}
	res, err := p.Wait()
	if err == nil && len(scanLines(p.LogPath, "finished ")) == 0 {
		err = fmt.Errorf("swarmtest: libtorrent leecher exited without finishing%s", p.tailSuffix())
	}
	return res, err
}

// StartLibtorrentEncrypted starts libtorrent on 127.0.0.1 at a free port with protocol
// encryption forced (ltpeer.py --encryption forced: MSE/PE with RC4, both ways; plain
// handshakes and the plaintext method are refused). With seed, it seeds torrentPath from
// dir as StartLibtorrentSeeder does and returns once it seeds and the tracker has
// answered; otherwise it downloads into dir, its log at dir+".log", and exits once it has
// every piece: wait for it with Process.Wait.
func StartLibtorrentEncrypted(ctx context.Context, torrentPath, dir string, seed bool) (*Process, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	mode, logPath := "leech", filepath.Clean(dir)+".log"
	if seed {
		mode, logPath = "seed", logBeside(torrentPath, fmt.Sprintf("libtorrent-seed-encrypted-%d", port))
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("swarmtest: libtorrent leecher: %w", err)
	}
	cmd, err := libtorrentCmd(mode, torrentPath, dir, port, filepath.Dir(logPath), "--encryption", "forced")
	if err != nil {
		return nil, err
	}
	if !seed {
		return start(ctx, "libtorrent leecher (encryption forced)", cmd, logPath, nil)
	}
	var lw *lineWatcher
	p, err := start(ctx, "libtorrent seeder (encryption forced)", cmd, logPath,
		func(w io.Writer) io.Writer { lw = newLineWatcher(w, "seeding "); return lw })
	if err != nil {
		return nil, err
	}
	if _, err := waitLine(ctx, p, lw, time.Minute); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// MagnetMetadata is what a libtorrent magnet leecher learned from the metadata it
// fetched (BEP 9).
type MagnetMetadata struct {
	InfoHash string // hex SHA-1 of the info dictionary, as libtorrent computed it
	Name     string // the info dictionary's name
}

// RunLibtorrentMagnetLeecher downloads the torrent a magnet link names into
// outDir with libtorrent on 127.0.0.1, holding no .torrent file: it fetches the
// metadata (BEP 9) from the link's trackers and x.pe peers and from each of
// peers, which it dials itself once the link is added (no tracker needed; DHT
// stays off). It returns when it has every piece, with what the metadata said.
// Its log goes to outDir+".log".
func RunLibtorrentMagnetLeecher(ctx context.Context, magnetURI, outDir string, peers ...netip.AddrPort) (Result, MagnetMetadata, error) {
	port, err := FreePort()
	if err != nil {
		return Result{}, MagnetMetadata{}, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, MagnetMetadata{}, fmt.Errorf("swarmtest: libtorrent magnet leecher: %w", err)
	}
	logPath := filepath.Clean(outDir) + ".log"
	extra := []string{"--magnet", magnetURI}
	for _, p := range peers {
		extra = append(extra, "--peer", p.String())
	}
	cmd, err := libtorrentCmd("magnet", "", outDir, port, filepath.Dir(logPath), extra...)
	if err != nil {
		return Result{}, MagnetMetadata{}, err
	}
	p, err := start(ctx, "libtorrent magnet leecher", cmd, logPath, nil)
	if err != nil {
		return Result{}, MagnetMetadata{}, err
	}
	res, err := p.Wait()
	var md MagnetMetadata
	if lines := scanLines(p.LogPath, "metadata "); len(lines) > 0 {
		md = parseMagnetMetadata(lines[0])
	}
	if err == nil && (md.InfoHash == "" || len(scanLines(p.LogPath, "finished ")) == 0) {
		err = fmt.Errorf("swarmtest: libtorrent magnet leecher exited without finishing%s", p.tailSuffix())
	}
	return res, md, err
}

// LibtorrentMagnetCmd returns the command that downloads the torrent a magnet link names
// into outDir with libtorrent on 127.0.0.1:port, as RunLibtorrentMagnetLeecher does, with
// extra arguments of the script's magnet mode (--first-piece, --peer), for a caller that
// starts it itself and watches its output: a benchmark timing the "first-piece" and
// "finished" lines, say. The script is written beside outDir.
func LibtorrentMagnetCmd(magnetURI, outDir string, port int, extra ...string) (*exec.Cmd, error) {
	return libtorrentCmd("magnet", "", outDir, port, filepath.Dir(filepath.Clean(outDir)),
		append([]string{"--magnet", magnetURI}, extra...)...)
}

// parseMagnetMetadata reads "metadata elapsed=S info_hash=HEX name=NAME"; the name,
// last, may hold spaces.
func parseMagnetMetadata(line string) MagnetMetadata {
	var md MagnetMetadata
	_, rest, _ := strings.Cut(line, " info_hash=")
	md.InfoHash, md.Name, _ = strings.Cut(rest, " name=")
	return md
}

// libtorrentCmd writes the script into scriptDir (so that ps shows a short
// command line) and returns the command that runs it, with extra arguments
// after the common ones; torrentPath may be "" (magnet mode). -I keeps the user's
// site-packages and environment out.
func libtorrentCmd(mode, torrentPath, dir string, port int, scriptDir string, extra ...string) (*exec.Cmd, error) {
	script := filepath.Join(scriptDir, "swarmtest-ltpeer.py")
	tmp, err := os.CreateTemp(scriptDir, "swarmtest-ltpeer-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("swarmtest: libtorrent script: %w", err)
	}
	_, err = tmp.WriteString(libtorrentScript)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), script) // atomic: peers may start side by side
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("swarmtest: libtorrent script: %w", err)
	}
	args := []string{"-I", "-u", script, mode, "--save", dir, "--port", strconv.Itoa(port)}
	if torrentPath != "" {
		args = append(args, "--torrent", torrentPath)
	}
	args = append(args, extra...)
	return exec.Command(Python, args...), nil
}

// logBeside names a log file in the directory of path.
func logBeside(path, name string) string {
	return filepath.Join(filepath.Dir(path), name+".log")
}
