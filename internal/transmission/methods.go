package transmission

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
)

// handler runs one RPC method: args is the request's "arguments" object; the result is
// the response's, nil for none.
type handler func(s *Server, args json.RawMessage) (any, error)

// methods is the method table (libtransmission/rpcimpl.cc's methods[]).
var methods = map[string]handler{
	"session-get":          sessionGet,
	"session-set":          sessionSet,
	"session-stats":        sessionStats,
	"torrent-add":          torrentAdd,
	"torrent-get":          torrentGet,
	"torrent-set":          torrentSet,
	"torrent-start":        eachTorrent("torrent-start", Backend.Start),
	"torrent-start-now":    eachTorrent("torrent-start-now", Backend.StartNow),
	"torrent-stop":         eachTorrent("torrent-stop", Backend.Stop),
	"torrent-verify":       eachTorrent("torrent-verify", Backend.Verify),
	"torrent-reannounce":   eachTorrent("torrent-reannounce", Backend.Reannounce),
	"session-close":        sessionClose,
	"port-test":            portTest,
	"torrent-remove":       torrentRemove,
	"torrent-set-location": torrentSetLocation,
	"free-space":           freeSpace,
	"queue-move-top":       moveInQueue("queue-move-top", -1, toTop), // queue.go
	"queue-move-up":        moveInQueue("queue-move-up", 1, toUp),
	"queue-move-down":      moveInQueue("queue-move-down", -1, toDown),
	"queue-move-bottom":    moveInQueue("queue-move-bottom", 1, toBottom),
}

// decode reads args into v, saying which method's arguments were wrong.
func decode(method string, args json.RawMessage, v any) error {
	if err := json.Unmarshal(args, v); err != nil {
		return fmt.Errorf("%s: arguments: %w", method, err)
	}
	return nil
}

// sessionMap is every session-get field, by name.
func (s *Server) sessionMap() map[string]any {
	m := map[string]any{}
	b, _ := json.Marshal(s.b.Settings())
	json.Unmarshal(b, &m)
	info := s.b.Info()
	free := int64(-1)
	if f, _, err := s.b.FreeSpace(s.b.Settings().DownloadDir); err == nil {
		free = f
	}
	for k, v := range map[string]any{
		"version": info.Version, "rpc-version": RPCVersion, "rpc-version-minimum": 1,
		"session-id": s.sessionID, "config-dir": info.ConfigDir, "peer-port": info.PeerPort,
		"dht-enabled": info.DHTEnabled, "pex-enabled": info.PEXEnabled, "encryption": info.Encryption,
		"lpd-enabled": false, "utp-enabled": false, "port-forwarding-enabled": false, "peer-port-random-on-start": false,
		"download-dir-free-space": free, "cache-size-mb": 32,
		"blocklist-enabled": false, "blocklist-size": 0, "blocklist-url": "",
		"queue-stalled-enabled": false, "queue-stalled-minutes": 0,
		"incomplete-dir": "", "incomplete-dir-enabled": false, "rename-partial-files": false,
		"script-torrent-done-enabled": false, "script-torrent-done-filename": "", "trash-original-torrent-files": false,
		"alt-speed-time-enabled": false, "alt-speed-time-begin": 0, "alt-speed-time-end": 0, "alt-speed-time-day": 0,
		"units": map[string]any{
			"speed-units": []string{"kB/s", "MB/s", "GB/s", "TB/s"}, "speed-bytes": 1000,
			"size-units": []string{"kB", "MB", "GB", "TB"}, "size-bytes": 1000,
			"memory-units": []string{"KiB", "MiB", "GiB", "TiB"}, "memory-bytes": 1024,
		},
	} {
		m[k] = v
	}
	return m
}

