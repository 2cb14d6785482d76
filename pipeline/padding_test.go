package pipeline_test

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackpal/bencode-go"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// paddedTorrent is a torrent "padded" in pieces of one 16 KiB block: a.bin (pieces 0 to
// 2), BEP 47 padding to the end of piece 2 and over all of piece 3, then b.bin
// (executable, pieces 4 and 5). The padding is zeros in Data, as its creator hashed it.
func paddedTorrent(t *testing.T) *stagetest.Torrent {
	t.Helper()
	const pl = 16 << 10
	sizes := []int64{2*pl + 100, 2*pl - 100, 20_000}
	var total int64
	for _, n := range sizes {
		total += n
	}
	data := make([]byte, total)
	r := rand.New(rand.NewPCG(47, 47))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	clear(data[sizes[0] : sizes[0]+sizes[1]])
	var pieces []byte
	for off := int64(0); off < total; off += pl {
		sum := sha1.Sum(data[off:min(off+pl, total)])
		pieces = append(pieces, sum[:]...)
	}
	info := map[string]any{"name": "padded", "piece length": pl, "pieces": string(pieces), "files": []any{
		map[string]any{"length": sizes[0], "path": []any{"a.bin"}},
		map[string]any{"length": sizes[1], "path": []any{".pad", "32668"}, "attr": "p"},
		map[string]any{"length": sizes[2], "path": []any{"b.bin"}, "attr": "x"},
	}}
	var raw bytes.Buffer
	if err := bencode.Marshal(&raw, map[string]any{"announce": "http://127.0.0.1:1/announce", "info": info}); err != nil {
		t.Fatal(err)
	}
	m, err := metainfo.Parse(bytes.NewReader(raw.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return &stagetest.Torrent{Meta: m, Raw: raw.Bytes(), Data: data}
}

// TestDownloadPadding downloads a torrent with padding to disk: the piece that is all
// padding is never asked of the peer, the pieces that hold some are (as whole pieces,
// the peer sending zeros) and verify, the files hold their bytes, and the padding is not
// on disk.
func TestDownloadPadding(t *testing.T) {
	checkGoroutines(t)
	tor := paddedTorrent(t)
	peer := stagetest.NewFakePeer(t, tor, stagetest.Honest)
	dir := t.TempDir()
	err, _ := run(t, tor, 30*time.Second, pipeline.WithPeerSource(addrs(peer)), withConfig(pipeline.Config{OutDir: dir}))
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if n := peer.Served.Load(); n != 5 {
		t.Errorf("the peer served %d blocks, want 5: one per piece but piece 3, all padding", n)
	}
	for _, f := range tor.Meta.Info.Files {
		name := filepath.Join(append([]string{dir}, f.Path...)...)
		got, err := os.ReadFile(name)
		switch {
		case f.IsPad():
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: padding on disk (%v)", name, err)
			}
		case err != nil || !bytes.Equal(got, tor.Data[f.Offset:f.Offset+f.Length]):
			t.Errorf("%s: %d bytes, %v; want the payload's %d", name, len(got), err, f.Length)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "padded", "b.bin")); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("b.bin ('x'): %v, %v; want it executable", st.Mode(), err)
	}
}
