package main

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/swarmtest"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// TestDaemonLowPriority: transmission-remote -pl makes a file low (-1 in the RPC's
// priorities): -f shows it Low before and after the download, the torrent's kept
// selection has it as pipeline.FileLow (the pipeline fetches it last, not as normal), and
// the torrent completes with every file intact.
func TestDaemonLowPriority(t *testing.T) {
	swarmtest.Require(t, swarmtest.TransmissionRemote)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tor := swarm(t, stagetest.NewTorrent(t, 97, "lowpri", 16<<10, 100_000, 50_000, 70_000))[0]
	dl := t.TempDir()
	p := startDaemonProc(t, ctx, buildBinary(t), "--download-dir", dl, "--state-dir", t.TempDir())

	p.mustRemote(t, ctx, "--start-paused", "-a", saveTorrent(t, t.TempDir(), tor))
	p.mustRemote(t, ctx, "-t", "1", "-pl", "1")
	low := regexp.MustCompile(`(?m)^\s*1: +\d+% Low\s+Yes\s`)
	if files := p.mustRemote(t, ctx, "-t", "1", "-f"); !low.MatchString(files) {
		t.Errorf("after -pl 1, -f shows:\n%s", files)
	}
	p.mustRemote(t, ctx, "-t", "1", "-s")
	p.waitRow(t, ctx, "lowpri", complete100)
	checkOnDisk(t, dl, tor)
	if files := p.mustRemote(t, ctx, "-t", "1", "-f"); !regexp.MustCompile(`(?m)^\s*1: 100% Low\s+Yes\s`).MatchString(files) {
		t.Errorf("once complete, -f shows:\n%s", files)
	}
	prios, err := pipeline.SavedFilePriorities(dl, tor.Meta)
	if want := []pipeline.FilePriority{pipeline.FileNormal, pipeline.FileLow, pipeline.FileNormal}; err != nil || !slices.Equal(prios, want) {
		t.Errorf("kept selection %v, %v; want %v", prios, err, want)
	}
}

// TestFilePriorityMapping: Transmission's wanted flag and priority per file, as
// torrent-set and torrent-add give them, become one pipeline.FilePriority.
func TestFilePriorityMapping(t *testing.T) {
	for _, c := range []struct {
		wanted bool
		p      transmission.Priority
		want   pipeline.FilePriority
	}{
		{true, transmission.PriorityLow, pipeline.FileLow},
		{true, transmission.PriorityNormal, pipeline.FileNormal},
		{true, transmission.PriorityHigh, pipeline.FileHigh},
		{false, transmission.PriorityLow, pipeline.FileSkip},
		{false, transmission.PriorityHigh, pipeline.FileSkip},
	} {
		if got := filePriority(c.wanted, c.p); got != c.want {
			t.Errorf("filePriority(%v, %d) = %v, want %v", c.wanted, c.p, got, c.want)
		}
	}
	// torrent-add's priority-low, through the option the daemon gives the pipeline.
	wanted, prios, err := addSelection(3, transmission.AddArgs{PriorityLow: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	if got := filePriority(wanted[2], prios[2]); got != pipeline.FileLow {
		t.Errorf("torrent-add priority-low [2]: file 2 is %v, want low", got)
	}
}
