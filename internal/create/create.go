// Package create builds .torrent files (BEP 3) from a file or a directory tree.
//
// The info dictionary it writes is the one mktorrent writes for the same input and
// piece length, so both produce the same info hash: files in a directory are listed in
// the same order (see Build), and the private flag (BEP 27) is the only optional key.
// Outside the info dictionary it writes announce and announce-list (BEP 12), comment,
// created by, creation date and url-list (BEP 19), keys sorted as bencode requires.
//
// Hashing reads the files as one byte stream, in large sequential chunks on the calling
// goroutine, while Options.Workers goroutines compute the SHA-1 of each piece.
package create

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"time"

	"github.com/jackpal/bencode-go"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// MinPieceLength is the smallest piece length Build accepts: one block, what BEP 3 peers
// request at a time, and the least BEP 52 allows.
const MinPieceLength = 16 << 10

// MaxPieceLength is the largest piece length Build accepts: metainfo's limit, so that
// BitStorm can load what it creates.
const MaxPieceLength = metainfo.MaxPieceLength

// Bounds of the automatic piece length; see AutoPieceLength.
const (
	autoMaxPieceLength = 16 << 20
	autoTargetPieces   = 2000
)

// DefaultCreatedBy is the "created by" value when Options.CreatedBy is empty.
const DefaultCreatedBy = "BitStorm"

// ErrEmpty is returned when there is nothing to share: an empty directory, a directory
// of empty files or subdirectories, or an empty file. BEP 3 has no zero-length torrent.
var ErrEmpty = errors.New("create: nothing to share: total length is 0")

// Options says how to build a torrent. The zero value is valid: automatic piece length,
// no tracker (peers then come from DHT or web seeds), public.
type Options struct {
	PieceLength int64 // bytes, a power of two >= MinPieceLength; 0 picks AutoPieceLength
	// Trackers lists announce URLs in tiers (BEP 12). "announce" is Trackers[0][0];
	// "announce-list" holds every tier, and is written only when there is more than one
	// URL in all, as mktorrent does.
	Trackers [][]string
	Private  bool   // BEP 27: sets "private" to 1 in the info dictionary
	Comment  string // "comment", omitted when empty
	// WebSeeds are BEP 19 web seed URLs ("url-list"): written as a string when there is
	// one, as a list when there are more, as mktorrent does.
	WebSeeds  []string
	CreatedBy string // "created by"; DefaultCreatedBy when empty
	NoDate    bool   // omit "creation date", for reproducible output
	Workers   int    // hashing goroutines; runtime.GOMAXPROCS(0) when <= 0
}

// Build hashes the file or directory at path and returns the bencoded .torrent.
//
// The torrent is named after the base name of path. A regular file makes a single-file
// torrent. A directory makes a multi-file torrent of every regular file below it, at any
// depth, hidden ones included, with these rules, which are mktorrent's:
//   - files are sorted by their path relative to the directory, '/'-separated,
//     compared bytewise: "a-b" < "a.txt" < "a/x" < "b" (so not directory by directory);
//   - symbolic links are followed, to files and to directories, wherever they point; a
//     file or directory reached through two paths is listed twice; a dangling link is
//     an error, and so is a link to a directory that contains it (a loop);
//   - empty files are listed (length 0); empty directories are left out, since BEP 3
//     cannot describe them; other non-regular files (FIFOs, sockets, devices) are
//     skipped, since reading them would block or never end.
//
// Build fails when path does not exist, when the total length is 0 (ErrEmpty), when a
// file name has a '\\' (BitStorm's metainfo rejects such torrents), when the piece length
// is not a power of two between MinPieceLength and MaxPieceLength, when it makes more
// than metainfo.MaxPieces pieces, and when a tracker or web seed URL is not an absolute
// URL. A file that changes size while it is read is an error. Build returns ctx.Err()
// (wrapped) once ctx is done.
func Build(ctx context.Context, path string, opt Options) ([]byte, error) {
	if err := checkOptions(opt); err != nil {
		return nil, err
	}
	c, err := scan(ctx, path)
	if err != nil {
		return nil, err
	}
	if c.total == 0 {
		return nil, ErrEmpty
	}
	pieceLen := opt.PieceLength
	if pieceLen == 0 {
		pieceLen = AutoPieceLength(c.total)
	}
	if n := numPieces(c.total, pieceLen); n > metainfo.MaxPieces {
		return nil, fmt.Errorf("create: %d bytes in pieces of %d make %d pieces, more than %d: use a larger piece length",
			c.total, pieceLen, n, metainfo.MaxPieces)
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	pieces, err := hashPieces(ctx, c.files, c.total, pieceLen, workers)
	if err != nil {
		return nil, err
	}
	return encode(c, pieceLen, pieces, opt)
}

// AutoPieceLength returns the piece length Build uses for total bytes when
// Options.PieceLength is 0: the smallest power of two from 16 KiB up to 16 MiB that
// makes at most 2000 pieces.
//
// So a torrent from 31.25 MiB to 31.25 GiB gets more than 1000 and at most 2000 pieces
// (a 20-40 KB pieces string), a smaller one 16 KiB pieces, a larger one 16 MiB pieces
// and more of them (1 TiB: 65536 pieces, 1.25 MiB of hashes). libtorrent's older rule
// is nearly the same (total/2048 rounded up to a power of two, 16 KiB to 2 MiB) but its
// 2 MiB cap gives 51,200 pieces for 100 GiB where 16 MiB, long supported by clients,
// gives 6400; mktorrent 1.1 has no rule and always uses 256 KiB: 409,600 pieces. Few
// pieces keep the .torrent and every peer's bitfield small; the cap bounds what a peer
// must fetch before it can verify and share a piece.
func AutoPieceLength(total int64) int64 {
	p := int64(MinPieceLength)
	for p < autoMaxPieceLength && total > autoTargetPieces*p {
		p *= 2
	}
	return p
}

// numPieces is ceil(total/pieceLen) for total > 0.
func numPieces(total, pieceLen int64) int64 { return (total-1)/pieceLen + 1 }

func checkOptions(opt Options) error {
	if pl := opt.PieceLength; pl != 0 && (pl < MinPieceLength || pl > MaxPieceLength || pl&(pl-1) != 0) {
		return fmt.Errorf("create: piece length %d: must be a power of two from %d to %d", pl, MinPieceLength, MaxPieceLength)
	}
	for i, tier := range opt.Trackers {
		if len(tier) == 0 {
			return fmt.Errorf("create: trackers[%d]: empty tier", i)
		}
		for j, u := range tier {
			if err := checkURL(u); err != nil {
				return fmt.Errorf("create: trackers[%d][%d]: %w", i, j, err)
			}
		}
	}
	for i, u := range opt.WebSeeds {
		if err := checkURL(u); err != nil {
			return fmt.Errorf("create: web seeds[%d]: %w", i, err)
		}
	}
	return nil
}

// checkURL accepts an absolute URL with a host: url.Parse alone takes "tracker" or
// "/announce" as relative references, which no client can announce to.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err // *url.Error quotes s
	}
	if u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%q: not an absolute URL with a host", s)
	}
	return nil
}