// sessionGet answers the requested session fields, or all of them (spec 4.1.2).
func sessionGet(s *Server, args json.RawMessage) (any, error) {
	var a struct {
		Fields []string `json:"fields"`
	}
	if err := decode("session-get", args, &a); err != nil {
		return nil, err
	}
	m := s.sessionMap()
	if len(a.Fields) == 0 {
		return m, nil
	}
	out := map[string]any{}
	for _, f := range a.Fields {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return out, nil
}

// fixedSession are session fields that session-get reports and that cannot change: a
// session-set asking for another value is refused, the same value is accepted.
var fixedSession = []string{"peer-port", "dht-enabled", "pex-enabled", "lpd-enabled", "utp-enabled",
	"encryption", "port-forwarding-enabled", "blocklist-enabled", "incomplete-dir-enabled", "rename-partial-files",
	"script-torrent-done-enabled", "trash-original-torrent-files", "alt-speed-time-enabled"}

// sessionSet changes the session settings present in args (spec 4.1.1); fields that only
// session-get reports are ignored, as transmission does.
func sessionSet(s *Server, args json.RawMessage) (any, error) {
	var present map[string]json.RawMessage
	if err := decode("session-set", args, &present); err != nil {
		return nil, err
	}
	current := s.sessionMap()
	for _, k := range fixedSession {
		raw, ok := present[k]
		if !ok {
			continue
		}
		var v any
		json.Unmarshal(raw, &v)
		want, _ := json.Marshal(current[k])
		var cur any
		json.Unmarshal(want, &cur)
		if !reflect.DeepEqual(v, cur) {
			return nil, fmt.Errorf("session-set: %s cannot be changed over RPC (it is %s); restart the daemon with other flags", k, want)
		}
	}
	st := s.b.Settings()
	if err := decode("session-set", args, &st); err != nil {
		return nil, err
	}
	switch {
	case st.SpeedLimitDown < 0 || st.SpeedLimitUp < 0 || st.AltSpeedDown < 0 || st.AltSpeedUp < 0:
		return nil, errors.New("session-set: speed limits must not be negative")
	case st.PeerLimitGlobal < 0 || st.PeerLimitPerTorrent < 0:
		return nil, errors.New("session-set: peer limits must not be negative")
	case st.DownloadQueueSize < 0 || st.SeedQueueSize < 0,
		st.DownloadQueueEnabled && st.DownloadQueueSize == 0, st.SeedQueueEnabled && st.SeedQueueSize == 0:
		return nil, errors.New("session-set: an enabled queue's size (download-queue-size, seed-queue-size) must be at least 1")
	case st.SeedRatioLimit < 0:
		return nil, errors.New("session-set: seedRatioLimit must not be negative")
	case st.IdleSeedingLimit < 0:
		return nil, errors.New("session-set: idle-seeding-limit must not be negative")
	}
	if err := s.b.SetSettings(st); err != nil {
		return nil, fmt.Errorf("session-set: %w", err)
	}
	return nil, nil
}

// sessionStats answers spec 4.2.
func sessionStats(s *Server, _ json.RawMessage) (any, error) {
	st := s.b.Stats()
	return map[string]any{
		"activeTorrentCount": st.ActiveTorrentCount, "pausedTorrentCount": st.PausedTorrentCount,
		"torrentCount": st.TorrentCount, "downloadSpeed": st.DownloadSpeed, "uploadSpeed": st.UploadSpeed,
		"current-stats": st.Current, "cumulative-stats": st.Cumulative,
	}, nil
}

// torrentAdd adds a torrent from "metainfo" (a base64 .torrent) or "filename" (a magnet
// link, or a local path the backend may refuse); URLs of other schemes are refused: the
// daemon fetches nothing from the web on a client's behalf (spec 3.4).
func torrentAdd(s *Server, args json.RawMessage) (any, error) {
	var a struct {
		Filename          string   `json:"filename"`
		Metainfo          string   `json:"metainfo"`
		Paused            *bool    `json:"paused"`
		DownloadDir       string   `json:"download-dir"`
		PeerLimit         int      `json:"peer-limit"`
		BandwidthPriority Priority `json:"bandwidthPriority"`
		FilesWanted       []int    `json:"files-wanted"`
		FilesUnwanted     []int    `json:"files-unwanted"`
		PriorityHigh      []int    `json:"priority-high"`
		PriorityLow       []int    `json:"priority-low"`
		PriorityNormal    []int    `json:"priority-normal"`
		Labels            []string `json:"labels"`
		Cookies           string   `json:"cookies"`
	}
	if err := decode("torrent-add", args, &a); err != nil {
		return nil, err
	}
	add := AddArgs{DownloadDir: a.DownloadDir, PeerLimit: a.PeerLimit, BandwidthPriority: a.BandwidthPriority,
		FilesWanted: a.FilesWanted, FilesUnwanted: a.FilesUnwanted,
		PriorityHigh: a.PriorityHigh, PriorityLow: a.PriorityLow, PriorityNormal: a.PriorityNormal, Labels: a.Labels}
	switch {
	case a.Metainfo != "":
		// Base64 as transmission reads it: standard alphabet, line breaks allowed.
		clean := strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, a.Metainfo)
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "=")); err != nil {
				return nil, fmt.Errorf("torrent-add: metainfo: not base64: %w", err)
			}
		}
		add.Torrent = b
	case a.Filename == "":
		return nil, errors.New("torrent-add: no filename or metainfo given")
	case strings.HasPrefix(strings.ToLower(a.Filename), "magnet:"):
		add.Magnet = a.Filename
	default:
		if u, err := url.Parse(a.Filename); err == nil && len(u.Scheme) > 1 {
			return nil, fmt.Errorf("torrent-add: %q: a %s URL; this daemon fetches no URLs: send the .torrent as metainfo (transmission-remote -a reads a local file and does) or a magnet link", a.Filename, u.Scheme)
		}
		add.Path = a.Filename
	}
	if a.Paused != nil {
		add.Paused = *a.Paused
	} else {
		add.Paused = !s.b.Settings().StartAddedTorrents
	}
	t, dup, err := s.b.Add(add)
	if err != nil {
		return nil, fmt.Errorf("torrent-add: %w", err)
	}
	key := "torrent-added"
	if dup {
		key = "torrent-duplicate"
	}
	return map[string]any{key: torrentObject(t, []string{"id", "name", "hashString"})}, nil
}

