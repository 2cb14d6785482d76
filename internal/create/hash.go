package create

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// minChunk is the least the reader reads before handing data to a worker: small pieces
// are batched so that reads stay large and channel operations few.
const minChunk = 1 << 20

// chunk is a run of whole pieces (the last one possibly short) read from the stream.
type chunk struct {
	first int    // index of its first piece
	buf   []byte // the buffer, to give back
	n     int    // bytes of buf filled
}

// hashPieces reads files as one byte stream and returns the SHA-1 of each piece of
// pieceLen bytes (BEP 3: pieces run across file boundaries), concatenated.
//
// The calling goroutine reads, sequentially, in chunks of max(pieceLen, 1 MiB); workers
// goroutines hash them into their slots of the result. Chunks circulate through a free
// list of workers+2 buffers (one per worker, one being read, one waiting for a worker),
// so memory stays below (workers+2) * max(pieceLen, 1 MiB) whatever the total.
func hashPieces(ctx context.Context, files []file, total, pieceLen int64, workers int) ([]byte, error) {
	pieces := make([]byte, numPieces(total, pieceLen)*sha1.Size)
	size := max(pieceLen, minChunk) // both powers of two: a whole number of pieces
	free := make(chan []byte, workers+2)
	for range cap(free) {
		free <- nil // allocated on first use: a small torrent needs fewer
	}
	work := make(chan chunk)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range work {
				for off := 0; off < c.n; off += int(pieceLen) {
					sum := sha1.Sum(c.buf[off:min(off+int(pieceLen), c.n)])
					i := c.first + off/int(pieceLen)
					copy(pieces[i*sha1.Size:], sum[:])
				}
				free <- c.buf // never blocks: free has room for every buffer
			}
		})
	}
	r := &streamReader{files: files}
	err := readChunks(ctx, r, int(size), int(pieceLen), free, work)
	close(work)
	wg.Wait()
	if cerr := r.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return pieces, nil
}

// readChunks fills buffers from r and sends them to work until r is exhausted.
func readChunks(ctx context.Context, r *streamReader, size, pieceLen int, free chan []byte, work chan<- chunk) error {
	for first := 0; ; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return fmt.Errorf("create: %w", ctx.Err())
		}
		if buf == nil {
			buf = make([]byte, size)
		}
		n, err := r.read(buf)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case work <- chunk{first: first, buf: buf, n: n}:
		case <-ctx.Done():
			return fmt.Errorf("create: %w", ctx.Err())
		}
		first += n / pieceLen // n is short only at the end of the stream
	}
}

// streamReader reads the concatenation of files, each exactly as long as it was when
// listed.
type streamReader struct {
	files []file
	i     int      // index of the current file
	f     *os.File // the current file, open; nil before it is opened
	left  int64    // bytes of the current file still to read
}

// read fills buf from the stream and returns how much it read: len(buf), except at the
// end of the stream. Files are opened one at a time.
func (r *streamReader) read(buf []byte) (int, error) {
	n := 0
	for n < len(buf) && r.i < len(r.files) {
		cur := &r.files[r.i]
		if r.f == nil {
			if cur.length == 0 {
				r.i++ // listed, never read: as mktorrent does
				continue
			}
			f, err := os.Open(cur.osPath)
			if err != nil {
				return n, fmt.Errorf("create: %w", err)
			}
			r.f, r.left = f, cur.length
		}
		want := int(min(int64(len(buf)-n), r.left))
		m, err := io.ReadFull(r.f, buf[n:n+want])
		n += m
		r.left -= int64(m)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, fmt.Errorf("create: %s: file shrank while hashing: %d bytes listed", cur.osPath, cur.length)
		} else if err != nil {
			return n, fmt.Errorf("create: %w", err)
		}
		if r.left == 0 {
			if err := r.finishFile(cur); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// finishFile closes the current file, checking that it did not grow: its hashes would
// describe a prefix of it, which no one could download.
func (r *streamReader) finishFile(cur *file) error {
	fi, err := r.f.Stat()
	if err == nil && fi.Size() != cur.length {
		err = fmt.Errorf("create: %s: file size changed while hashing: %d bytes listed, %d now", cur.osPath, cur.length, fi.Size())
	} else if err != nil {
		err = fmt.Errorf("create: %w", err)
	}
	if cerr := r.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("create: %w", cerr)
	}
	r.f = nil
	r.i++
	return err
}

// close closes the current file, if any: after an error or a cancel.
func (r *streamReader) close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return nil
}
