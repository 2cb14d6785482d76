package resume

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/internal/wire"
)

// span is a damaged byte range [from, to) of the torrent's byte space.
type span struct{ from, to int64 }

// wantPieces returns the pieces of info that overlap none of the damaged spans.
func wantPieces(info *metainfo.Info, damaged []span) wire.Bitfield {
	want := wire.NewBitfield(info.NumPieces())
	for i := range info.NumPieces() {
		from, to := info.PieceOffset(i), info.PieceOffset(i)+info.PieceSize(i)
		ok := true
		for _, d := range damaged {
			if d.from < to && from < d.to {
				ok = false
			}
		}
		if ok {
			want.Set(i)
		}
	}
	return want
}

func TestRecheck(t *testing.T) {
	// Pieces of 1000 bytes over files of 2500, 0, 1500, 3000 and 777 bytes: piece 2
	// spans f0 [2000, 2500) and f2 [2500, 3000); piece 3 spans f2 and f3; the last
	// piece is short.
	const pieceLen = 1000
	sizes := []int64{2500, 0, 1500, 3000, 777}
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string, info *metainfo.Info) []span
		workers int
	}{
		{"intact", func(*testing.T, string, *metainfo.Info) []span { return nil }, 2},
		{"second file of a spanning piece flipped", func(t *testing.T, dir string, info *metainfo.Info) []span {
			flip(t, dir, info, 2, 100) // byte 2600: piece 2, whose first half in f0 is intact
			return []span{{2600, 2601}}
		}, 2},
		{"first byte and last byte flipped", func(t *testing.T, dir string, info *metainfo.Info) []span {
			flip(t, dir, info, 0, 0)
			flip(t, dir, info, 4, 776)
			return []span{{0, 1}, {info.Length - 1, info.Length}}
		}, 3},
		{"file missing", func(t *testing.T, dir string, info *metainfo.Info) []span {
			remove(t, dir, info, 2)
			return []span{{2500, 4000}}
		}, 2},
		{"file short", func(t *testing.T, dir string, info *metainfo.Info) []span {
			truncate(t, dir, info, 3, 1200)
			return []span{{4000 + 1200, 7000}}
		}, 1},
		{"all missing", func(t *testing.T, dir string, info *metainfo.Info) []span {
			for i := range info.Files {
				remove(t, dir, info, i)
			}
			return []span{{0, info.Length}}
		}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, data := newInfo(t, 3, "t", pieceLen, sizes...)
			dir := t.TempDir()
			writeFiles(t, dir, info, data)
			want := wantPieces(info, tt.damage(t, dir, info))

			r, err := OpenReader(dir, info)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var calls []int
			got, err := Recheck(t.Context(), info, r, tt.workers, func(done, total int) {
				if total != info.NumPieces() {
					t.Errorf("progress total = %d, want %d", total, info.NumPieces())
				}
				calls = append(calls, done)
			})
			if err != nil {
				t.Fatalf("Recheck: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Recheck = %08b, want %08b", got, want)
			}
			if len(calls) != info.NumPieces() || calls[len(calls)-1] != info.NumPieces() {
				t.Errorf("progress done = %v, want 1..%d", calls, info.NumPieces())
			}
		})
	}
}

func TestRecheckCancel(t *testing.T) {
	info, data := newInfo(t, 4, "t", 64, 64*200)
	before := runtime.NumGoroutine()

	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := Recheck(ctx, info, bytes.NewReader(data), 2, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("Recheck = %v, want context.Canceled", err)
		}
	})
	t.Run("midway", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		last := 0
		_, err := Recheck(ctx, info, bytes.NewReader(data), 2, func(done, total int) {
			last = done
			if done == 10 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Recheck = %v, want context.Canceled", err)
		}
		if last >= info.NumPieces() {
			t.Errorf("Recheck went on to piece %d of %d after cancel", last, info.NumPieces())
		}
	})
	t.Run("reader blocked", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		// A reader slower than the deadline: Recheck returns once the read in flight ends.
		slow := readerFunc(func(p []byte, off int64) (int, error) {
			time.Sleep(5 * time.Millisecond)
			return bytes.NewReader(data).ReadAt(p, off)
		})
		if _, err := Recheck(ctx, info, slow, 2, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Recheck = %v, want context.DeadlineExceeded", err)
		}
	})
	// Recheck waits for its goroutines: none is left behind. A goroutine that has
	// signalled its WaitGroup may take a moment to exit, hence the bounded poll.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); after > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		t.Errorf("%d goroutines after Recheck, %d before", after, before)
	}
}

type readerFunc func(p []byte, off int64) (int, error)

func (f readerFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }

func TestReader(t *testing.T) {
	info, data := newInfo(t, 5, "t", 100, 30, 0, 50, 20) // f1 is empty
	dir := t.TempDir()
	writeFiles(t, dir, info, data)
	remove(t, dir, info, 3)
	truncate(t, dir, info, 2, 40)
	r, err := OpenReader(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range []bool{false, false, false, true} {
		if got := r.Missing(i); got != want {
			t.Errorf("Missing(%d) = %v, want %v", i, got, want)
		}
	}
	tests := []struct {
		name    string
		off, n  int64
		wantN   int
		wantErr error
	}{
		{"inside f0", 5, 10, 10, nil},
		{"across f0, empty f1, f2", 20, 30, 30, nil},
		{"into the short tail of f2", 60, 20, 10, io.ErrUnexpectedEOF},
		{"into missing f3", 85, 10, 0, fs.ErrNotExist},
		{"past the end", 100, 1, 0, io.EOF},
		{"negative offset", -1, 1, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := make([]byte, tt.n)
			n, err := r.ReadAt(p, tt.off)
			if n != tt.wantN {
				t.Errorf("ReadAt(%d bytes at %d) n = %d, want %d", tt.n, tt.off, n, tt.wantN)
			}
			switch {
			case tt.off < 0 && err == nil:
				t.Errorf("ReadAt at %d = nil error, want one", tt.off)
			case tt.off >= 0 && !errors.Is(err, tt.wantErr):
				t.Errorf("ReadAt(%d bytes at %d) = %v, want %v", tt.n, tt.off, err, tt.wantErr)
			}
			if tt.off >= 0 && !bytes.Equal(p[:n], data[tt.off:tt.off+int64(n)]) {
				t.Errorf("ReadAt(%d bytes at %d) read other bytes than written", tt.n, tt.off)
			}
		})
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func fileName(dir string, info *metainfo.Info, i int) string {
	return filepath.Join(append([]string{dir}, info.Files[i].Path...)...)
}

// flip inverts the byte at offset off of file i.
func flip(t *testing.T, dir string, info *metainfo.Info, i int, off int64) {
	t.Helper()
	f, err := os.OpenFile(fileName(dir, info, i), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir string, info *metainfo.Info, i int) {
	t.Helper()
	if err := os.Remove(fileName(dir, info, i)); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, dir string, info *metainfo.Info, i int, size int64) {
	t.Helper()
	if err := os.Truncate(fileName(dir, info, i), size); err != nil {
		t.Fatal(err)
	}
}