// torrentGet answers the requested fields of the selected torrents (spec 3.3), as objects
// or as a table.
func torrentGet(s *Server, args json.RawMessage) (any, error) {
	var a struct {
		IDs    json.RawMessage `json:"ids"`
		Fields []string        `json:"fields"`
		Format string          `json:"format"`
	}
	if err := decode("torrent-get", args, &a); err != nil {
		return nil, err
	}
	if len(a.Fields) == 0 {
		return nil, errors.New("torrent-get: no fields specified")
	}
	sel, err := parseIDs(a.IDs)
	if err != nil {
		return nil, fmt.Errorf("torrent-get: %w", err)
	}
	ts := sel.pick(s.b.Torrents(), s.cfg.Now().Unix())
	out := map[string]any{}
	switch a.Format {
	case "", "objects":
		fl := knownFields(a.Fields)
		objs := make([]object, len(ts))
		for i, t := range ts {
			objs[i] = fl.object(t)
		}
		out["torrents"] = objs
	case "table":
		fields := slices.DeleteFunc(slices.Clone(a.Fields), func(f string) bool { return torrentFields[f] == nil })
		rows := [][]any{make([]any, len(fields))}
		for i, f := range fields {
			rows[0][i] = f
		}
		for _, t := range ts {
			row := make([]any, len(fields))
			for i, f := range fields {
				row[i] = torrentFields[f](t)
			}
			rows = append(rows, row)
		}
		out["torrents"] = rows
	default:
		return nil, fmt.Errorf("torrent-get: format %q: want objects or table", a.Format)
	}
	if sel.recent {
		out["removed"] = s.recentlyRemoved()
	}
	return out, nil
}

