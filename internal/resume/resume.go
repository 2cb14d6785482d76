// Package resume lets an interrupted download continue where it stopped.
//
// A Record lists the pieces a run has verified on disk, together with the size and
// modification time of every file at the moment it was saved. On start the record is
// trusted only when Stamp of the files still Matches it; otherwise (a crash after the
// record was written, files touched by someone else, no record at all) the data is
// rechecked with Recheck, which hashes every piece in parallel.
//
// A record is a small JSON file at Path(outDir, infoHash), written atomically by Save
// (temporary file, fsync, rename, fsync of the directory) and carrying a SHA-256 of its
// payload, so that a torn or garbled record is reported as ErrCorrupt, never trusted:
//
//	{"version":1,"sha256":"<hex of SHA-256 over the bytes of record>",
//	 "record":{"info_hash":"<40 hex>","pieces":"<base64 of the BEP 3 bitfield>",
//	           "files":[{"size":123,"mtime_ns":1700000000123456789},{"size":-1,"mtime_ns":0}],
//	           "part":{"size":4096,"mtime_ns":1700000000123456789}}}
//
// A size of -1 marks a file that did not exist; mtime_ns is the modification time in
// nanoseconds since the Unix epoch, 0 when unknown. "part", the part file of a selective
// download (selection.go), is there only when the part file was.
package resume

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/bitstorm/bitstorm/internal/atomicfile"
	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// Version is the format version Save writes and Load accepts.
const Version = 1

// ErrCorrupt is returned by Load when a record cannot be trusted as written: not JSON,
// another format version, a checksum mismatch (a torn or garbled file), or a bitfield or
// file list that does not fit the torrent.
var ErrCorrupt = errors.New("corrupt record")

// ErrOtherTorrent is returned by Load when a record belongs to another info hash.
var ErrOtherTorrent = errors.New("record of another torrent")

// Record is what a run knows to be verified on disk.
type Record struct {
	InfoHash [20]byte
	Pieces   wire.Bitfield // BEP 3 bit order, ceil(NumPieces/8) bytes
	Files    []FileStamp   // one per info.Files entry, same order
	Part     *FileStamp    // the part file of a selective download (PartPath); nil when none
}

// FileStamp is the size and modification time of one file of a torrent.
type FileStamp struct {
	Size    int64     // -1 when the file does not exist
	ModTime time.Time // zero when the file does not exist
}

// Path returns where the record of the torrent with infoHash downloading into outDir
// lives: <outDir>/.bitstorm/<hex info hash>.resume.
func Path(outDir string, infoHash [20]byte) string {
	return filepath.Join(outDir, ".bitstorm", hex.EncodeToString(infoHash[:])+".resume")
}

// envelope is the file: the payload's bytes exactly as written, and their checksum.
type envelope struct {
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	Record  json.RawMessage `json:"record"`
}

type recordJSON struct {
	InfoHash string     `json:"info_hash"`
	Pieces   []byte     `json:"pieces"` // encoding/json writes []byte as base64
	Files    []fileJSON `json:"files"`
	Part     *fileJSON  `json:"part,omitempty"`
}

type fileJSON struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime_ns"`
}

// Save writes rec to path atomically, creating path's directory if needed: a crash at
// any moment leaves either the previous record or the new one, never a mix.
func Save(path string, rec *Record) error {
	if rec == nil {
		return errors.New("resume: save: nil record")
	}
	data, err := marshal(rec)
	if err != nil {
		return fmt.Errorf("resume: save %s: %w", path, err)
	}
	if err := saveFile(path, data); err != nil {
		return fmt.Errorf("resume: save: %w", err)
	}
	return nil
}

// saveFile writes data to path atomically and durably, creating path's directory if
// needed.
func saveFile(path string, data []byte) error { return atomicfile.Write(path, data) }

