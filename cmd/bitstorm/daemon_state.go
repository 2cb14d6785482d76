package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/bitstorm/bitstorm/internal/atomicfile"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/stages"
)

// The daemon's state file, <state-dir>/daemon.json, lists every torrent with what it
// needs to come back after a restart: where its .torrent is kept (or its magnet link,
// until the metadata arrives), its download directory, whether it was stopped, its
// settings and counters. It is rewritten whole, atomically, after every change.

// stateVersion is the format written and read.
const stateVersion = 1

type daemonState struct {
	Version    int                          `json:"version"`
	Session    transmission.SessionSettings `json:"session"`
	Cumulative transmission.StatsBlock      `json:"cumulative-stats"` // before the current run
	Torrents   []torrentRecord              `json:"torrents"`
}

// torrentRecord is one torrent of the state file.
type torrentRecord struct {
	ID          int                          `json:"id"`   // its RPC id, kept across restarts
	Hash        string                       `json:"hash"` // hex info hash
	Name        string                       `json:"name,omitempty"`
	TorrentFile string                       `json:"torrent-file,omitempty"` // below the state dir; "" until a magnet link's metadata is known
	Magnet      string                       `json:"magnet,omitempty"`
	DownloadDir string                       `json:"download-dir"`
	Paused      bool                         `json:"paused"`
	Finished    bool                         `json:"finished,omitempty"` // stopped by its seed limit (daemon_seed.go)
	Added       int64                        `json:"added"`              // Unix seconds
	Done        int64                        `json:"done,omitempty"`
	Downloaded  int64                        `json:"downloaded-ever"`
	Uploaded    int64                        `json:"uploaded-ever"`
	SecsDown    int64                        `json:"seconds-downloading"`
	SecsSeed    int64                        `json:"seconds-seeding"`
	Wanted      []bool                       `json:"wanted,omitempty"`
	Priorities  []transmission.Priority      `json:"priorities,omitempty"`
	Settings    transmission.TorrentSettings `json:"settings"`
	Queue       *int                         `json:"queue-position,omitempty"` // its place in the queue, when queued (daemon_queue.go)
}

func statePath(dir string) string { return filepath.Join(dir, "daemon.json") }

// torrentPath is where the .torrent of the torrent with hash is kept, relative to the
// state dir.
func torrentPath(hash [20]byte) string {
	return filepath.Join("torrents", hex.EncodeToString(hash[:])+".torrent")
}

// loadState reads the state file; a missing one is a first start. A state file that
// cannot be read stops the start rather than be overwritten with nothing.
func loadState(dir string) (*daemonState, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return &daemonState{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: state: %w", err)
	}
	var st daemonState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("daemon: state %s: %w (move it away to start afresh)", statePath(dir), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("daemon: state %s: version %d, want %d", statePath(dir), st.Version, stateVersion)
	}
	return &st, nil
}

// writeAtomic replaces path with data: a crash leaves the old file or the new one.
func writeAtomic(path string, data []byte) error { return atomicfile.Write(path, data) }

// lockStateDir takes <dir>/daemon.lock, so that two daemons never share a state; the
// returned function releases it.
func lockStateDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "daemon.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon: state dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: state dir %s is in use by another daemon", dir)
	}
	return func() { f.Close() }, nil
}

// removeStaleTemps deletes the temporary files a kill in the middle of writeAtomic left in
// the state dir (of the state file, of kept .torrent files); a crash loop would pile them
// up. Called with the state dir locked: no other daemon is writing them.
func removeStaleTemps(dir string) {
	for _, pattern := range []string{atomicfile.TempPrefix(statePath(dir)) + "*", filepath.Join("torrents", ".*.torrent.tmp-*")} {
		tmps, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, tmp := range tmps {
			os.Remove(tmp)
		}
	}
}

// save writes the state file; errors are logged (the daemon goes on: the next change
// tries again). While restore runs it writes nothing: restore saves once it is done.
func (d *daemon) save() {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	st := daemonState{Version: stateVersion}
	d.mu.Lock()
	if d.restoring {
		d.mu.Unlock()
		return
	}
	st.Session = d.settings
	entries := slices.Clone(d.entries)
	st.Cumulative = d.cum
	d.mu.Unlock()
	cur := d.current(entries)
	st.Cumulative.DownloadedBytes += cur.DownloadedBytes
	st.Cumulative.UploadedBytes += cur.UploadedBytes
	st.Cumulative.FilesAdded += cur.FilesAdded
	st.Cumulative.SecondsActive += cur.SecondsActive
	st.Torrents = []torrentRecord{}
	for _, e := range entries {
		st.Torrents = append(st.Torrents, e.record())
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = writeAtomic(statePath(d.stateDir), append(b, '\n'))
	}
	if err != nil {
		d.log.Error("cannot save the state", "err", err)
	}
}

// record is e as the state file keeps it.
func (e *entry) record() torrentRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	var st stages.Stats
	if e.t != nil {
		st = e.t.Stats()
	}
	down, up := e.ever(st)
	r := torrentRecord{ID: e.id, Hash: hex.EncodeToString(e.hash[:]), Name: e.name, TorrentFile: e.file, DownloadDir: e.dir,
		Paused: e.paused, Finished: e.finished, Added: e.added.Unix(), Downloaded: down, Uploaded: up, SecsDown: e.secsDown, SecsSeed: e.secsSeed,
		Wanted: e.wanted, Priorities: e.prios, Settings: e.settings}
	if e.file == "" {
		r.Magnet = e.link
	}
	if !e.done.IsZero() {
		r.Done = e.done.Unix()
	}
	r.Queue = e.queueRecord() // daemon_queue.go
	return r
}
