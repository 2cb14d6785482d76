package metainfo

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"strconv"
	"strings"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// A torrent added by magnet link (BEP 9) has no .torrent file: peers send its info
// dictionary, and the link names its trackers. FromInfo makes a MetaInfo of the two, and
// Torrent writes them as a .torrent that Parse reads back to the same MetaInfo.

// FromInfo returns the MetaInfo of the torrent whose bencoded info dictionary is rawInfo,
// announcing to trackers (BEP 12 tiers, such as magnet.Magnet.Tiers returns). rawInfo is
// validated exactly as Parse validates the info dictionary of a .torrent, errors and
// limits included, and nothing else is checked: comparing InfoHash with the hash the
// metadata was asked for is the caller's job. The tiers are cleaned as Trackers cleans
// them, and Announce is the first tracker, so that FromInfo(rawInfo, trackers) is what
// Parse returns for Torrent(rawInfo, trackers). rawInfo is copied.
func FromInfo(rawInfo []byte, trackers [][]string) (*MetaInfo, error) {
	if len(rawInfo) > MaxTorrentSize {
		return nil, fmt.Errorf("metainfo: info: larger than %d bytes", MaxTorrentSize)
	}
	v, err := bencode.Decode(rawInfo)
	if err != nil {
		return nil, fmt.Errorf("metainfo: info: %w", err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metainfo: info: want a dictionary, got %s", bencode.TypeName(v))
	}
	info, err := parseInfo(d)
	if err != nil {
		return nil, err
	}
	m := &MetaInfo{Info: *info, InfoHash: sha1.Sum(rawInfo), RawInfo: bytes.Clone(rawInfo)}
	m.AnnounceList = cleanTiers(trackers)
	if len(m.AnnounceList) > 0 {
		m.Announce = m.AnnounceList[0][0]
	}
	return m, nil
}

// Torrent returns a .torrent file for the info dictionary rawInfo: "announce" is the
// first tracker, "announce-list" the tiers (cleaned as Trackers cleans them; both keys
// are left out when there are none), and "info" is rawInfo verbatim, so the file's info
// hash is the SHA-1 of rawInfo, whatever order its keys are in. rawInfo must be one
// bencoded value, as FromInfo checks.
func Torrent(rawInfo []byte, trackers [][]string) []byte {
	tiers := cleanTiers(trackers)
	var b []byte
	b = append(b, 'd')
	// Keys in sorted order, as bencoding requires (BEP 3).
	if len(tiers) > 0 {
		b = appendString(append(b, "8:announce"...), tiers[0][0])
		b = append(b, "13:announce-listl"...)
		for _, tier := range tiers {
			b = append(b, 'l')
			for _, u := range tier {
				b = appendString(b, u)
			}
			b = append(b, 'e')
		}
		b = append(b, 'e')
	}
	b = append(b, "4:info"...)
	b = append(b, rawInfo...)
	return append(b, 'e')
}

// cleanTiers drops empty URLs, empty tiers and repeats of a URL, as Trackers does with
// announce-list, and returns nil when no URL is left.
func cleanTiers(tiers [][]string) [][]string {
	trimmed := make([][]string, len(tiers))
	for i, tier := range tiers {
		for _, u := range tier {
			trimmed[i] = append(trimmed[i], strings.TrimSpace(u)) // as Parse trims them
		}
	}
	return (&MetaInfo{AnnounceList: trimmed}).Trackers()
}

func appendString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
