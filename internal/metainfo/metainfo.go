// Package metainfo reads .torrent files (BEP 3): it validates the info dictionary, lays
// the files out in the torrent's byte space, and computes the info hash over the info
// dictionary's bytes exactly as they appear in the file.
//
// Everything that decides what is downloaded and where it is written (the info
// dictionary) is checked strictly, and an error names the field:
//
//	metainfo: info.piece length: must be > 0
//	metainfo: info.files[2].path[1]: ".." is not allowed
//
// File paths are safe to join below an output directory: no component is empty, ".", ".."
// or contains '/', '\\' or NUL (such a torrent is refused, never rewritten), and no two
// files share a path or nest in one another. Names that are safe but unusable are cleaned
// as libtorrent cleans them, so both put files at the same paths (path.go): invalid UTF-8
// and control characters become '_', direction marks go, and a component of 240 bytes or
// more is shortened. "name.utf-8" and "path.utf-8" win over "name" and "path".
//
// BEP 47 file attributes are kept in File.Attr: padding files lie in the byte space but
// never on disk (DataSpans says which bytes files hold), symlinks take no bytes and point
// inside the torrent (symlink.go). A BEP 52 hybrid torrent is read by its v1 file list,
// once its v2 file tree is found to describe the same files (hybrid.go); a v2-only torrent
// is refused with ErrV2Only.
//
// What does not decide the data is read leniently, as other clients read it: bytes after
// the top-level dictionary are ignored, a malformed "announce-list" falls back to
// "announce", tracker and web seed URLs are trimmed, and informational fields (comment,
// created by, creation date, url-list) of the wrong type are ignored.
package metainfo

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// MaxTorrentSize is the largest .torrent Parse reads. Real ones are well under a few MiB
// (a 4,000,000-piece torrent carries 80 MB of hashes and is rejected anyway).
const MaxTorrentSize = 64 << 20

// MaxPieces bounds the number of pieces, and so the size of per-piece state (bitfields,
// availability counts) that a torrent can make us allocate.
const MaxPieces = 4_000_000

// MaxPieceLength bounds the piece length, because a piece is assembled and verified in
// memory. 256 MiB is the largest piece length mktorrent and qBittorrent offer.
const MaxPieceLength = 256 << 20

// hashLen is the length of a piece hash: SHA-1 (BEP 3).
const hashLen = sha1.Size

// File is one file of a torrent.
type File struct {
	// Path is the file's path relative to the output directory, one element per
	// component, each validated: []string{Name} for a single-file torrent,
	// []string{Name, dir..., file} for a multi-file one. A padding file given without a
	// path is []string{Name, ".pad", "<length>"}, as libtorrent names it.
	Path []string
	// Length is the file's size in the torrent's byte space: 0 for a symlink, which
	// holds no data (BEP 47, and libtorrent, ignore its "length").
	Length int64
	Offset int64 // byte offset of the file in the torrent's concatenated byte space
	Attr   Attr  // BEP 47 attributes: padding, hidden, executable, symlink
	// SymlinkPath is the target of a symlink, in the form of Path (relative to the
	// output directory, starting with Name), nil for other files. A target that names no
	// file or directory of the torrent is, as in libtorrent, the link's own Path.
	SymlinkPath []string
}

// Info is the validated info dictionary of a torrent (BEP 3).
type Info struct {
	Name        string
	PieceLength int64
	Pieces      []byte // concatenated 20-byte SHA-1 hashes, one per piece
	Length      int64  // length of the torrent's byte space: all files, padding included
	Files       []File // never empty; in the order of the torrent, which is the byte order
	MultiFile   bool
	Private     bool // BEP 27: "private" is the integer 1
}

// NumPieces returns the number of pieces.
func (i *Info) NumPieces() int { return len(i.Pieces) / hashLen }

// PieceSize returns the length of piece index: PieceLength, except that the last piece
// holds what is left and may be shorter. It panics if index is out of range.
func (i *Info) PieceSize(index int) int64 {
	i.checkIndex(index)
	if index == i.NumPieces()-1 {
		return i.Length - int64(index)*i.PieceLength
	}
	return i.PieceLength
}

// PieceHash returns the SHA-1 hash of piece index. It panics if index is out of range.
func (i *Info) PieceHash(index int) [20]byte {
	i.checkIndex(index)
	return [20]byte(i.Pieces[index*hashLen : (index+1)*hashLen])
}

