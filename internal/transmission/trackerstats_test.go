package transmission

import (
	"testing"
	"time"
)

// TestTrackerStats: torrent-get's trackerStats tell what each tracker's last announce
// answered: a success with its peer count, seeders, leechers and next announce; a failure
// with its reason; a tracker not asked yet as never announced, with unknown counts. A
// running torrent's tracker with a next announce is waiting for it (announceState 1:
// transmission-remote -it then prints what it got and when it asks again).
func TestTrackerStats(t *testing.T) {
	f := newFake()
	at := time.Unix(1_800_000_000, 0)
	f.torrents[0].Trackers = [][]string{{"http://a.example/announce", "udp://b.example:6969/announce"}, {"http://c.example/announce"}}
	f.torrents[0].TrackerStats = map[string]TrackerStat{
		"http://a.example/announce":     {LastAnnounce: at, Succeeded: true, Result: "Success", PeerCount: 12, NextAnnounce: at.Add(30 * time.Minute), Seeders: 5, Leechers: 9},
		"udp://b.example:6969/announce": {LastAnnounce: at, Result: "tracker: no reply"},
	}
	s := NewServer(Config{Backend: f})
	got := string(s.Call([]byte(`{"method":"torrent-get","arguments":{"ids":[1],"fields":["trackerStats"]}}`)))
	common := `"isBackup":false,"scrapeState":0,"hasScraped":false,"lastScrapeSucceeded":false,"lastScrapeResult":"",
		"lastAnnounceTimedOut":false,"lastScrapeTimedOut":false,"lastScrapeStartTime":0,"lastScrapeTime":0,"nextScrapeTime":0,"downloadCount":-1`
	want := `{"arguments":{"torrents":[{"trackerStats":[
		{"announce":"http://a.example/announce","scrape":"http://a.example/scrape","host":"http://a.example","id":0,"tier":0,` + common + `,"announceState":1,
		 "hasAnnounced":true,"lastAnnounceSucceeded":true,"lastAnnounceResult":"Success","lastAnnouncePeerCount":12,
		 "lastAnnounceStartTime":1800000000,"lastAnnounceTime":1800000000,"nextAnnounceTime":1800001800,"seederCount":5,"leecherCount":9},
		{"announce":"udp://b.example:6969/announce","scrape":"udp://b.example:6969/scrape","host":"udp://b.example:6969","id":1,"tier":0,` + common + `,"announceState":0,
		 "hasAnnounced":true,"lastAnnounceSucceeded":false,"lastAnnounceResult":"tracker: no reply","lastAnnouncePeerCount":0,
		 "lastAnnounceStartTime":1800000000,"lastAnnounceTime":1800000000,"nextAnnounceTime":0,"seederCount":-1,"leecherCount":-1},
		{"announce":"http://c.example/announce","scrape":"http://c.example/scrape","host":"http://c.example","id":2,"tier":1,` + common + `,"announceState":0,
		 "hasAnnounced":false,"lastAnnounceSucceeded":false,"lastAnnounceResult":"","lastAnnouncePeerCount":0,
		 "lastAnnounceStartTime":0,"lastAnnounceTime":0,"nextAnnounceTime":0,"seederCount":-1,"leecherCount":-1}
	]}]},"result":"success"}`
	if !jsonEqual(t, got, want) {
		t.Errorf("trackerStats:\n got %s\nwant %s", got, want)
	}
}
