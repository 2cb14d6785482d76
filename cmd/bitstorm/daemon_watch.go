package main

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// watchInterval is how often the watch dir is listed.
const watchInterval = time.Second

// watch adds every .torrent file that appears in dir until ctx ends, each with the
// session's download dir and start-added-torrents, and renames it to .added once added
// (or found a duplicate), as transmission does. A file that does not parse is retried
// while it changes (it may still be being written) and logged once per version.
func (d *daemon) watch(ctx context.Context, dir string) {
	type version struct {
		size int64
		mod  time.Time
	}
	failed := map[string]version{}
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		ents, err := os.ReadDir(dir)
		if err != nil {
			d.log.Warn("cannot list the watch dir", "dir", dir, "err", err)
		}
		for _, de := range ents {
			name := de.Name()
			if !de.Type().IsRegular() || !strings.EqualFold(filepath.Ext(name), ".torrent") {
				continue
			}
			path := filepath.Join(dir, name)
			fi, err := de.Info()
			if err != nil {
				continue
			}
			v := version{fi.Size(), fi.ModTime()}
			if old, ok := failed[name]; ok && old == v {
				continue
			}
			raw, m, err := readTorrentFile(path)
			if err != nil {
				if time.Since(v.mod) > 2*watchInterval { // settled: not a file half written
					d.log.Warn("watch dir: not a torrent, left as is", "file", path, "err", err)
					failed[name] = v
				}
				continue
			}
			delete(failed, name)
			d.mu.Lock()
			sp := addSpec{m: m, raw: raw, rec: torrentRecord{DownloadDir: d.settings.DownloadDir, Paused: !d.settings.StartAddedTorrents}}
			d.mu.Unlock()
			sp.rec.Settings.HonorsSessionLimits = true
			e, dup, err := d.add(sp)
			if err != nil {
				d.log.Warn("watch dir: cannot add", "file", path, "err", err)
				failed[name] = v
				continue
			}
			// Renamed before the added record, so that a reader of the log finds it done.
			renamed := os.Rename(path, path+".added")
			if !dup {
				d.mu.Lock()
				d.added++
				d.mu.Unlock()
				d.note(evAdded, e, "hash", hex.EncodeToString(e.hash[:]), "dir", e.dir, "paused", sp.rec.Paused, "from", path)
				d.save()
			}
			if renamed != nil {
				d.log.Warn("watch dir: cannot rename to .added", "file", path, "err", renamed)
				failed[name] = v
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