func marshal(rec *Record) ([]byte, error) {
	r := recordJSON{
		InfoHash: hex.EncodeToString(rec.InfoHash[:]),
		Pieces:   []byte(rec.Pieces),
		Files:    make([]fileJSON, len(rec.Files)),
	}
	if r.Pieces == nil {
		r.Pieces = []byte{} // "" rather than null
	}
	for i, f := range rec.Files {
		r.Files[i] = fileJSON{Size: f.Size}
		if !f.ModTime.IsZero() {
			r.Files[i].ModTime = f.ModTime.UnixNano()
		}
	}
	if rec.Part != nil {
		r.Part = &fileJSON{Size: rec.Part.Size}
		if !rec.Part.ModTime.IsZero() {
			r.Part.ModTime = rec.Part.ModTime.UnixNano()
		}
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	data, err := json.Marshal(envelope{Version: Version, SHA256: hex.EncodeToString(sum[:]), Record: payload})
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Load reads the record at path and checks it against info and infoHash. The error wraps
// fs.ErrNotExist when there is no record, ErrCorrupt when it cannot be trusted, and
// ErrOtherTorrent when it belongs to another torrent; in every case the caller rechecks.
func Load(path string, info *metainfo.Info, infoHash [20]byte) (*Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err) // *PathError names the file
	}
	defer f.Close()
	// A valid record is a few bytes per piece and per file: read no more than that.
	limit := int64(1024 + 2*len(wire.NewBitfield(info.NumPieces())) + 80*len(info.Files))
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("resume: %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("resume: %s: %w: larger than %d bytes", path, ErrCorrupt, limit)
	}
	rec, err := unmarshal(data, info, infoHash)
	if err != nil {
		return nil, fmt.Errorf("resume: %s: %w", path, err)
	}
	return rec, nil
}

func unmarshal(data []byte, info *metainfo.Info, infoHash [20]byte) (*Record, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if env.Version != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, env.Version, Version)
	}
	sum := sha256.Sum256(env.Record)
	if want, err := hex.DecodeString(env.SHA256); err != nil || !bytes.Equal(sum[:], want) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	var r recordJSON
	if err := json.Unmarshal(env.Record, &r); err != nil {
		return nil, fmt.Errorf("%w: record: %w", ErrCorrupt, err)
	}
	var rec Record
	h, err := hex.DecodeString(r.InfoHash)
	if err != nil || len(h) != len(rec.InfoHash) {
		return nil, fmt.Errorf("%w: info_hash %q", ErrCorrupt, r.InfoHash)
	}
	copy(rec.InfoHash[:], h)
	if rec.InfoHash != infoHash {
		return nil, fmt.Errorf("%w: info hash %x, want %x", ErrOtherTorrent, rec.InfoHash, infoHash)
	}
	pieces, err := wire.ParseBitfield(r.Pieces, info.NumPieces())
	if err != nil {
		return nil, fmt.Errorf("%w: pieces: %w", ErrCorrupt, err)
	}
	rec.Pieces = pieces
	if len(r.Files) != len(info.Files) {
		return nil, fmt.Errorf("%w: %d files, want %d", ErrCorrupt, len(r.Files), len(info.Files))
	}
	rec.Files = make([]FileStamp, len(r.Files))
	for i, f := range r.Files {
		if f.Size < -1 {
			return nil, fmt.Errorf("%w: files[%d].size %d", ErrCorrupt, i, f.Size)
		}
		rec.Files[i].Size = f.Size
		if f.ModTime != 0 {
			rec.Files[i].ModTime = time.Unix(0, f.ModTime)
		}
	}
	if p := r.Part; p != nil {
		if p.Size < 0 {
			return nil, fmt.Errorf("%w: part.size %d", ErrCorrupt, p.Size)
		}
		rec.Part = &FileStamp{Size: p.Size}
		if p.ModTime != 0 {
			rec.Part.ModTime = time.Unix(0, p.ModTime)
		}
	}
	return &rec, nil
}
