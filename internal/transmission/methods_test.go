package transmission

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestMethods(t *testing.T) {
	h1, h2 := strings.Repeat("ab", 20), strings.Repeat("cd", 20)
	torrentB64 := base64.StdEncoding.EncodeToString([]byte("d8:announce...e"))
	tests := []struct {
		name  string
		req   string
		want  string   // the whole response
		calls []string // what the backend was asked, in order
		added *AddArgs
	}{
		{"unknown method", `{"method":"blocklist-update","tag":7}`,
			`{"arguments":{},"result":"method name not recognized: \"blocklist-update\"","tag":7}`, nil, nil},
		{"malformed", `{"method":`, ``, nil, nil},

		// torrent-get: what transmission-remote -l asks, by id, by hash, as a table.
		{"torrent-get -l", `{"arguments":{"fields":["error","errorString","eta","id","isFinished","leftUntilDone","name","peersGettingFromUs","peersSendingToUs","rateDownload","rateUpload","sizeWhenDone","status","uploadRatio"]},"method":"torrent-get","tag":4}`,
			`{"arguments":{"torrents":[
			  {"error":0,"errorString":"","eta":2,"id":1,"isFinished":false,"leftUntilDone":250,"name":"one","peersGettingFromUs":0,"peersSendingToUs":0,"rateDownload":100,"rateUpload":0,"sizeWhenDone":1000,"status":4,"uploadRatio":0.5},
			  {"error":3,"errorString":"disk full","eta":0,"id":2,"isFinished":false,"leftUntilDone":0,"name":"two","peersGettingFromUs":0,"peersSendingToUs":0,"rateDownload":0,"rateUpload":0,"sizeWhenDone":0,"status":0,"uploadRatio":-1}
			]},"result":"success","tag":4}`, nil, nil},
		{"torrent-get one id", `{"arguments":{"fields":["id","percentDone","hashString","downloadDir","totalSize","unknownField"],"ids":1},"method":"torrent-get"}`,
			`{"arguments":{"torrents":[{"id":1,"percentDone":0.75,"hashString":"` + h1 + `","downloadDir":"/dl","totalSize":1000}]},"result":"success"}`, nil, nil},
		{"torrent-get hash string", `{"arguments":{"fields":["id"],"ids":"` + strings.ToUpper(h2) + `"},"method":"torrent-get"}`,
			`{"arguments":{"torrents":[{"id":2}]},"result":"success"}`, nil, nil},
		{"torrent-get list, unknown ids ignored", `{"arguments":{"fields":["id"],"ids":[2,"` + h1 + `",9]},"method":"torrent-get"}`,
			`{"arguments":{"torrents":[{"id":1},{"id":2}]},"result":"success"}`, nil, nil},
		{"torrent-get files", `{"arguments":{"fields":["files","name","priorities","wanted","fileStats"],"ids":1},"method":"torrent-get","tag":3}`,
			`{"arguments":{"torrents":[{"name":"one",
			  "files":[{"bytesCompleted":600,"length":600,"name":"one/a"},{"bytesCompleted":150,"length":400,"name":"one/b"}],
			  "fileStats":[{"bytesCompleted":600,"wanted":true,"priority":0},{"bytesCompleted":150,"wanted":true,"priority":1}],
			  "priorities":[0,1],"wanted":[1,1]}]},"result":"success","tag":3}`, nil, nil},
		{"torrent-get table", `{"arguments":{"fields":["id","name","nope"],"format":"table"},"method":"torrent-get"}`,
			`{"arguments":{"torrents":[["id","name"],[1,"one"],[2,"two"]]},"result":"success"}`, nil, nil},
		{"torrent-get trackers", `{"arguments":{"fields":["trackers"],"ids":[1]},"method":"torrent-get"}`,
			`{"arguments":{"torrents":[{"trackers":[{"announce":"http://t.example/announce","scrape":"http://t.example/scrape","id":0,"tier":0}]}]},"result":"success"}`, nil, nil},
		{"torrent-get recently-active", `{"arguments":{"fields":["id"],"ids":"recently-active"},"method":"torrent-get"}`,
			`{"arguments":{"torrents":[{"id":1}],"removed":[]},"result":"success"}`, nil, nil},
		{"torrent-get without fields", `{"arguments":{"ids":1},"method":"torrent-get"}`,
			`{"arguments":{},"result":"torrent-get: no fields specified"}`, nil, nil},
		{"torrent-get bad ids", `{"arguments":{"fields":["id"],"ids":["one"]},"method":"torrent-get"}`,
			`{"arguments":{},"result":"torrent-get: ids: \"one\" is neither a torrent id nor a 40-digit hash string"}`, nil, nil},

		// Actions.
		{"torrent-stop all", `{"arguments":{},"method":"torrent-stop"}`, `{"arguments":{},"result":"success"}`,
			[]string{"stop 1", "stop 2"}, nil},
		{"torrent-start one", `{"arguments":{"ids":1},"method":"torrent-start"}`, `{"arguments":{},"result":"success"}`,
			[]string{"start 1"}, nil},
		{"torrent-start-now", `{"arguments":{"ids":1},"method":"torrent-start-now"}`, `{"arguments":{},"result":"success"}`,
			[]string{"start-now 1"}, nil},
		{"torrent-start error named", `{"arguments":{"ids":[1,2]},"method":"torrent-start"}`,
			`{"arguments":{},"result":"torrent-start: torrent 2 (two): cannot start"}`, []string{"start 1", "start 2"}, nil},
		{"torrent-reannounce", `{"arguments":{"ids":[1,2]},"method":"torrent-reannounce"}`, `{"arguments":{},"result":"success"}`,
			[]string{"reannounce 1", "reannounce 2"}, nil},
		{"session-close", `{"method":"session-close","tag":9}`, `{"arguments":{},"result":"success","tag":9}`,
			[]string{"close"}, nil},
		{"port-test", `{"method":"port-test"}`,
			`{"arguments":{},"result":"port-test: BitStorm asks no outside service whether its peer port is reachable"}`, nil, nil},
		{"torrent-verify", `{"arguments":{"ids":[2]},"method":"torrent-verify"}`, `{"arguments":{},"result":"success"}`,
			[]string{"verify 2"}, nil},
		{"torrent-remove", `{"arguments":{"delete-local-data":true,"ids":2},"method":"torrent-remove"}`, `{"arguments":{},"result":"success"}`,
			[]string{"remove 2 true"}, nil},
		{"torrent-remove keep data", `{"arguments":{"delete-local-data":false,"ids":1},"method":"torrent-remove"}`, `{"arguments":{},"result":"success"}`,
			[]string{"remove 1 false"}, nil},

		// torrent-set-location: transmission-remote -t N --move DIR (move true), --find DIR (move false).
		{"torrent-set-location move", `{"arguments":{"ids":[1],"location":"/dl/new","move":true},"method":"torrent-set-location","tag":5}`,
			`{"arguments":{},"result":"success","tag":5}`, []string{"location 1 /dl/new true"}, nil},
		{"torrent-set-location find", `{"arguments":{"ids":[1,2],"location":"/dl/found","move":false},"method":"torrent-set-location"}`,
			`{"arguments":{},"result":"success"}`, []string{"location 1 /dl/found false", "location 2 /dl/found false"}, nil},
		{"torrent-set-location move defaults to false", `{"arguments":{"ids":2,"location":"/dl/x"},"method":"torrent-set-location"}`,
			`{"arguments":{},"result":"success"}`, []string{"location 2 /dl/x false"}, nil},
		{"torrent-set-location without location", `{"arguments":{"ids":[1],"move":true},"method":"torrent-set-location"}`,
			`{"arguments":{},"result":"torrent-set-location: no location given"}`, nil, nil},
		{"torrent-set-location refused, reason named", `{"arguments":{"ids":[1],"location":"/etc","move":true},"method":"torrent-set-location"}`,
			`{"arguments":{},"result":"torrent-set-location: torrent 1 (one): \"/etc\": outside /dl"}`, nil, nil},

		// torrent-set: limits (kept), files (wanted, priorities; [] is every file).
		{"torrent-set limits", `{"arguments":{"downloadLimit":100,"downloadLimited":true,"ids":1},"method":"torrent-set"}`, `{"arguments":{},"result":"success"}`,
			[]string{"set 1 {DownloadLimit:100 DownloadLimited:true UploadLimit:0 UploadLimited:false PeerLimit:50 SeedRatioLimit:0 SeedRatioMode:0 SeedIdleLimit:0 SeedIdleMode:0 BandwidthPriority:0 HonorsSessionLimits:true Labels:[]}"}, nil},
		{"torrent-set files-unwanted", `{"arguments":{"files-unwanted":[1],"ids":1},"method":"torrent-set"}`, `{"arguments":{},"result":"success"}`,
			[]string{"files 1 [true false] [0 1]"}, nil},
		{"torrent-set priority-low every file", `{"arguments":{"ids":1,"priority-low":[]},"method":"torrent-set"}`, `{"arguments":{},"result":"success"}`,
			[]string{"files 1 [true true] [-1 -1]"}, nil},
		{"torrent-set file out of range", `{"arguments":{"files-wanted":[2],"ids":1},"method":"torrent-set"}`,
			`{"arguments":{},"result":"torrent-set: torrent 1 (one): files-wanted: file 2 does not exist (the torrent has 2 files, numbered from 0)"}`, nil, nil},
		{"torrent-set files before metadata", `{"arguments":{"files-wanted":[0],"ids":2},"method":"torrent-set"}`,
			`{"arguments":{},"result":"torrent-set: torrent 2 (two): its files are not known yet (the magnet link's metadata has not arrived)"}`, nil, nil},
		{"torrent-set location refused", `{"arguments":{"location":"/etc","ids":1},"method":"torrent-set"}`,
			`{"arguments":{},"result":"torrent-set: location is not supported"}`, nil, nil},
		{"torrent-set negative limit", `{"arguments":{"uploadLimit":-5,"ids":1},"method":"torrent-set"}`,
			`{"arguments":{},"result":"torrent-set: torrent 1 (one): speed limits must not be negative"}`, nil, nil},
		{"torrent-set bad idle mode", `{"arguments":{"seedIdleMode":3,"ids":1},"method":"torrent-set"}`,
			`{"arguments":{},"result":"torrent-set: torrent 1 (one): seedIdleLimit must not be negative, seedIdleMode must be 0, 1 or 2"}`, nil, nil},

		// torrent-add.
		{"torrent-add metainfo", `{"arguments":{"metainfo":"` + torrentB64 + `","paused":true,"download-dir":"/dl/sub","files-unwanted":[1]},"method":"torrent-add","tag":8}`,
			`{"arguments":{"torrent-added":{"hashString":"` + strings.Repeat("ef", 20) + `","id":3,"name":"new"}},"result":"success","tag":8}`, nil,
			&AddArgs{Torrent: []byte("d8:announce...e"), Paused: true, DownloadDir: "/dl/sub", FilesUnwanted: []int{1}}},
		{"torrent-add magnet, started by default", `{"arguments":{"filename":"magnet:?xt=urn:btih:` + strings.Repeat("12", 20) + `"},"method":"torrent-add"}`,
			`{"arguments":{"torrent-added":{"hashString":"` + strings.Repeat("ef", 20) + `","id":3,"name":"new"}},"result":"success"}`, nil,
			&AddArgs{Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("12", 20)}},
		{"torrent-add duplicate", `{"arguments":{"filename":"magnet:?xt=urn:btih:` + h1 + `"},"method":"torrent-add"}`,
			`{"arguments":{"torrent-duplicate":{"hashString":"` + h1 + `","id":1,"name":"one"}},"result":"success"}`, nil,
			&AddArgs{Magnet: "magnet:?xt=urn:btih:" + h1}},
		{"torrent-add local path", `{"arguments":{"filename":"/dl/x.torrent"},"method":"torrent-add"}`,
			`{"arguments":{"torrent-added":{"hashString":"` + strings.Repeat("ef", 20) + `","id":3,"name":"new"}},"result":"success"}`, nil,
			&AddArgs{Path: "/dl/x.torrent"}},
		{"torrent-add URL refused", `{"arguments":{"filename":"http://example.com/x.torrent"},"method":"torrent-add"}`,
			`{"arguments":{},"result":"torrent-add: \"http://example.com/x.torrent\": a http URL; this daemon fetches no URLs: send the .torrent as metainfo (transmission-remote -a reads a local file and does) or a magnet link"}`, nil, nil},
		{"torrent-add bad base64", `{"arguments":{"metainfo":"***"},"method":"torrent-add"}`,
			`{"arguments":{},"result":"torrent-add: metainfo: not base64: illegal base64 data at input byte 0"}`, nil, nil},
		{"torrent-add nothing", `{"arguments":{},"method":"torrent-add"}`,
			`{"arguments":{},"result":"torrent-add: no filename or metainfo given"}`, nil, nil},

		// Session.
		{"session-get fields", `{"arguments":{"fields":["version","rpc-version","download-dir","speed-limit-down","config-dir","units"]},"method":"session-get"}`,
			`{"arguments":{"version":"3.00 (BitStorm)","rpc-version":16,"download-dir":"/dl","speed-limit-down":0,"config-dir":"/state",
			  "units":{"memory-bytes":1024,"memory-units":["KiB","MiB","GiB","TiB"],"size-bytes":1000,"size-units":["kB","MB","GB","TB"],"speed-bytes":1000,"speed-units":["kB/s","MB/s","GB/s","TB/s"]}},"result":"success"}`, nil, nil},
		{"session-set speed limit", `{"arguments":{"speed-limit-down":200,"speed-limit-down-enabled":true,"version":"ignored"},"method":"session-set"}`,
			`{"arguments":{},"result":"success"}`,
			[]string{"session {DownloadDir:/dl SpeedLimitDown:200 SpeedLimitDownEnabled:true SpeedLimitUp:0 SpeedLimitUpEnabled:false AltSpeedDown:0 AltSpeedUp:0 AltSpeedEnabled:false PeerLimitGlobal:200 PeerLimitPerTorrent:50 SeedRatioLimit:0 SeedRatioLimited:false IdleSeedingLimit:0 IdleSeedingLimitEnabled:false StartAddedTorrents:true DownloadQueueEnabled:false DownloadQueueSize:0 SeedQueueEnabled:false SeedQueueSize:0}"}, nil},
		{"session-set download-dir refused", `{"arguments":{"download-dir":"/etc"},"method":"session-set"}`,
			`{"arguments":{},"result":"session-set: download-dir \"/etc\": outside /dl"}`, nil, nil},
		{"session-set fixed field", `{"arguments":{"dht-enabled":true},"method":"session-set"}`,
			`{"arguments":{},"result":"session-set: dht-enabled cannot be changed over RPC (it is false); restart the daemon with other flags"}`, nil, nil},
		{"session-set fixed field unchanged", `{"arguments":{"dht-enabled":false,"encryption":"preferred"},"method":"session-set"}`,
			`{"arguments":{},"result":"success"}`, []string{"session {DownloadDir:/dl SpeedLimitDown:0 SpeedLimitDownEnabled:false SpeedLimitUp:0 SpeedLimitUpEnabled:false AltSpeedDown:0 AltSpeedUp:0 AltSpeedEnabled:false PeerLimitGlobal:200 PeerLimitPerTorrent:50 SeedRatioLimit:0 SeedRatioLimited:false IdleSeedingLimit:0 IdleSeedingLimitEnabled:false StartAddedTorrents:true DownloadQueueEnabled:false DownloadQueueSize:0 SeedQueueEnabled:false SeedQueueSize:0}"}, nil},
		{"session-set queue and peer-limit-global", `{"arguments":{"download-queue-enabled":true,"download-queue-size":2,"seed-queue-enabled":true,"seed-queue-size":3,"peer-limit-global":40},"method":"session-set"}`,
			`{"arguments":{},"result":"success"}`, []string{"session {DownloadDir:/dl SpeedLimitDown:0 SpeedLimitDownEnabled:false SpeedLimitUp:0 SpeedLimitUpEnabled:false AltSpeedDown:0 AltSpeedUp:0 AltSpeedEnabled:false PeerLimitGlobal:40 PeerLimitPerTorrent:50 SeedRatioLimit:0 SeedRatioLimited:false IdleSeedingLimit:0 IdleSeedingLimitEnabled:false StartAddedTorrents:true DownloadQueueEnabled:true DownloadQueueSize:2 SeedQueueEnabled:true SeedQueueSize:3}"}, nil},
		{"session-set negative idle-seeding-limit", `{"arguments":{"idle-seeding-limit":-1,"idle-seeding-limit-enabled":true},"method":"session-set"}`,
			`{"arguments":{},"result":"session-set: idle-seeding-limit must not be negative"}`, nil, nil},
		{"session-set queue of size 0 refused", `{"arguments":{"download-queue-enabled":true},"method":"session-set"}`,
			`{"arguments":{},"result":"session-set: an enabled queue's size (download-queue-size, seed-queue-size) must be at least 1"}`, nil, nil},
		{"session-get queue", `{"arguments":{"fields":["download-queue-enabled","download-queue-size","seed-queue-enabled","seed-queue-size","peer-limit-global"]},"method":"session-get"}`,
			`{"arguments":{"download-queue-enabled":false,"download-queue-size":0,"seed-queue-enabled":false,"seed-queue-size":0,"peer-limit-global":200},"result":"success"}`, nil, nil},
		{"torrent-get queuePosition", `{"arguments":{"fields":["id","queuePosition"]},"method":"torrent-get"}`,
			`{"arguments":{"torrents":[{"id":1,"queuePosition":1},{"id":2,"queuePosition":0}]},"result":"success"}`, nil, nil},
		{"session-stats", `{"method":"session-stats","tag":1}`,
			`{"arguments":{"activeTorrentCount":1,"pausedTorrentCount":1,"torrentCount":2,"downloadSpeed":100,"uploadSpeed":0,
			  "current-stats":{"uploadedBytes":400,"downloadedBytes":800,"filesAdded":0,"sessionCount":1,"secondsActive":10},
			  "cumulative-stats":{"uploadedBytes":900,"downloadedBytes":1800,"filesAdded":0,"sessionCount":3,"secondsActive":100}},"result":"success","tag":1}`, nil, nil},
		{"free-space", `{"arguments":{"path":"/dl"},"method":"free-space"}`,
			`{"arguments":{"path":"/dl","size-bytes":5000,"total_size":9000},"result":"success"}`, nil, nil},
		{"free-space refused", `{"arguments":{"path":"/"},"method":"free-space"}`,
			`{"arguments":{},"result":"free-space: \"/\": outside the download directory"}`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			s := NewServer(Config{Backend: f, Now: func() time.Time { return time.Unix(1030, 0) }})
			got := string(s.Call([]byte(tt.req)))
			if tt.want == "" {
				var r struct{ Result string }
				if json.Unmarshal([]byte(got), &r) != nil || !strings.HasPrefix(r.Result, "malformed JSON request") {
					t.Errorf("Call(%s) = %s, want a malformed-request result", tt.req, got)
				}
				return
			}
			if !jsonEqual(t, got, tt.want) {
				t.Errorf("Call(%s)\n = %s\nwant %s", tt.req, got, tt.want)
			}
			if !slices.Equal(f.calls, tt.calls) {
				t.Errorf("backend calls %q, want %q", f.calls, tt.calls)
			}
			if tt.added != nil && (len(f.added) != 1 || !reflect.DeepEqual(f.added[0], *tt.added)) {
				t.Errorf("Add got %+v, want %+v", f.added, *tt.added)
			}
		})
	}
}