// PieceOffset returns the byte offset of piece index in the torrent's concatenated byte
// space. It panics if index is out of range.
func (i *Info) PieceOffset(index int) int64 {
	i.checkIndex(index)
	return int64(index) * i.PieceLength
}

func (i *Info) checkIndex(index int) {
	if index < 0 || index >= i.NumPieces() {
		panic(fmt.Sprintf("metainfo: piece index %d out of range [0, %d)", index, i.NumPieces()))
	}
}

// MetaInfo is a parsed .torrent file.
type MetaInfo struct {
	Info Info
	// InfoHash is the SHA-1 of the info dictionary's bytes as they appear in the file,
	// not of a re-encoding: keys out of order or unknown keys are part of what peers hash.
	InfoHash     [20]byte
	Announce     string
	AnnounceList [][]string // BEP 12 tiers, as in the file; Trackers cleans them up
	Comment      string
	CreatedBy    string
	CreationDate time.Time // zero if absent or not positive
	URLList      []string  // BEP 19 web seeds ("url-list", a string or a list of strings)
	// Nodes are the DHT nodes a trackerless torrent names (BEP 5 "nodes": a list of
	// [host, port]), as "host:port"; the host may be a name.
	Nodes []string
	// RawInfo is the info dictionary as it appears in the file, or as peers sent it to
	// FromInfo: the bytes InfoHash hashes, and those BEP 9 serves to peers fetching the
	// metadata (its length is the "metadata_size" of our extended handshake). Nil in a
	// MetaInfo built by hand.
	RawInfo []byte
}

// Parse reads a .torrent from r, at most MaxTorrentSize bytes, and validates it.
func Parse(r io.Reader) (*MetaInfo, error) {
	data, err := readAtMost(r, MaxTorrentSize)
	if err != nil {
		return nil, err
	}
	return parse(data)
}

// readAtMost reads r to its end, failing once it has more than limit bytes: memory
// follows what was sent, never what a header claims.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("metainfo: read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("metainfo: torrent larger than %d bytes", limit)
	}
	return data, nil
}

// Load reads and validates the .torrent file at path. Errors name the file.
func Load(path string) (*MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metainfo: %w", err) // *PathError names the file
	}
	defer f.Close()
	m, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Trackers returns the announce URLs in tiers (BEP 12): announce-list when it has any
// URL, else announce as a single tier, else nil. Empty URLs, empty tiers and repeats of a
// URL already listed are dropped. The result is a fresh copy: callers may shuffle each
// tier, as BEP 12 asks, without touching m.
func (m *MetaInfo) Trackers() [][]string {
	var tiers [][]string
	seen := make(map[string]bool)
	for _, tier := range m.AnnounceList {
		var t []string
		for _, u := range tier {
			if u != "" && !seen[u] {
				seen[u] = true
				t = append(t, u)
			}
		}
		if len(t) > 0 {
			tiers = append(tiers, t)
		}
	}
	if len(tiers) > 0 {
		return tiers
	}
	// BEP 12: announce is used only when announce-list is absent (or, here, useless).
	if m.Announce != "" {
		return [][]string{{m.Announce}}
	}
	return nil
}

// HexHash returns the info hash as 40 lowercase hex digits.
func (m *MetaInfo) HexHash() string { return hex.EncodeToString(m.InfoHash[:]) }

func parse(data []byte) (*MetaInfo, error) {
	// Bytes after the top-level dictionary (a newline, a second copy, padding to a block
	// size) are ignored, as libtorrent and other clients do; they are not part of the
	// info dictionary, so the info hash is the same with them or without.
	data = data[:valueEnd(data)]
	v, err := bencode.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("metainfo: %w", err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metainfo: top level: want a dictionary, got %s", bencode.TypeName(v))
	}
	rawInfo, err := bencode.DictValue(data, "info")
	if errors.Is(err, bencode.ErrNoKey) {
		return nil, errors.New("metainfo: info: missing")
	} else if err != nil {
		return nil, fmt.Errorf("metainfo: info: %w", err)
	}
	infoDict, ok := top["info"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metainfo: info: want a dictionary, got %s", bencode.TypeName(top["info"]))
	}
	info, err := parseInfo(infoDict)
	if err != nil {
		return nil, err
	}
	m := &MetaInfo{Info: *info, InfoHash: sha1.Sum(rawInfo)}
	m.RawInfo = bytes.Clone(rawInfo) // not a sub-slice: it would keep the whole file alive

	announce, _ := top["announce"].(string)
	m.Announce = strings.TrimSpace(announce)
	m.AnnounceList = parseAnnounceList(top["announce-list"])
	m.Comment, _ = top["comment"].(string)
	m.CreatedBy, _ = top["created by"].(string)
	if sec, ok := top["creation date"].(int64); ok && sec > 0 {
		m.CreationDate = time.Unix(sec, 0).UTC()
	}
	m.URLList = parseURLList(top["url-list"])
	m.Nodes = parseNodes(top["nodes"])
	return m, nil
}

