package transmission

import "time"

// Backend is what the RPC server controls: a BitTorrent session, implemented by the
// daemon over its own client. The server resolves ids, applies the protocol's defaults and
// merges partial changes; the Backend owns policy (which directories may be used) and
// state. Its methods are called from the HTTP server's goroutines, concurrently.
type Backend interface {
	// Torrents returns a snapshot of every torrent, in id order.
	Torrents() []*Torrent
	// Add adds a torrent; when the backend holds it already, it returns that torrent
	// with duplicate true and a nil error.
	Add(a AddArgs) (t *Torrent, duplicate bool, err error)
	Start(id int) error
	// StartNow starts the torrent at once, past the queue's limits (torrent-start-now).
	StartNow(id int) error
	// SetQueuePosition moves a queued torrent to pos in the queue (0: the next to start).
	SetQueuePosition(id, pos int) error
	Stop(id int) error
	// Verify rechecks the torrent's data against its piece hashes.
	Verify(id int) error
	// Reannounce asks the torrent's trackers for peers now (torrent-reannounce).
	Reannounce(id int) error
	// Close asks the session to end as a stop signal would (session-close): requests
	// under way are answered, the torrents stop and save their records, the daemon exits.
	Close()
	Remove(id int, deleteData bool) error
	// SetTorrent replaces the torrent's settings with s.
	SetTorrent(id int, s TorrentSettings) error
	// SetLocation gives the torrent the download directory location (torrent-set-location):
	// with move its data moves there from the old one, without it the data is looked for
	// there (the torrent rechecks what it finds).
	SetLocation(id int, location string, move bool) error
	// SetFiles sets which of the torrent's files are wanted and their priorities, one
	// entry per file.
	SetFiles(id int, wanted []bool, priorities []Priority) error
	// Settings are the session's mutable settings; SetSettings replaces them.
	Settings() SessionSettings
	SetSettings(s SessionSettings) error
	// Info is what the session reports but never changes through the RPC.
	Info() SessionInfo
	Stats() SessionStats
	// FreeSpace reports the free and total bytes of the file system holding path.
	FreeSpace(path string) (free, total int64, err error)
}

// Status is a torrent's activity, as transmission numbers it (tr_torrent_activity).
type Status int

// The statuses of a torrent.
const (
	StatusStopped      Status = 0
	StatusCheckWait    Status = 1
	StatusCheck        Status = 2
	StatusDownloadWait Status = 3
	StatusDownload     Status = 4
	StatusSeedWait     Status = 5
	StatusSeed         Status = 6
)

// Error kinds of a torrent's "error" field (tr_stat_errtype).
const (
	ErrNone           = 0
	ErrTrackerWarning = 1
	ErrTracker        = 2
	ErrLocal          = 3
)

// Priority is a file's or torrent's priority (tr_priority_t).
type Priority int

// The priorities.
const (
	PriorityLow    Priority = -1
	PriorityNormal Priority = 0
	PriorityHigh   Priority = 1
)

// Torrent is a snapshot of one torrent, from which torrent-get's fields are computed
// (fields.go). Sizes are in bytes, dates in Unix seconds (0: never), rates in bytes/s.
type Torrent struct {
	ID          int
	HashString  string // lower-case hex info hash
	Name        string
	MagnetLink  string
	Comment     string
	Creator     string
	DateCreated int64
	IsPrivate   bool
	PieceCount  int
	PieceSize   int64
	HasMetadata bool // false for a magnet link whose metadata has not arrived yet

	Status        Status
	QueuePosition int // its place in the queue from 0: the queued torrents first, in the order they start
	Error         int // ErrNone, ErrLocal...
	ErrorString   string
	IsFinished    bool // stopped after reaching its seeding goal

	TotalSize        int64
	SizeWhenDone     int64 // bytes of the wanted files
	LeftUntilDone    int64 // bytes of the wanted files still missing
	HaveValid        int64 // bytes verified, wanted or not
	DesiredAvailable int64
	DownloadedEver   int64
	UploadedEver     int64
	CorruptEver      int64
	RateDownload     int64
	RateUpload       int64
	ETA              int64 // seconds; -1 unknown

	PeersConnected     int
	PeersSendingToUs   int // peers that may send us pieces now (Peer.IsDownloadingFrom)
	PeersGettingFromUs int // peers we may send pieces now (Peer.IsUploadingTo)
	Peers              []Peer
	TrackerStats       map[string]TrackerStat // by announce URL: what its announces answered (trackerStats)

	DownloadDir        string
	AddedDate          int64
	DoneDate           int64
	StartDate          int64
	ActivityDate       int64
	SecondsDownloading int64
	SecondsSeeding     int64
	RecheckProgress    float64

	Files      []File
	Wanted     []bool
	Priorities []Priority
	Trackers   [][]string // announce URLs by tier (BEP 12)
	Webseeds   []string

	Settings TorrentSettings
}

