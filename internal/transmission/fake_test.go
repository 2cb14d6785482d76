package transmission

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// fakeBackend is a Backend in memory that records what was asked of it.
type fakeBackend struct {
	mu       sync.Mutex
	torrents []*Torrent
	settings SessionSettings
	calls    []string
	added    []AddArgs
	failAdd  error
}

func newFake() *fakeBackend {
	return &fakeBackend{
		settings: SessionSettings{DownloadDir: "/dl", StartAddedTorrents: true, PeerLimitGlobal: 200, PeerLimitPerTorrent: 50},
		torrents: []*Torrent{
			{ID: 1, HashString: strings.Repeat("ab", 20), Name: "one", HasMetadata: true, Status: StatusDownload, QueuePosition: 1,
				TotalSize: 1000, SizeWhenDone: 1000, LeftUntilDone: 250, HaveValid: 750, DownloadedEver: 800,
				UploadedEver: 400, RateDownload: 100, ETA: 2, PeersConnected: 2, DownloadDir: "/dl", AddedDate: 100,
				Files:  []File{{Name: "one/a", Length: 600, BytesCompleted: 600}, {Name: "one/b", Length: 400, BytesCompleted: 150}},
				Wanted: []bool{true, true}, Priorities: []Priority{PriorityNormal, PriorityHigh},
				Trackers: [][]string{{"http://t.example/announce"}}, Settings: TorrentSettings{PeerLimit: 50, HonorsSessionLimits: true}},
			{ID: 2, HashString: strings.Repeat("cd", 20), Name: "two", Status: StatusStopped, DownloadDir: "/dl/x", AddedDate: 100,
				Error: ErrLocal, ErrorString: "disk full"},
		},
	}
}

func (f *fakeBackend) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeBackend) find(id int) (*Torrent, error) {
	for _, t := range f.torrents {
		if t.ID == id {
			return t, nil
		}
	}
	return nil, errors.New("no such torrent")
}

func (f *fakeBackend) Torrents() []*Torrent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Torrent, len(f.torrents))
	for i, t := range f.torrents {
		c := *t
		out[i] = &c
	}
	return out
}

func (f *fakeBackend) Add(a AddArgs) (*Torrent, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, a)
	if f.failAdd != nil {
		return nil, false, f.failAdd
	}
	if a.Magnet != "" && strings.Contains(a.Magnet, strings.Repeat("ab", 20)) {
		return f.torrents[0], true, nil
	}
	t := &Torrent{ID: len(f.torrents) + 1, HashString: strings.Repeat("ef", 20), Name: "new"}
	f.torrents = append(f.torrents, t)
	return t, false, nil
}

func (f *fakeBackend) Start(id int) error      { return f.act("start", id) }
func (f *fakeBackend) StartNow(id int) error   { return f.act("start-now", id) }
func (f *fakeBackend) Stop(id int) error       { return f.act("stop", id) }
func (f *fakeBackend) Verify(id int) error     { return f.act("verify", id) }
func (f *fakeBackend) Reannounce(id int) error { return f.act("reannounce", id) }

func (f *fakeBackend) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("close")
}

func (f *fakeBackend) SetQueuePosition(id, pos int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("queue-position %d %d", id, pos)
	return nil
}

func (f *fakeBackend) act(what string, id int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("%s %d", what, id)
	if id == 2 && what == "start" {
		return errors.New("cannot start")
	}
	return nil
}

func (f *fakeBackend) Remove(id int, deleteData bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("remove %d %v", id, deleteData)
	f.torrents = slices.DeleteFunc(f.torrents, func(t *Torrent) bool { return t.ID == id })
	return nil
}

func (f *fakeBackend) SetTorrent(id int, s TorrentSettings) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.find(id)
	if err != nil {
		return err
	}
	f.call("set %d %+v", id, s)
	t.Settings = s
	return nil
}

func (f *fakeBackend) SetLocation(id int, location string, move bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.find(id)
	if err != nil {
		return err
	}
	if location != "/dl" && !strings.HasPrefix(location, "/dl/") {
		return fmt.Errorf("%q: outside /dl", location)
	}
	f.call("location %d %s %v", id, location, move)
	t.DownloadDir = location
	return nil
}

func (f *fakeBackend) SetFiles(id int, wanted []bool, prios []Priority) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.find(id)
	if err != nil {
		return err
	}
	f.call("files %d %v %v", id, wanted, prios)
	t.Wanted, t.Priorities = wanted, prios
	return nil
}

func (f *fakeBackend) Settings() SessionSettings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settings
}

func (f *fakeBackend) SetSettings(s SessionSettings) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.DownloadDir != "/dl" && !strings.HasPrefix(s.DownloadDir, "/dl/") {
		return fmt.Errorf("download-dir %q: outside /dl", s.DownloadDir)
	}
	f.call("session %+v", s)
	f.settings = s
	return nil
}

func (f *fakeBackend) Info() SessionInfo {
	return SessionInfo{Version: "3.00 (BitStorm)", ConfigDir: "/state", PeerPort: 6881, Encryption: "preferred"}
}

func (f *fakeBackend) Stats() SessionStats {
	return SessionStats{ActiveTorrentCount: 1, PausedTorrentCount: 1, TorrentCount: 2, DownloadSpeed: 100,
		Current:    StatsBlock{DownloadedBytes: 800, UploadedBytes: 400, SessionCount: 1, SecondsActive: 10},
		Cumulative: StatsBlock{DownloadedBytes: 1800, UploadedBytes: 900, SessionCount: 3, SecondsActive: 100}}
}

func (f *fakeBackend) FreeSpace(path string) (int64, int64, error) {
	if path != "/dl" {
		return 0, 0, fmt.Errorf("%q: outside the download directory", path)
	}
	return 5000, 9000, nil
}
