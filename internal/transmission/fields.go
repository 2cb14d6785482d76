package transmission

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// torrentFields maps each torrent-get field (spec 3.3, transmission 3.00's camelCase
// names) to its value for a torrent. A requested field missing from the table is left out
// of the reply, as transmission does with names it does not know.
var torrentFields = map[string]func(t *Torrent) any{
	"id":                      func(t *Torrent) any { return t.ID },
	"hashString":              func(t *Torrent) any { return t.HashString },
	"name":                    func(t *Torrent) any { return t.Name },
	"magnetLink":              func(t *Torrent) any { return t.MagnetLink },
	"comment":                 func(t *Torrent) any { return t.Comment },
	"creator":                 func(t *Torrent) any { return t.Creator },
	"dateCreated":             func(t *Torrent) any { return t.DateCreated },
	"isPrivate":               func(t *Torrent) any { return t.IsPrivate },
	"pieceCount":              func(t *Torrent) any { return t.PieceCount },
	"pieceSize":               func(t *Torrent) any { return t.PieceSize },
	"metadataPercentComplete": func(t *Torrent) any { return b2f(t.HasMetadata) },
	"status":                  func(t *Torrent) any { return t.Status },
	"error":                   func(t *Torrent) any { return t.Error },
	"errorString":             func(t *Torrent) any { return t.ErrorString },
	"isFinished":              func(t *Torrent) any { return t.IsFinished },
	"isStalled":               func(t *Torrent) any { return false },
	"totalSize":               func(t *Torrent) any { return t.TotalSize },
	"sizeWhenDone":            func(t *Torrent) any { return t.SizeWhenDone },
	"leftUntilDone":           func(t *Torrent) any { return t.LeftUntilDone },
	"haveValid":               func(t *Torrent) any { return t.HaveValid },
	"haveUnchecked":           func(t *Torrent) any { return 0 },
	"desiredAvailable":        func(t *Torrent) any { return t.DesiredAvailable },
	"percentDone":             percentDone,
	"percentComplete": func(t *Torrent) any {
		if t.TotalSize == 0 {
			return 0.0
		}
		return float64(t.HaveValid) / float64(t.TotalSize)
	},
	"downloadedEver":      func(t *Torrent) any { return t.DownloadedEver },
	"uploadedEver":        func(t *Torrent) any { return t.UploadedEver },
	"corruptEver":         func(t *Torrent) any { return t.CorruptEver },
	"uploadRatio":         uploadRatio,
	"rateDownload":        func(t *Torrent) any { return t.RateDownload },
	"rateUpload":          func(t *Torrent) any { return t.RateUpload },
	"eta":                 func(t *Torrent) any { return t.ETA },
	"etaIdle":             func(t *Torrent) any { return -1 },
	"peersConnected":      func(t *Torrent) any { return t.PeersConnected },
	"peersSendingToUs":    func(t *Torrent) any { return t.PeersSendingToUs },
	"peersGettingFromUs":  func(t *Torrent) any { return t.PeersGettingFromUs },
	"peersFrom":           peersFrom,
	"webseedsSendingToUs": func(t *Torrent) any { return 0 },
	"downloadDir":         func(t *Torrent) any { return t.DownloadDir },
	"addedDate":           func(t *Torrent) any { return t.AddedDate },
	"doneDate":            func(t *Torrent) any { return t.DoneDate },
	"startDate":           func(t *Torrent) any { return t.StartDate },
	"activityDate":        func(t *Torrent) any { return t.ActivityDate },
	"editDate":            func(t *Torrent) any { return 0 },
	"secondsDownloading":  func(t *Torrent) any { return t.SecondsDownloading },
	"secondsSeeding":      func(t *Torrent) any { return t.SecondsSeeding },
	"recheckProgress":     func(t *Torrent) any { return t.RecheckProgress },
	"queuePosition":       func(t *Torrent) any { return t.QueuePosition },
	"torrentFile":         func(t *Torrent) any { return "" },
	"files": func(t *Torrent) any {
		out := make([]map[string]any, len(t.Files))
		for i, f := range t.Files {
			out[i] = map[string]any{"name": f.Name, "length": f.Length, "bytesCompleted": f.BytesCompleted}
		}
		return out
	},
	"fileStats": func(t *Torrent) any {
		out := make([]map[string]any, len(t.Files))
		for i, f := range t.Files {
			out[i] = map[string]any{"bytesCompleted": f.BytesCompleted, "wanted": at(t.Wanted, i, true), "priority": at(t.Priorities, i, PriorityNormal)}
		}
		return out
	},
	"wanted": func(t *Torrent) any {
		out := make([]int, len(t.Files)) // 0 or 1, as transmission sends them
		for i := range out {
			if at(t.Wanted, i, true) {
				out[i] = 1
			}
		}
		return out
	},
	"priorities": func(t *Torrent) any {
		out := make([]Priority, len(t.Files))
		for i := range out {
			out[i] = at(t.Priorities, i, PriorityNormal)
		}
		return out
	},
	"trackers":            trackers,
	"trackerStats":        trackerStats,
	"webseeds":            func(t *Torrent) any { return nonNil(t.Webseeds) },
	"peers":               peers,
	"labels":              func(t *Torrent) any { return nonNil(t.Settings.Labels) },
	"downloadLimit":       func(t *Torrent) any { return t.Settings.DownloadLimit },
	"downloadLimited":     func(t *Torrent) any { return t.Settings.DownloadLimited },
	"uploadLimit":         func(t *Torrent) any { return t.Settings.UploadLimit },
	"uploadLimited":       func(t *Torrent) any { return t.Settings.UploadLimited },
	"peer-limit":          func(t *Torrent) any { return t.Settings.PeerLimit },
	"maxConnectedPeers":   func(t *Torrent) any { return t.Settings.PeerLimit },
	"seedRatioLimit":      func(t *Torrent) any { return t.Settings.SeedRatioLimit },
	"seedRatioMode":       func(t *Torrent) any { return t.Settings.SeedRatioMode },
	"seedIdleLimit":       func(t *Torrent) any { return t.Settings.SeedIdleLimit },
	"seedIdleMode":        func(t *Torrent) any { return t.Settings.SeedIdleMode },
	"bandwidthPriority":   func(t *Torrent) any { return t.Settings.BandwidthPriority },
	"honorsSessionLimits": func(t *Torrent) any { return t.Settings.HonorsSessionLimits },
}

