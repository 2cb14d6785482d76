package main

import (
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/bitstorm/bitstorm/internal/magnet"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/transmission"
	"github.com/bitstorm/bitstorm/internal/wire"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages"
)

// A torrent as torrent-get sees it: the snapshot transmission's field table reads.

// view is e as torrent-get sees it.
func (e *entry) view() *transmission.Torrent {
	e.mu.Lock()
	t := e.t
	e.mu.Unlock()
	st, state, m := t.Stats(), t.State(), t.Meta()
	e.mu.Lock()
	defer e.mu.Unlock()
	v := &transmission.Torrent{
		ID: e.id, HashString: hex.EncodeToString(e.hash[:]), Name: e.name, DownloadDir: e.dir,
		AddedDate: e.added.Unix(), DoneDate: unixOr0(e.done), StartDate: unixOr0(e.startAt), ActivityDate: unixOr0(e.active),
		SecondsDownloading: e.secsDown, SecondsSeeding: e.secsSeed, Settings: e.settings, ETA: -1,
		RateDownload: int64(e.rateDown), RateUpload: int64(e.rateUp), QueuePosition: t.QueuePosition(),
	}
	if v.Name == "" {
		v.Name = v.HashString
	}
	v.Settings.Labels = slices.Clone(v.Settings.Labels)
	v.DownloadedEver, v.UploadedEver = e.ever(st)
	// The peers at the last tick (daemon_peers.go); transmission-remote -l says
	// Downloading, Seeding, Up & Down or Idle from their counts.
	v.Peers = e.peers
	v.TrackerStats = maps.Clone(e.trackers)
	v.PeersConnected, v.PeersSendingToUs, v.PeersGettingFromUs = peerCounts(e.peers)
	if e.link != "" {
		v.MagnetLink = e.link
	}
	if m != nil {
		e.fillMeta(v, m, st)
	}
	switch state {
	case pipeline.Running:
		v.Status = transmission.StatusDownload
		if m != nil && v.LeftUntilDone == 0 {
			v.Status = transmission.StatusSeed
		}
	case pipeline.Queued:
		v.Status = queueStatus(t) // daemon_queue.go
	case pipeline.Failed:
		v.Error, v.ErrorString = transmission.ErrLocal, errString(t.Err())
	}
	v.IsFinished = e.isFinished(state) // daemon_seed.go
	if e.checking || state == pipeline.Checking {
		v.Status = transmission.StatusCheck
	}
	if v.Status == transmission.StatusDownload && v.RateDownload > 0 {
		v.ETA = v.LeftUntilDone / v.RateDownload
	}
	return v
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fillMeta sets what the metadata tells: files, sizes, progress. Progress is the run's
// when it has one (Stats), else what the resume record and the verified pieces tell.
// Called with e.mu.
func (e *entry) fillMeta(v *transmission.Torrent, m *metainfo.MetaInfo, st stages.Stats) {
	info := &m.Info
	v.HasMetadata = true
	v.Name = info.Name
	v.Comment, v.Creator, v.IsPrivate = m.Comment, m.CreatedBy, info.Private
	if !m.CreationDate.IsZero() {
		v.DateCreated = m.CreationDate.Unix()
	}
	v.PieceCount, v.PieceSize, v.TotalSize = info.NumPieces(), info.PieceLength, info.Length
	v.Trackers, v.Webseeds = m.Trackers(), m.URLList
	if v.MagnetLink == "" {
		mag := magnet.Magnet{InfoHash: m.InfoHash, Name: info.Name}
		for _, tier := range m.Trackers() {
			mag.Trackers = append(mag.Trackers, tier...)
		}
		v.MagnetLink = mag.String()
	}
	if e.have == nil {
		e.have = wire.NewBitfield(info.NumPieces())
	}
	if st.Total > 0 && st.Verified == st.Total {
		for i := range info.NumPieces() {
			e.have.Set(i)
		}
	}
	done := fileProgress(info, e.have)
	for i, f := range info.Files {
		v.Files = append(v.Files, transmission.File{Name: strings.Join(f.Path, "/"), Length: f.Length, BytesCompleted: done[i]})
		wanted := i >= len(e.wanted) || e.wanted[i]
		prio := transmission.PriorityNormal
		if i < len(e.prios) {
			prio = e.prios[i]
		}
		v.Wanted, v.Priorities = append(v.Wanted, wanted), append(v.Priorities, prio)
		if wanted {
			v.SizeWhenDone += f.Length
			v.LeftUntilDone += f.Length - done[i]
		}
		v.HaveValid += done[i]
	}
	if st.Total > 0 { // a run's own count is exact: pieces, not files
		v.HaveValid, v.SizeWhenDone, v.LeftUntilDone = st.Verified, st.Wanted, st.Left()
	}
	v.DesiredAvailable = v.LeftUntilDone
}

// fileProgress is the bytes of each file inside the pieces of have.
func fileProgress(info *metainfo.Info, have wire.Bitfield) []int64 {
	done := make([]int64, len(info.Files))
	n := info.NumPieces()
	fi := 0
	for p := range n {
		if !have.Has(p) {
			continue
		}
		start, end := info.PieceOffset(p), info.PieceOffset(p)+info.PieceSize(p)
		for fi < len(info.Files) && info.Files[fi].Offset+info.Files[fi].Length <= start {
			fi++
		}
		for j := fi; j < len(info.Files) && info.Files[j].Offset < end; j++ {
			f := info.Files[j]
			done[j] += min(end, f.Offset+f.Length) - max(start, f.Offset)
		}
	}
	return done
}