// selected resolves a request's "ids" for method.
func (s *Server) selected(method string, raw json.RawMessage) ([]*Torrent, error) {
	sel, err := parseIDs(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return sel.pick(s.b.Torrents(), s.cfg.Now().Unix()), nil
}

// eachTorrent is a torrent action (spec 3.1): do for each selected torrent; the errors
// are joined, naming the torrents.
func eachTorrent(method string, do func(Backend, int) error) handler {
	return func(s *Server, args json.RawMessage) (any, error) {
		var a struct {
			IDs json.RawMessage `json:"ids"`
		}
		if err := decode(method, args, &a); err != nil {
			return nil, err
		}
		ts, err := s.selected(method, a.IDs)
		if err != nil {
			return nil, err
		}
		var errs []string
		for _, t := range ts {
			if err := do(s.b, t.ID); err != nil {
				errs = append(errs, fmt.Sprintf("torrent %d (%s): %v", t.ID, t.Name, err))
			}
		}
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s: %s", method, strings.Join(errs, "; "))
		}
		return nil, nil
	}
}

// torrentRemove removes the selected torrents, their data too with delete-local-data
// (spec 3.5).
func torrentRemove(s *Server, args json.RawMessage) (any, error) {
	var a struct {
		IDs             json.RawMessage `json:"ids"`
		DeleteLocalData bool            `json:"delete-local-data"`
	}
	if err := decode("torrent-remove", args, &a); err != nil {
		return nil, err
	}
	ts, err := s.selected("torrent-remove", a.IDs)
	if err != nil {
		return nil, err
	}
	var errs []string
	for _, t := range ts {
		if err := s.b.Remove(t.ID, a.DeleteLocalData); err != nil {
			errs = append(errs, fmt.Sprintf("torrent %d (%s): %v", t.ID, t.Name, err))
			continue
		}
		s.noteRemoved(t.ID)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("torrent-remove: %s", strings.Join(errs, "; "))
	}
	return nil, nil
}

// torrentSetLocation gives the selected torrents a new download directory (spec 3.6):
// "location" is required; "move" true moves the data there, false (the default) means
// the data is there already.
func torrentSetLocation(s *Server, args json.RawMessage) (any, error) {
	var a struct {
		IDs      json.RawMessage `json:"ids"`
		Location *string         `json:"location"`
		Move     bool            `json:"move"`
	}
	if err := decode("torrent-set-location", args, &a); err != nil {
		return nil, err
	}
	if a.Location == nil || *a.Location == "" {
		return nil, errors.New("torrent-set-location: no location given")
	}
	return eachTorrent("torrent-set-location", func(b Backend, id int) error {
		return b.SetLocation(id, *a.Location, a.Move)
	})(s, args)
}

// unsupportedTorrentSet are torrent-set arguments refused with an error rather than
// ignored, since the client would believe them done.
var unsupportedTorrentSet = []string{"location", "trackerAdd", "trackerRemove", "trackerReplace"}