// TestRecentlyRemoved: a removed torrent's id is reported to recently-active requests for
// a minute.
func TestRecentlyRemoved(t *testing.T) {
	now := time.Unix(5000, 0)
	s := NewServer(Config{Backend: newFake(), Now: func() time.Time { return now }})
	s.Call([]byte(`{"arguments":{"ids":[2]},"method":"torrent-remove"}`))
	req := []byte(`{"arguments":{"fields":["id"],"ids":"recently-active"},"method":"torrent-get"}`)
	if got, want := string(s.Call(req)), `{"arguments":{"removed":[2],"torrents":[{"id":1}]},"result":"success"}`; !jsonEqual(t, got, want) {
		t.Errorf("after a removal: %s, want %s", got, want)
	}
	now = now.Add(recentlyActive)
	if got, want := string(s.Call(req)), `{"arguments":{"removed":[],"torrents":[{"id":1}]},"result":"success"}`; !jsonEqual(t, got, want) {
		t.Errorf("a minute later: %s, want %s", got, want)
	}
}

// TestFieldsTable: every field transmission-remote 3.00 asks for with -l, -i and -f is in
// the table (captured from its --debug output).
func TestFieldsTable(t *testing.T) {
	asked := []string{
		"error", "errorString", "eta", "id", "isFinished", "leftUntilDone", "name", "peersGettingFromUs",
		"peersSendingToUs", "rateDownload", "rateUpload", "sizeWhenDone", "status", "uploadRatio", // -l
		"activityDate", "addedDate", "bandwidthPriority", "comment", "corruptEver", "creator", "dateCreated",
		"desiredAvailable", "doneDate", "downloadDir", "downloadedEver", "downloadLimit", "downloadLimited",
		"hashString", "haveUnchecked", "haveValid", "honorsSessionLimits", "isPrivate", "labels", "magnetLink",
		"peersConnected", "peer-limit", "pieceCount", "pieceSize", "recheckProgress", "secondsDownloading",
		"secondsSeeding", "seedRatioMode", "seedRatioLimit", "startDate", "totalSize", "uploadedEver",
		"uploadLimit", "uploadLimited", "webseeds", "webseedsSendingToUs", // -i
		"files", "priorities", "wanted", // -f
		"peers", "trackerStats", "percentDone", "fileStats", // -pi, -it, others
	}
	tor := newFake().torrents[0]
	for _, f := range asked {
		get, ok := torrentFields[f]
		if !ok {
			t.Errorf("field %q missing", f)
			continue
		}
		if _, err := json.Marshal(get(tor)); err != nil {
			t.Errorf("field %q: %v", f, err)
		}
	}
}

func TestScrapeURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://t/announce":         "http://t/scrape",
		"http://t/x/announce.php?a": "http://t/x/scrape.php?a",
		"http://t/a":                "",
		"udp://t:80":                "",
	} {
		if got := scrapeURL(in); got != want {
			t.Errorf("scrapeURL(%q) = %q, want %q", in, got, want)
		}
	}
}