// parseNodes reads BEP 5 "nodes", [["127.0.0.1", 6881], ["your.router.node", 4804]], as
// "host:port" strings. A node that is not a non-empty host and a port from 1 to 65535 is
// skipped: the nodes only help the DHT start.
func parseNodes(v any) []string {
	list, _ := v.([]any)
	var nodes []string
	for _, n := range list {
		pair, ok := n.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		host, _ := pair[0].(string)
		port, ok := pair[1].(int64)
		if host = strings.TrimSpace(host); host == "" || !ok || port < 1 || port > 65535 {
			continue
		}
		nodes = append(nodes, net.JoinHostPort(host, strconv.FormatInt(port, 10)))
	}
	return nodes
}

// parseAnnounceList reads BEP 12 tiers: a list of lists of URLs, each trimmed of the
// spaces and tabs some creators leave around it. A tier given as a bare string, which some
// old creators write, is taken as a tier of one. Whatever is malformed (announce-list not
// a list, a tier or URL of another type) is skipped, as libtorrent skips it: trackers are
// not what the torrent is, and Trackers falls back to "announce" when no URL is left.
func parseAnnounceList(v any) [][]string {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	tiers := make([][]string, 0, len(list))
	for _, t := range list {
		switch t := t.(type) {
		case string:
			tiers = append(tiers, []string{strings.TrimSpace(t)})
		case []any:
			tier := make([]string, 0, len(t))
			for _, u := range t {
				if s, ok := u.(string); ok {
					tier = append(tier, strings.TrimSpace(s))
				}
			}
			tiers = append(tiers, tier)
		}
	}
	return tiers
}

// parseURLList reads BEP 19 "url-list": one URL or a list of them. Anything else, and
// empty URLs, are ignored: web seeds are optional.
func parseURLList(v any) []string {
	switch v := v.(type) {
	case string:
		if v = strings.TrimSpace(v); v != "" {
			return []string{v}
		}
	case []any:
		var urls []string
		for _, u := range v {
			if s, ok := u.(string); ok && strings.TrimSpace(s) != "" {
				urls = append(urls, strings.TrimSpace(s))
			}
		}
		return urls
	}
	return nil
}

// valueEnd returns the length of the bencoded value at the start of data, or len(data)
// when data is not one (bencode.Decode then says what is wrong with it). It only counts:
// validation is Decode's job. It never recurses, so hostile nesting costs nothing.
func valueEnd(data []byte) int {
	depth := 0
	for p := 0; p < len(data); {
		switch c := data[p]; {
		case c == 'i':
			e := bytes.IndexByte(data[p:], 'e')
			if e < 0 {
				return len(data)
			}
			p += e + 1
		case c == 'l' || c == 'd':
			depth++
			p++
			continue
		case c == 'e':
			if depth == 0 {
				return len(data)
			}
			depth--
			p++
		case c >= '0' && c <= '9':
			colon := bytes.IndexByte(data[p:], ':')
			if colon < 0 {
				return len(data)
			}
			n, err := strconv.ParseUint(string(data[p:p+colon]), 10, 63)
			if err != nil || n > uint64(len(data)-(p+colon+1)) {
				return len(data)
			}
			p += colon + 1 + int(n)
		default:
			return len(data)
		}
		if depth == 0 {
			return p
		}
	}
	return len(data)
}

// optString returns d[key] if it is a string; field names it in errors.
func optString(d map[string]any, key, field string) (s string, ok bool, err error) {
	v, present := d[key]
	if !present {
		return "", false, nil
	}
	s, ok = v.(string)
	if !ok {
		return "", false, fmt.Errorf("metainfo: %s: want a string, got %s", field, bencode.TypeName(v))
	}
	return s, true, nil
}

// optInt returns d[key] if it is an integer; field names it in errors.
func optInt(d map[string]any, key, field string) (n int64, ok bool, err error) {
	v, present := d[key]
	if !present {
		return 0, false, nil
	}
	n, ok = v.(int64)
	if !ok {
		return 0, false, fmt.Errorf("metainfo: %s: want an integer, got %s", field, bencode.TypeName(v))
	}
	return n, true, nil
}
