// Package stagetest holds fakes for composing stages in tests: in-process peers (honest and
// hostile), a static peer source, in-memory storage and generated torrents.
package stagetest

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackpal/bencode-go"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// Torrent is a generated torrent with its payload in memory.
type Torrent struct {
	Meta *metainfo.MetaInfo
	Raw  []byte // the .torrent file
	Data []byte // the concatenated payload
}

// NewTorrent generates seeded random files of the given sizes and their torrent. One size
// makes a single-file torrent named name; several make a multi-file torrent whose files are
// f0.bin, f1.bin, ... in directory name.
func NewTorrent(tb testing.TB, seed uint64, name string, pieceLen int64, sizes ...int64) *Torrent {
	tb.Helper()
	var total int64
	for _, s := range sizes {
		total += s
	}
	data := make([]byte, total)
	// One PCG step per byte, the top byte of rand.Rand.Uint32's word. The generator and a
	// chunk live on the stack and reach data by copy: under -race, writing tens of MiB a
	// byte at a time through rand.Rand took seconds.
	pcg := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	var chunk [4096]byte
	for off := 0; off < len(data); off += len(chunk) {
		for i := range chunk {
			chunk[i] = byte(pcg.Uint64() >> 32)
		}
		copy(data[off:], chunk[:])
	}
	var hashes bytes.Buffer
	for off := int64(0); off < total; off += pieceLen {
		sum := sha1.Sum(data[off:min(off+pieceLen, total)])
		hashes.Write(sum[:])
	}
	info := map[string]any{"name": name, "piece length": pieceLen, "pieces": hashes.String()}
	if len(sizes) == 1 {
		info["length"] = total
	} else {
		var files []any
		for i, s := range sizes {
			files = append(files, map[string]any{"length": s, "path": []any{fmt.Sprintf("f%d.bin", i)}})
		}
		info["files"] = files
	}
	var raw bytes.Buffer
	if err := bencode.Marshal(&raw, map[string]any{"announce": "http://127.0.0.1:1/announce", "info": info}); err != nil {
		tb.Fatalf("encoding torrent: %v", err)
	}
	m, err := metainfo.Parse(bytes.NewReader(raw.Bytes()))
	if err != nil {
		tb.Fatalf("parsing generated torrent: %v", err)
	}
	return &Torrent{Meta: m, Raw: raw.Bytes(), Data: data}
}

// WithAnnounce returns the torrent with its announce URL replaced; the info dictionary, and
// so the info hash, stay the same.
func (t *Torrent) WithAnnounce(tb testing.TB, url string) *Torrent {
	tb.Helper()
	v, err := bencode.Decode(bytes.NewReader(t.Raw))
	if err != nil {
		tb.Fatalf("decoding generated torrent: %v", err)
	}
	top := v.(map[string]any)
	top["announce"] = url
	var raw bytes.Buffer
	if err := bencode.Marshal(&raw, top); err != nil {
		tb.Fatalf("encoding torrent: %v", err)
	}
	m, err := metainfo.Parse(bytes.NewReader(raw.Bytes()))
	if err != nil || m.InfoHash != t.Meta.InfoHash {
		tb.Fatalf("re-announced torrent: %v (info hash %x, want %x)", err, m.InfoHash, t.Meta.InfoHash)
	}
	return &Torrent{Meta: m, Raw: raw.Bytes(), Data: t.Data}
}
