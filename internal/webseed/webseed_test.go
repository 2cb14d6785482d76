package webseed

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// layout returns a multi-file Info named name whose files have the given paths (below
// name) and lengths, laid end to end; a path starting with ".pad" is BEP 47 padding.
func layout(name string, files ...any) *metainfo.Info {
	info := &metainfo.Info{Name: name, PieceLength: 64, MultiFile: true}
	for k := 0; k < len(files); k += 2 {
		f := metainfo.File{Path: append([]string{name}, files[k].([]string)...), Length: int64(files[k+1].(int)), Offset: info.Length}
		if f.Path[1] == ".pad" {
			f.Attr = metainfo.AttrPad
		}
		info.Files = append(info.Files, f)
		info.Length += f.Length
	}
	return info
}

func TestFileURL(t *testing.T) {
	single := &metainfo.Info{Name: "My File.iso", Files: []metainfo.File{{Path: []string{"My File.iso"}, Length: 10}}}
	multi := layout("michael", []string{"Readme.txt"}, 1, []string{"sub dir", "a b#c?d%.bin"}, 1,
		[]string{"ünï", "x+y&z=1;2,3"}, 1)
	for _, tc := range []struct {
		name, base string
		info       *metainfo.Info
		file       int
		want       string
	}{
		{"single-file URL as is", "http://h/dl/file.iso", single, 0, "http://h/dl/file.iso"},
		{"single-file folder", "http://h/dl/", single, 0, "http://h/dl/My%20File.iso"},
		{"multi-file folder", "http://h/pub/", multi, 0, "http://h/pub/michael/Readme.txt"},
		{"multi-file without slash", "http://h/pub", multi, 0, "http://h/pub/michael/Readme.txt"},
		{"escaped and nested", "http://h/", multi, 1, "http://h/michael/sub%20dir/a%20b%23c%3Fd%25.bin"},
		{"UTF-8 and sub-delims", "http://h/", multi, 2, "http://h/michael/%C3%BCn%C3%AF/x+y&z=1%3B2%2C3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FileURL(tc.base, tc.info, &tc.info.Files[tc.file]); got != tc.want {
				t.Errorf("FileURL(%q, file %d) = %q, want %q", tc.base, tc.file, got, tc.want)
			}
		})
	}
}

func TestSpans(t *testing.T) {
	// a.bin [0,100), padding [100,128), sub/b.bin [128,178), empty [178,178), c.bin [178,188)
	info := layout("t", []string{"a.bin"}, 100, []string{".pad", "28"}, 28, []string{"sub", "b.bin"}, 50,
		[]string{"empty"}, 0, []string{"c.bin"}, 10)
	const a, b, c = "http://h/t/a.bin", "http://h/t/sub/b.bin", "http://h/t/c.bin"
	for _, tc := range []struct {
		name   string
		off, n int64
		want   []Span
	}{
		{"inside one file", 10, 20, []Span{{URL: a, Off: 10, Len: 20}}},
		{"a whole file", 0, 100, []Span{{URL: a, Off: 0, Len: 100}}},
		{"across padding", 90, 50, []Span{{URL: a, Off: 90, Len: 10}, {Off: 0, Len: 28, Pad: true}, {URL: b, Off: 0, Len: 12}}},
		{"padding only", 100, 28, []Span{{Off: 0, Len: 28, Pad: true}}},
		{"over an empty file", 170, 18, []Span{{URL: b, Off: 42, Len: 8}, {URL: c, Off: 0, Len: 10}}},
		{"everything", 0, 188, []Span{{URL: a, Len: 100}, {Len: 28, Pad: true}, {URL: b, Len: 50}, {URL: c, Len: 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Spans("http://h/", info, tc.off, tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("Spans(%d, %d) = %+v, want %+v", tc.off, tc.n, got, tc.want)
			}
		})
	}
}

// TestOpen reads ranges across files and padding from a real file server.
func TestOpen(t *testing.T) {
	info := layout("t w", []string{"a.bin"}, 100, []string{".pad", "28"}, 28, []string{"s d", "b#.bin"}, 50)
	data := make([]byte, info.Length)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	clear(data[100:128])
	dir := t.TempDir()
	for _, f := range info.Files {
		if f.IsPad() {
			continue
		}
		name := filepath.Join(append([]string{dir}, f.Path...)...)
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, data[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), Timeout: 10 * time.Second}
	for _, r := range [][2]int64{{0, 178}, {90, 50}, {100, 28}, {130, 48}, {5, 1}} {
		rc := c.Open(context.Background(), srv.URL, info, r[0], r[1])
		got, err := io.ReadAll(iotestHalf(rc))
		rc.Close()
		if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Errorf("Open(%d, %d): %d bytes, %v; want the file's %d", r[0], r[1], len(got), err, r[1])
		}
	}
	if n := c.Requests.Load(); n != 6 {
		t.Errorf("%d requests, want 6 (padding is never requested)", n)
	}
}

// iotestHalf reads at most half of what is asked each time, to cross span ends mid-read.
func iotestHalf(r io.Reader) io.Reader { return &half{r} }

type half struct{ r io.Reader }

func (h *half) Read(p []byte) (int, error) { return h.r.Read(p[:(len(p)+1)/2]) }

// TestOpenFailures: what a web seed answers wrong becomes an error the caller can tell.
func TestOpenFailures(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-99/100")
		w.WriteHeader(http.StatusPartialContent)
		w.Write(make([]byte, 60)) // and no more: the handler returns, the body ends
	})
	mux.HandleFunc("/norange", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 100)) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-9/100")
		w.WriteHeader(http.StatusPartialContent)
		w.Write(make([]byte, 10))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release) // before Close, which waits for the handlers
	single := func(name string) *metainfo.Info {
		return &metainfo.Info{Name: name, Length: 100, Files: []metainfo.File{{Path: []string{name}, Length: 100}}}
	}
	c := &Client{HTTP: srv.Client(), Timeout: 50 * time.Millisecond}
	var status *StatusError
	for _, tc := range []struct {
		name   string
		off, n int64
		is     func(error) bool
	}{
		{"missing", 0, 10, func(err error) bool { return errors.As(err, &status) && status.Code == 404 }},
		{"short", 0, 100, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"norange", 0, 10, func(err error) bool { return err == nil }},
		{"norange", 10, 10, func(err error) bool { return errors.Is(err, ErrNoRange) }},
		{"moved", 20, 10, func(err error) bool { return err != nil && !errors.Is(err, ErrTimeout) }},
		{"hang", 0, 10, func(err error) bool { return errors.Is(err, ErrTimeout) }},
	} {
		rc := c.Open(context.Background(), srv.URL+"/", single(tc.name), tc.off, tc.n)
		_, err := io.ReadFull(rc, make([]byte, tc.n))
		rc.Close()
		if !tc.is(err) {
			t.Errorf("%s [%d, +%d): err = %v", tc.name, tc.off, tc.n, err)
		}
	}
}
