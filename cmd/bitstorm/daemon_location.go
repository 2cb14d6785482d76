package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
)

// SetLocation gives a torrent the download directory location (torrent-set-location,
// spec 3.6). A Torrent's directory is fixed when it joins the session, so the torrent
// stops, leaves the session (its data stays) and joins it again from location with the
// same settings, selection, counters and stopped state, keeping its RPC id and its record
// in the state file. With move its files, and what BitStorm keeps beside them (resume
// record, metadata, selection, part file), move there first (pipeline.MoveData, which
// overwrites nothing), and it goes on from its record; without, nothing moves: the data
// is looked for at location, and the torrent rechecks what it finds there. location must
// be inside the download root, as torrent-add's download-dir; a location refused, or a
// move that fails, leaves the torrent where it was.
func (d *daemon) SetLocation(id int, location string, move bool) error {
	e, err := d.byID(id)
	if err != nil {
		return err
	}
	dir := filepath.Clean(location)
	if err := d.within(dir); err != nil {
		return err
	}
	e.mu.Lock()
	if e.moving || e.checking {
		e.mu.Unlock()
		return errors.New("a move or a recheck of this torrent is under way; try again once it ends")
	}
	t, old := e.t, e.dir
	if dir == old {
		e.mu.Unlock()
		return nil
	}
	e.moving = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.moving = false
		e.mu.Unlock()
	}()

	m := t.Meta() // nil: a magnet link without its metadata, which has no data yet
	t.Pause()     // waits for the run to end, its resume record saved
	e.mu.Lock()
	if !e.stale { // the run's counters go to base, as for a restart (entry.resume)
		st := t.Stats()
		e.downBase, e.upBase, e.stale = e.downBase+st.Downloaded, e.upBase+st.Uploaded, true
	}
	e.mu.Unlock()
	if move {
		if err := pipeline.MoveData(m, e.hash, old, dir); err != nil {
			d.restart(e)
			return fmt.Errorf("nothing moved: %w", err)
		}
	}
	if err := t.Remove(false); err != nil {
		return err
	}
	e.mu.Lock()
	e.dir = dir
	e.mu.Unlock()
	t2, err := d.addToSession(e, addSpec{m: m, link: e.link})
	if err != nil {
		d.save()
		return fmt.Errorf("adding it again at %s: %w", dir, err)
	}
	d.mu.Lock()
	gone := d.byHash[e.hash] != e // torrent-remove came meanwhile
	d.mu.Unlock()
	if gone {
		return errors.Join(errors.New("removed while it moved"), t2.Remove(false))
	}
	e.mu.Lock()
	t2.SetHonorsSessionLimits(e.settings.HonorsSessionLimits)
	t2.AddUploaded(e.upBase) // toward its seed ratio
	e.t = t2
	// A new run counts from zero; until one runs, base holds every byte.
	e.stale = t2.State() != pipeline.Running
	if m != nil {
		e.have = loadHave(dir, m)
	}
	if !e.paused {
		e.startAt = time.Now()
	}
	e.mu.Unlock()
	if m == nil {
		d.goWait(func() { d.awaitInfo(e, t2) })
	}
	d.save()
	d.note(evMoved, e, "from", old, "dir", dir, "moved", move)
	if !move && m != nil {
		return d.Verify(id) // the record belongs to the old place: check what is here
	}
	return nil
}

// restart starts e's torrent again after a refused move, unless it was stopped.
func (d *daemon) restart(e *entry) {
	e.mu.Lock()
	paused := e.paused
	e.mu.Unlock()
	if paused {
		return
	}
	if err := e.resume((*pipeline.Torrent).Resume); err != nil {
		d.log.Warn("cannot start again after a refused move", "id", e.id, "err", err)
	}
}
