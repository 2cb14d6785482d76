// Package webseed maps a torrent's byte space onto the files of a web seed (BEP 19,
// "GetRight style") and fetches ranges of them with HTTP Range requests.
//
// BEP 19 names the files by the torrent's own layout: a single-file torrent's URL is the
// file itself, or a folder holding it when the URL ends in '/'; a multi-file torrent's URL
// is a root folder below which the file is at name/path..., each component URL-escaped.
// Padding files (BEP 47) are on no server: their spans are marked, for the caller to fill
// with zeros instead of asking for them.
//
// A Client reads a range of the byte space as one stream (Open), a request per file it
// spans, and fails a request that brings no byte for its Timeout. It returns errors and
// never logs; the stage that uses it (stages.WebSeeds) decides what a failure means.
package webseed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// Span is a part of a torrent's byte space as a web seed has it: Len bytes at Off in the
// file at URL. A Pad span is BEP 47 padding: zeros that no server has, never requested.
type Span struct {
	URL      string
	Off, Len int64
	Pad      bool
}

// FileURL returns the URL of f, a file of info, at the web seed base (BEP 19): base itself
// for a single-file torrent, or base followed by the name when base ends in '/'; for a
// multi-file torrent, base as a folder followed by the torrent's name and the file's path,
// each component escaped (a space is %20, '#' %23, non-ASCII its UTF-8 bytes).
func FileURL(base string, info *metainfo.Info, f *metainfo.File) string {
	if !info.MultiFile && !strings.HasSuffix(base, "/") {
		return base
	}
	var b strings.Builder
	b.WriteString(base)
	if !strings.HasSuffix(base, "/") {
		b.WriteByte('/')
	}
	for k, c := range f.Path { // Path starts with the torrent's name
		if k > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(c))
	}
	return b.String()
}

// Spans returns the parts of [off, off+n) of info's byte space at the web seed base, in
// order, one per file the range touches; files of no bytes (empty ones, symlinks) have
// none. The range must lie within [0, info.Length].
func Spans(base string, info *metainfo.Info, off, n int64) []Span {
	end := off + n
	var spans []Span
	k := sort.Search(len(info.Files), func(k int) bool {
		return info.Files[k].Offset+info.Files[k].Length > off
	})
	for ; k < len(info.Files) && info.Files[k].Offset < end; k++ {
		f := &info.Files[k]
		if f.Length == 0 {
			continue
		}
		from, to := max(off, f.Offset), min(end, f.Offset+f.Length)
		s := Span{Off: from - f.Offset, Len: to - from, Pad: f.IsPad()}
		if !s.Pad {
			s.URL = FileURL(base, info, f)
		}
		spans = append(spans, s)
	}
	return spans
}

// StatusError is a web seed's answer other than the bytes asked for (404, 503, ...).
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webseed: %s: HTTP %d %s", e.URL, e.Code, http.StatusText(e.Code))
}

// ErrNoRange is returned for a server that answers a range past the start of a file
// with the whole file: it does not serve ranges, and every piece would cost a download.
var ErrNoRange = errors.New("webseed: server ignores Range requests")

// Get asks c for the bytes of s (not a Pad span) with a Range request and returns the
// body positioned at s.Off; the caller reads s.Len bytes from it (fewer is a short body:
// io.ErrUnexpectedEOF from io.ReadFull) and closes it. A 200 answer with the whole file
// is taken when s starts the file.
func Get(ctx context.Context, c *http.Client, s Span) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("webseed: %w", err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", s.Off, s.Off+s.Len-1))
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("webseed: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); ok && start != s.Off {
			resp.Body.Close()
			return nil, fmt.Errorf("webseed: %s: asked for bytes from %d, got from %d", s.URL, s.Off, start)
		}
	case resp.StatusCode == http.StatusOK && s.Off == 0:
	case resp.StatusCode == http.StatusOK:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s", ErrNoRange, s.URL)
	default:
		resp.Body.Close()
		return nil, &StatusError{URL: s.URL, Code: resp.StatusCode}
	}
	return resp.Body, nil
}

// rangeStart reads the first byte position of a Content-Range header ("bytes 0-99/1234").
func rangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	return n, err == nil
}

// ErrTimeout is a request that brought no byte for the Client's Timeout.
var ErrTimeout = errors.New("webseed: no data before the timeout")

// Client reads from one web seed. Its fields must not change once it is in use.
type Client struct {
	HTTP     *http.Client
	Timeout  time.Duration // a request fails with ErrTimeout when no byte comes for this long
	Requests atomic.Int64  // HTTP requests made
}

// Open returns the bytes of [off, off+n) of info's byte space at the web seed base, as
// one stream: a Range request per file as the reading reaches it, zeros for padding. A
// body that ends early is io.ErrUnexpectedEOF. The caller closes the reader.
func (c *Client) Open(ctx context.Context, base string, info *metainfo.Info, off, n int64) io.ReadCloser {
	return &rangeReader{ctx: ctx, c: c, spans: Spans(base, info, off, n)}
}

type rangeReader struct {
	ctx   context.Context
	c     *Client
	spans []Span // the spans not started yet
	cur   Span   // the span being read, of which left bytes remain
	left  int64
	err   error // sticky: a failed stream has a hole, nothing after it is read
	body  io.ReadCloser
	rctx  context.Context // the request's, which the watchdog cancels
	stop  func()
	timer *time.Timer // the watchdog: cancels rctx after Timeout without a byte
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.read(p)
	r.err = err
	return n, err
}

func (r *rangeReader) read(p []byte) (int, error) {
	for r.left == 0 {
		r.closeBody()
		if len(r.spans) == 0 {
			return 0, io.EOF
		}
		r.cur, r.spans = r.spans[0], r.spans[1:]
		r.left = r.cur.Len
		if !r.cur.Pad && r.left > 0 {
			if err := r.open(r.cur); err != nil {
				return 0, err
			}
		}
	}
	p = p[:min(int64(len(p)), r.left)]
	if r.cur.Pad {
		clear(p)
		r.left -= int64(len(p))
		return len(p), nil
	}
	n, err := r.body.Read(p)
	r.left -= int64(n)
	if n > 0 {
		r.timer.Reset(r.c.Timeout)
	}
	switch {
	case r.ctx.Err() == nil && r.rctx.Err() != nil:
		return n, fmt.Errorf("%w: %s", ErrTimeout, r.cur.URL)
	case err == io.EOF && r.left > 0:
		return n, fmt.Errorf("webseed: %s: %w: the body ends %d bytes short", r.cur.URL, io.ErrUnexpectedEOF, r.left)
	case err == io.EOF || r.left == 0:
		return n, nil
	}
	return n, err
}

func (r *rangeReader) open(s Span) error {
	rctx, cancel := context.WithCancel(r.ctx)
	timer := time.AfterFunc(r.c.Timeout, cancel)
	r.c.Requests.Add(1)
	body, err := Get(rctx, r.c.HTTP, s)
	if err != nil {
		fired := !timer.Stop()
		cancel()
		if fired && r.ctx.Err() == nil {
			return fmt.Errorf("%w: %s", ErrTimeout, s.URL)
		}
		return err
	}
	r.body, r.rctx, r.timer = body, rctx, timer
	r.stop = func() { timer.Stop(); cancel() }
	return nil
}

func (r *rangeReader) closeBody() {
	if r.body == nil {
		return
	}
	r.body.Close()
	r.stop()
	r.body, r.stop = nil, nil
}

// Close ends the request in progress.
func (r *rangeReader) Close() error {
	r.closeBody()
	r.spans, r.left, r.err = nil, 0, io.ErrClosedPipe
	return nil
}