// fileDict is an element of info.files (BEP 3).
type fileDict struct {
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
}

// infoDict is the info dictionary: exactly the keys mktorrent writes, so that the info
// hashes match. bencode-go sorts the keys.
type infoDict struct {
	Files       []fileDict `bencode:"files,omitempty"`  // multi-file
	Length      int64      `bencode:"length,omitempty"` // single-file, > 0
	Name        string     `bencode:"name"`
	PieceLength int64      `bencode:"piece length"`
	Pieces      string     `bencode:"pieces"`
	Private     int64      `bencode:"private,omitempty"`
}

type torrentDict struct {
	Announce     string     `bencode:"announce,omitempty"`
	AnnounceList [][]string `bencode:"announce-list,omitempty"`
	Comment      string     `bencode:"comment,omitempty"`
	CreatedBy    string     `bencode:"created by,omitempty"`
	CreationDate int64      `bencode:"creation date,omitempty"`
	Info         infoDict   `bencode:"info"`
	URLList      any        `bencode:"url-list,omitempty"` // string or []string
}

func encode(c *content, pieceLen int64, pieces []byte, opt Options) ([]byte, error) {
	info := infoDict{Name: c.name, PieceLength: pieceLen, Pieces: string(pieces)}
	if c.multi {
		info.Files = make([]fileDict, len(c.files))
		for i, f := range c.files {
			info.Files[i] = fileDict{Length: f.length, Path: f.path}
		}
	} else {
		info.Length = c.total
	}
	if opt.Private {
		info.Private = 1
	}
	t := torrentDict{Comment: opt.Comment, CreatedBy: opt.CreatedBy, Info: info}
	if t.CreatedBy == "" {
		t.CreatedBy = DefaultCreatedBy
	}
	if !opt.NoDate {
		t.CreationDate = time.Now().Unix()
	}
	if len(opt.Trackers) > 0 {
		t.Announce = opt.Trackers[0][0]
		// BEP 12: clients that know announce-list ignore announce, so it must repeat
		// the first tier; with a single URL it would say nothing announce does not.
		if len(opt.Trackers) > 1 || len(opt.Trackers[0]) > 1 {
			t.AnnounceList = opt.Trackers
		}
	}
	switch len(opt.WebSeeds) {
	case 0:
	case 1:
		t.URLList = opt.WebSeeds[0]
	default:
		t.URLList = opt.WebSeeds
	}
	var b bytes.Buffer
	if err := bencode.Marshal(&b, t); err != nil {
		return nil, fmt.Errorf("create: encode: %w", err)
	}
	return b.Bytes(), nil
}