// peersFromNone is peersFrom's value without an incoming peer (encoded once).
var peersFromNone = json.RawMessage(`{"fromCache":0,"fromDht":0,"fromIncoming":0,"fromLpd":0,"fromLtep":0,"fromPex":0,"fromTracker":0}`)

// percentDone is the share of the wanted bytes verified (tr_stat.percentDone).
func percentDone(t *Torrent) any {
	if t.SizeWhenDone == 0 {
		if t.HasMetadata {
			return 1.0 // nothing wanted: done
		}
		return 0.0
	}
	return float64(t.SizeWhenDone-t.LeftUntilDone) / float64(t.SizeWhenDone)
}

// uploadRatio is uploaded over downloaded, or over what is verified when nothing was
// downloaded (a seed); -1 when neither (TR_RATIO_NA), -2 when only uploaded (TR_RATIO_INF).
func uploadRatio(t *Torrent) any {
	den := t.DownloadedEver
	if den == 0 {
		den = t.HaveValid
	}
	switch {
	case den > 0:
		return float64(t.UploadedEver) / float64(den)
	case t.UploadedEver > 0:
		return -2
	}
	return -1
}

func trackers(t *Torrent) any {
	out := []map[string]any{}
	for tier, urls := range t.Trackers {
		for _, u := range urls {
			out = append(out, map[string]any{"announce": u, "scrape": scrapeURL(u), "id": len(out), "tier": tier})
		}
	}
	return out
}

// trackerStats lists the trackers with what we do not track as unknown (-1).
func trackerStats(t *Torrent) any {
	out := []map[string]any{}
	for tier, urls := range t.Trackers {
		for _, u := range urls {
			host := u
			if p, err := url.Parse(u); err == nil {
				host = p.Scheme + "://" + p.Host
			}
			ts := map[string]any{
				"announce": u, "scrape": scrapeURL(u), "host": host, "id": len(out), "tier": tier,
				"isBackup": false, "announceState": 0, "scrapeState": 0,
				"hasAnnounced": false, "hasScraped": false, "lastAnnounceSucceeded": false, "lastScrapeSucceeded": false,
				"lastAnnounceResult": "", "lastScrapeResult": "", "lastAnnounceTimedOut": false, "lastScrapeTimedOut": false,
				"lastAnnouncePeerCount": 0, "lastAnnounceStartTime": 0, "lastAnnounceTime": 0, "lastScrapeStartTime": 0,
				"lastScrapeTime": 0, "nextAnnounceTime": 0, "nextScrapeTime": 0,
				"seederCount": -1, "leecherCount": -1, "downloadCount": -1,
			}
			if st, ok := t.TrackerStats[u]; ok && !st.LastAnnounce.IsZero() {
				ts["hasAnnounced"], ts["lastAnnounceSucceeded"], ts["lastAnnounceResult"] = true, st.Succeeded, st.Result
				ts["lastAnnounceTime"], ts["lastAnnounceStartTime"] = st.LastAnnounce.Unix(), st.LastAnnounce.Unix()
				if st.Succeeded {
					ts["lastAnnouncePeerCount"], ts["seederCount"], ts["leecherCount"] = st.PeerCount, st.Seeders, st.Leechers
				}
				if !st.NextAnnounce.IsZero() {
					ts["nextAnnounceTime"] = st.NextAnnounce.Unix()
					if t.Status != StatusStopped {
						ts["announceState"] = 1 // waiting for its next announce (tr_tracker_state)
					}
				}
			}
			out = append(out, ts)
		}
	}
	return out
}

// scrapeURL is the scrape URL of an announce URL by the convention of BEP 48: the last
// path element "announce" becomes "scrape"; "" when there is none.
func scrapeURL(announce string) string {
	i := strings.LastIndex(announce, "/")
	if i < 0 || !strings.HasPrefix(announce[i+1:], "announce") {
		return ""
	}
	return announce[:i+1] + "scrape" + announce[i+1+len("announce"):]
}

func at[T any](s []T, i int, def T) T {
	if i < len(s) {
		return s[i]
	}
	return def
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fieldList is the fields of a torrent-get that the table knows, each once, in the order
// asked, with their functions: looked up once for every torrent of the reply.
type fieldList struct {
	keys []string
	gets []func(*Torrent) any
}

func knownFields(fields []string) fieldList {
	var fl fieldList
	for _, f := range fields {
		if get, ok := torrentFields[f]; ok && !slices.Contains(fl.keys, f) {
			fl.keys, fl.gets = append(fl.keys, f), append(fl.gets, get)
		}
	}
	return fl
}

// object is t with the fields of fl, for torrent-get's "objects" format.
func (fl fieldList) object(t *Torrent) object {
	vals := make([]any, len(fl.gets))
	for i, get := range fl.gets {
		vals[i] = get(t)
	}
	return object{keys: fl.keys, vals: vals}
}

// torrentObject is t with the requested fields, for torrent-get's "objects" format.
func torrentObject(t *Torrent, fields []string) object { return knownFields(fields).object(t) }