// torrentSet changes the settings present in args of each selected torrent, and its
// files' selection and priorities (spec 3.2). An empty file list means every file.
func torrentSet(s *Server, args json.RawMessage) (any, error) {
	var present map[string]json.RawMessage
	if err := decode("torrent-set", args, &present); err != nil {
		return nil, err
	}
	for _, k := range unsupportedTorrentSet {
		if _, ok := present[k]; ok {
			return nil, fmt.Errorf("torrent-set: %s is not supported", k)
		}
	}
	fileKeys := []string{"files-wanted", "files-unwanted", "priority-high", "priority-normal", "priority-low"}
	lists := map[string][]int{}
	for _, k := range fileKeys {
		if raw, ok := present[k]; ok {
			var l []int
			if err := json.Unmarshal(raw, &l); err != nil {
				return nil, fmt.Errorf("torrent-set: %s: %w", k, err)
			}
			lists[k] = nonNil(l)
		}
	}
	ts, err := s.selected("torrent-set", present["ids"])
	if err != nil {
		return nil, err
	}
	if err := s.setQueuePosition(ts, present["queuePosition"]); err != nil { // queue.go
		return nil, err
	}
	var errs []string
	for _, t := range ts {
		if err := s.setOne(t, args, lists); err != nil {
			errs = append(errs, fmt.Sprintf("torrent %d (%s): %v", t.ID, t.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("torrent-set: %s", strings.Join(errs, "; "))
	}
	return nil, nil
}

// setOne applies a torrent-set to t: the settings args holds over t's, then the file lists.
func (s *Server) setOne(t *Torrent, args json.RawMessage, lists map[string][]int) error {
	st := t.Settings
	st.Labels = slices.Clone(st.Labels)
	if err := json.Unmarshal(args, &st); err != nil {
		return err
	}
	switch {
	case st.DownloadLimit < 0 || st.UploadLimit < 0:
		return errors.New("speed limits must not be negative")
	case st.PeerLimit < 0:
		return errors.New("peer-limit must not be negative")
	case st.SeedRatioLimit < 0 || st.SeedRatioMode < 0 || st.SeedRatioMode > 2:
		return errors.New("seedRatioLimit must not be negative, seedRatioMode must be 0, 1 or 2")
	case st.SeedIdleLimit < 0 || st.SeedIdleMode < 0 || st.SeedIdleMode > 2:
		return errors.New("seedIdleLimit must not be negative, seedIdleMode must be 0, 1 or 2")
	case st.BandwidthPriority < PriorityLow || st.BandwidthPriority > PriorityHigh:
		return errors.New("bandwidthPriority must be -1, 0 or 1")
	}
	if !reflect.DeepEqual(st, t.Settings) {
		if err := s.b.SetTorrent(t.ID, st); err != nil {
			return err
		}
	}
	if len(lists) == 0 {
		return nil
	}
	if !t.HasMetadata {
		return errors.New("its files are not known yet (the magnet link's metadata has not arrived)")
	}
	n := len(t.Files)
	wanted, prios := make([]bool, n), make([]Priority, n)
	for i := range n {
		wanted[i], prios[i] = at(t.Wanted, i, true), at(t.Priorities, i, PriorityNormal)
	}
	apply := func(key string, f func(i int)) error {
		l, ok := lists[key]
		if !ok {
			return nil
		}
		if len(l) == 0 { // every file
			for i := range n {
				f(i)
			}
			return nil
		}
		for _, i := range l {
			if i < 0 || i >= n {
				return fmt.Errorf("%s: file %d does not exist (the torrent has %d files, numbered from 0)", key, i, n)
			}
			f(i)
		}
		return nil
	}
	for _, e := range []error{
		apply("files-wanted", func(i int) { wanted[i] = true }),
		apply("files-unwanted", func(i int) { wanted[i] = false }),
		apply("priority-high", func(i int) { prios[i] = PriorityHigh }),
		apply("priority-normal", func(i int) { prios[i] = PriorityNormal }),
		apply("priority-low", func(i int) { prios[i] = PriorityLow }),
	} {
		if e != nil {
			return e
		}
	}
	return s.b.SetFiles(t.ID, wanted, prios)
}

// freeSpace answers spec 4.7.
func freeSpace(s *Server, args json.RawMessage) (any, error) {
	var a struct {
		Path string `json:"path"`
	}
	if err := decode("free-space", args, &a); err != nil {
		return nil, err
	}
	free, total, err := s.b.FreeSpace(a.Path)
	if err != nil {
		return nil, fmt.Errorf("free-space: %w", err)
	}
	return map[string]any{"path": a.Path, "size-bytes": free, "total_size": total}, nil
}

// sessionClose ends the session (RPC spec 4.7): the answer goes first, then the daemon
// stops as on SIGTERM.
func sessionClose(s *Server, _ json.RawMessage) (any, error) {
	s.b.Close()
	return nil, nil
}

// portTest (RPC spec 4.4) would ask an outside service whether the peer port is open
// from the internet; BitStorm calls no outside service, and says so.
func portTest(*Server, json.RawMessage) (any, error) {
	return nil, errors.New("port-test: BitStorm asks no outside service whether its peer port is reachable")
}