// File is one file of a torrent.
type File struct {
	Name           string // its path in the torrent, '/'-separated, starting with the torrent's name
	Length         int64
	BytesCompleted int64
}

// TorrentSettings are a torrent's settings that torrent-set changes; the JSON names are
// transmission's. Limits are in kB/s (1000 bytes).
type TorrentSettings struct {
	DownloadLimit       int64    `json:"downloadLimit"`
	DownloadLimited     bool     `json:"downloadLimited"`
	UploadLimit         int64    `json:"uploadLimit"`
	UploadLimited       bool     `json:"uploadLimited"`
	PeerLimit           int      `json:"peer-limit"`
	SeedRatioLimit      float64  `json:"seedRatioLimit"`
	SeedRatioMode       int      `json:"seedRatioMode"` // 0: the session's, 1: this torrent's, 2: unlimited
	SeedIdleLimit       int      `json:"seedIdleLimit"`
	SeedIdleMode        int      `json:"seedIdleMode"`
	BandwidthPriority   Priority `json:"bandwidthPriority"`
	HonorsSessionLimits bool     `json:"honorsSessionLimits"`
	Labels              []string `json:"labels"`
}

// AddArgs is a torrent-add: one of Torrent, Magnet or Path is set.
type AddArgs struct {
	Torrent     []byte // a .torrent file's bytes ("metainfo", base64 on the wire)
	Magnet      string // a magnet link ("filename")
	Path        string // a local .torrent file ("filename"); the backend decides where it may be
	Paused      bool   // add it stopped
	DownloadDir string // "" for the session's
	PeerLimit   int    // 0: the session's default
	// Files to want or skip and file priorities, by index; applied once the files are
	// known. Empty lists mean none (torrent-add has no "all files" shorthand here).
	FilesWanted, FilesUnwanted                []int
	PriorityHigh, PriorityLow, PriorityNormal []int
	BandwidthPriority                         Priority
	Labels                                    []string
}

// SessionSettings are the session's settings that session-set changes. Speed limits are
// in kB/s.
type SessionSettings struct {
	DownloadDir             string  `json:"download-dir"`
	SpeedLimitDown          int64   `json:"speed-limit-down"`
	SpeedLimitDownEnabled   bool    `json:"speed-limit-down-enabled"`
	SpeedLimitUp            int64   `json:"speed-limit-up"`
	SpeedLimitUpEnabled     bool    `json:"speed-limit-up-enabled"`
	AltSpeedDown            int64   `json:"alt-speed-down"`
	AltSpeedUp              int64   `json:"alt-speed-up"`
	AltSpeedEnabled         bool    `json:"alt-speed-enabled"`
	PeerLimitGlobal         int     `json:"peer-limit-global"`
	PeerLimitPerTorrent     int     `json:"peer-limit-per-torrent"`
	SeedRatioLimit          float64 `json:"seedRatioLimit"`
	SeedRatioLimited        bool    `json:"seedRatioLimited"`
	IdleSeedingLimit        int     `json:"idle-seeding-limit"`
	IdleSeedingLimitEnabled bool    `json:"idle-seeding-limit-enabled"`
	StartAddedTorrents      bool    `json:"start-added-torrents"`
	// The queue: with it enabled, at most so many torrents download (seed) at once, the
	// others wait in order, with status 3 (5).
	DownloadQueueEnabled bool `json:"download-queue-enabled"`
	DownloadQueueSize    int  `json:"download-queue-size"`
	SeedQueueEnabled     bool `json:"seed-queue-enabled"`
	SeedQueueSize        int  `json:"seed-queue-size"`
}

// SessionInfo is what session-get reports that session-set does not change.
type SessionInfo struct {
	Version    string // "version"
	ConfigDir  string // "config-dir": where the daemon keeps its state
	PeerPort   int    // "peer-port"
	DHTEnabled bool   // "dht-enabled"
	PEXEnabled bool   // "pex-enabled"
	Encryption string // "encryption": required, preferred or tolerated
}

// SessionStats are session-stats' counters.
type SessionStats struct {
	ActiveTorrentCount int
	PausedTorrentCount int
	TorrentCount       int
	DownloadSpeed      int64
	UploadSpeed        int64
	Current            StatsBlock // since the daemon started
	Cumulative         StatsBlock // over every run of the daemon with this state
}

// StatsBlock is one of session-stats' stats objects.
type StatsBlock struct {
	UploadedBytes   int64 `json:"uploadedBytes"`
	DownloadedBytes int64 `json:"downloadedBytes"`
	FilesAdded      int64 `json:"filesAdded"`
	SessionCount    int64 `json:"sessionCount"`
	SecondsActive   int64 `json:"secondsActive"`
}

// TrackerStat is what one tracker's announces answered, for torrent-get's trackerStats.
type TrackerStat struct {
	LastAnnounce      time.Time // zero: never
	Succeeded         bool
	Result            string // "Success", or why it failed
	PeerCount         int    // addresses in the last answer
	NextAnnounce      time.Time
	Seeders, Leechers int
}
