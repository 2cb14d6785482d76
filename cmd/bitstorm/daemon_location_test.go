package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestDaemonSetLocation drives torrent-set-location with transmission-remote 3.00: a
// complete torrent moved with --move has its files (and its resume record) at the new
// place and none at the old, -i shows the new location, it seeds again from its record
// without downloading, and a restart keeps the location; a move out of the download
// root, or onto a file already there, is refused with the reason and moves nothing;
// --find points a stopped torrent at files copied there beforehand, which it rechecks:
// 100 % without a byte downloaded.
func TestDaemonSetLocation(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tors := swarm(t, stagetest.NewTorrent(t, 151, "moved", 16<<10, 90_000, 40_000),
		stagetest.NewTorrent(t, 152, "found", 16<<10, 60_000, 30_000))
	moved, found := tors[0], tors[1]
	dl, state, tdir, outside := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	bin := buildBinary(t)
	p := startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	p.mustRemote(t, ctx, "-a", saveTorrent(t, tdir, moved))
	p.waitRow(t, ctx, "moved", complete100)
	p.waitRecord(t, ctx, evCompleted, 1)
	checkOnDisk(t, dl, moved)
	kept := func(dir string) []string {
		names, _ := filepath.Glob(filepath.Join(dir, ".bitstorm", moved.Meta.HexHash()+"*"))
		return names
	}

	// Refused: out of the download root, and onto a file of the torrent already there.
	if out, ok := p.remote(t, ctx, "-t", "1", "--move", outside); ok || !strings.Contains(out, "outside the download directory") {
		t.Errorf("--move %s (outside the root): ok=%v %s", outside, ok, out)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a refused move left %d entries in %s", len(ents), outside)
	}
	blocked := filepath.Join(dl, "blocked")
	theirs := filepath.Join(append([]string{blocked}, moved.Meta.Info.Files[1].Path...)...)
	if err := os.MkdirAll(filepath.Dir(theirs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(theirs, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, ok := p.remote(t, ctx, "-t", "1", "--move", blocked); ok || !strings.Contains(out, "already exists at the new location") {
		t.Errorf("--move onto an existing file: ok=%v %s", ok, out)
	}
	if b, _ := os.ReadFile(theirs); string(b) != "theirs" {
		t.Errorf("a refused move overwrote %s: %q", theirs, b)
	}
	if _, err := os.Stat(filepath.Join(append([]string{blocked}, moved.Meta.Info.Files[0].Path...)...)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused move moved file 0 (%v)", err)
	}
	checkOnDisk(t, dl, moved)
	if info := p.mustRemote(t, ctx, "-t", "1", "-i"); !strings.Contains(info, "Location: "+dl+"\n") {
		t.Errorf("-i after the refused moves:\n%s", info)
	}
	// Started again, from its record in the old place.
	if r := p.waitRecord(t, ctx, evResumed, 1); !r.FromRecord || r.Pieces != moved.Meta.Info.NumPieces() {
		t.Errorf("the run after the refused move: %+v, want all pieces from its record", r)
	}

	// --move: the files and the record go, the torrent seeds again from its record.
	resumedBefore := len(p.torrentRecords(t, evResumed))
	dl2 := filepath.Join(dl, "two")
	if out := p.mustRemote(t, ctx, "-t", "1", "--move", dl2); !strings.Contains(out, `responded: "success"`) {
		t.Fatalf("--move %s: %s", dl2, out)
	}
	checkOnDisk(t, dl2, moved)
	if _, err := os.Stat(filepath.Join(dl, moved.Meta.Info.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after --move, %s is still in %s (%v)", moved.Meta.Info.Name, dl, err)
	}
	if old, now := kept(dl), kept(dl2); len(old) != 0 || len(now) == 0 {
		t.Errorf("after --move, kept files in the old place %q, in the new %q; want all moved", old, now)
	}
	if info := p.mustRemote(t, ctx, "-t", "1", "-i"); !strings.Contains(info, "Location: "+dl2+"\n") || !strings.Contains(info, "Percent Done: 100%") {
		t.Errorf("-i after --move:\n%s", info)
	}
	p.waitRow(t, ctx, "moved", complete100)
	r := p.waitRecordAfter(t, ctx, evResumed, 1, resumedBefore)
	if !r.FromRecord || r.Pieces != moved.Meta.Info.NumPieces() {
		t.Errorf("the run after --move: %+v, want all %d pieces from its record", r, moved.Meta.Info.NumPieces())
	}
	if got, want := p.lifecycle(t, 1), []string{"added", "completed", "location_set"}; !slices.Equal(got, want) {
		t.Errorf("torrent 1's lifecycle records %q, want %q", got, want)
	}

	// --find: a stopped torrent pointed at files copied there rechecks them.
	dl3 := filepath.Join(dl, "three")
	writeFiles(t, dl3, found)
	p.mustRemote(t, ctx, "--start-paused", "-a", saveTorrent(t, tdir, found))
	if r := p.row(t, ctx, "found"); r.id != 2 || r.done != "0%" || r.status != "Stopped" {
		t.Fatalf("found, added paused: %+v", r)
	}
	p.mustRemote(t, ctx, "-t", "2", "--find", dl3)
	if r := p.waitRecord(t, ctx, evVerified, 2); r.Pieces != found.Meta.Info.NumPieces() {
		t.Errorf("the recheck after --find: %+v, want all %d pieces", r, found.Meta.Info.NumPieces())
	}
	if r := p.row(t, ctx, "found"); r.done != "100%" || r.status != "Stopped" {
		t.Errorf("found after --find: %+v, want 100%% and still Stopped", r)
	}
	if info := p.mustRemote(t, ctx, "-t", "2", "-i"); !strings.Contains(info, "Location: "+dl3+"\n") || !strings.Contains(info, "Downloaded: None") {
		t.Errorf("-i after --find:\n%s", info)
	}
	p.stop(t, ctx)

	// A restart keeps both locations; the moved torrent resumes from its record there.
	p = startDaemonProc(t, ctx, bin, "--download-dir", dl, "--state-dir", state)
	p.waitRow(t, ctx, "moved", complete100)
	if info := p.mustRemote(t, ctx, "-t", "1", "-i"); !strings.Contains(info, "Location: "+dl2+"\n") {
		t.Errorf("-i of the moved torrent after a restart:\n%s", info)
	}
	if info := p.mustRemote(t, ctx, "-t", "2", "-i"); !strings.Contains(info, "Location: "+dl3+"\n") {
		t.Errorf("-i of the found torrent after a restart:\n%s", info)
	}
	if r := p.waitRecord(t, ctx, evResumed, 1); !r.FromRecord || r.Pieces != moved.Meta.Info.NumPieces() {
		t.Errorf("the moved torrent after a restart: %+v, want all pieces from its record", r)
	}
	checkOnDisk(t, dl2, moved)
	checkOnDisk(t, dl3, found)
	p.stop(t, ctx)
}
