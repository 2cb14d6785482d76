package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/bitstorm/bitstorm/internal/metainfo"
	"github.com/bitstorm/bitstorm/stages"
)

// A Reader reads one file of a torrent while it downloads, as anacrolix/torrent's reader
// does: Read waits until the pieces under the position are verified and written, and the
// position drives the download (Scheduler.SetPriority): the piece under it is
// stages.PriorityNow, the readahead window after it (SetReadahead) PriorityHigh; Seek
// moves both, Close gives the pieces their priority from before back (a skipped file's
// are skipped again). Several Readers of one torrent may be open at once; a piece is as
// urgent as the most urgent of them wants.
//
// Read and Seek are not for concurrent use with each other (a Read holds the position
// while it waits); Close and SetReadahead may be called from any goroutine, and Close
// ends a Read that waits.
type Reader struct {
	hub         *readerHub
	name        string // the file's path in the torrent, for errors
	off         int64  // the file's offset in the torrent's byte space
	length      int64
	pieceLength int64
	closed      chan struct{}
	once        sync.Once

	opMu sync.Mutex // Read and Seek, one at a time; a Read holds it while it waits

	mu        sync.Mutex // guards pos and readahead, which SetReadahead reads without opMu
	pos       int64
	readahead int64
}

var _ io.ReadSeekCloser = (*Reader)(nil)

// DefaultReadahead is a Reader's readahead until SetReadahead: a few seconds of video at
// the bit rates a torrent streams at.
const DefaultReadahead = 4 << 20

// ErrReaderClosed is the error of a Read or Seek on a closed Reader, and of a Read that
// was waiting when the Reader was closed.
var ErrReaderClosed = fmt.Errorf("pipeline: reader: %w", os.ErrClosed)

// ErrRunEnded is a Pipeline's Reader's error once its Run has returned: no piece comes any
// more, and the storage is closed.
var ErrRunEnded = errors.New("pipeline: run ended")

// ErrNoInfo is NewReader's error before a magnet link's metadata is known.
var ErrNoInfo = errors.New("pipeline: the torrent's metadata is not known yet")

// NewReader returns a Reader of the file at fileIndex of the torrent's files
// (Meta().Info.Files), at position 0, with the default readahead. It wants no piece before
// its first Read, Seek or SetReadahead. It reads while Run runs; once Run has returned its
// reads fail with ErrRunEnded.
func (p *Pipeline) NewReader(fileIndex int) (*Reader, error) {
	return p.readers.newReader(p.Meta(), fileIndex)
}

// NewReader returns a Reader of the file at fileIndex of Files, at position 0. Its reads
// wait while the torrent is paused and go on when it resumes; once the torrent is removed
// or its session closed they fail. Before GotInfo it fails with ErrNoInfo.
func (t *Torrent) NewReader(fileIndex int) (*Reader, error) {
	return t.readers.newReader(t.Meta(), fileIndex)
}

// Length is the size of the file.
func (r *Reader) Length() int64 { return r.length }

// SetReadahead sets how many bytes after the position are fetched ahead of the rest
// (DefaultReadahead until then; 0 or less: only the piece under the position).
func (r *Reader) SetReadahead(n int64) {
	r.mu.Lock()
	r.readahead = n
	pos := r.pos
	r.mu.Unlock()
	r.retarget(pos, n)
}

// Read reads from the position, waiting for its piece if need be. It returns io.EOF at
// the end of the file, ErrReaderClosed once the Reader is closed.
func (r *Reader) Read(b []byte) (int, error) { return r.ReadContext(context.Background(), b) }

// ReadContext is Read whose wait for the piece under the position also ends with ctx:
// then it returns ctx's error, and the Reader stays usable (an HTTP request gone away
// stops waiting; its Reader is closed by its handler).
func (r *Reader) ReadContext(ctx context.Context, b []byte) (int, error) {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.isClosed() {
		return 0, ErrReaderClosed
	}
	r.mu.Lock()
	pos, ra := r.pos, r.readahead
	r.mu.Unlock()
	if pos >= r.length {
		return 0, io.EOF
	}
	r.retarget(pos, ra) // a new Reader's first Read: its pieces are wanted while it waits
	if len(b) == 0 {
		return 0, nil
	}
	b = b[:min(int64(len(b)), r.length-pos)]
	n, err := r.hub.read(ctx, r, b, r.off+pos)
	r.mu.Lock()
	r.pos += int64(n)
	next, ra := r.pos, r.readahead
	r.mu.Unlock()
	r.retarget(next, ra)
	if err != nil {
		return n, fmt.Errorf("pipeline: read %s at %d: %w", r.name, pos, err)
	}
	return n, nil
}

// Seek sets the position (io.Seeker) and moves the pieces wanted with it. A position past
// the end is allowed: Read returns io.EOF there.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.isClosed() {
		return 0, ErrReaderClosed
	}
	r.mu.Lock()
	pos := r.pos
	switch whence {
	case io.SeekStart:
		pos = offset
	case io.SeekCurrent:
		pos += offset
	case io.SeekEnd:
		pos = r.length + offset
	default:
		r.mu.Unlock()
		return 0, fmt.Errorf("pipeline: seek %s: whence %d", r.name, whence)
	}
	if pos < 0 {
		r.mu.Unlock()
		return 0, fmt.Errorf("pipeline: seek %s: negative position %d", r.name, pos)
	}
	r.pos = pos
	ra := r.readahead
	r.mu.Unlock()
	r.retarget(pos, ra)
	return pos, nil
}

// Close releases the Reader's pieces (back to normal priority, unless another Reader
// wants them) and ends a Read that waits. Closing twice is harmless.
func (r *Reader) Close() error {
	r.once.Do(func() {
		close(r.closed)
		r.hub.remove(r)
	})
	return nil
}

func (r *Reader) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// retarget tells the hub the pieces a Reader at pos with readahead ra wants.
func (r *Reader) retarget(pos, ra int64) {
	if !r.isClosed() {
		r.hub.retarget(r, r.window(pos, ra))
	}
}

// window is the pieces a Reader wants: [first, now) now, [now, high) soon. The zero value
// wants nothing.
type window struct{ first, now, high int }

// level is how much the window wants piece: PriorityNormal when not at all.
func (w window) level(piece int) stages.Priority {
	switch {
	case piece >= w.first && piece < w.now:
		return stages.PriorityNow
	case piece >= w.now && piece < w.high:
		return stages.PriorityHigh
	}
	return stages.PriorityNormal
}

// window is the pieces under pos and under the readahead after it, within the file.
func (r *Reader) window(pos, ra int64) window {
	if pos >= r.length {
		return window{}
	}
	pl := r.pieceLength
	at := r.off + pos
	first := int(at / pl)
	end := r.off + min(r.length, pos+max(ra, 1))
	return window{first: first, now: first + 1, high: max(first+1, int((end-1)/pl)+1)}
}

// prioritizer is the Scheduler's piece priorities, behind an interface so that the
// Readers' bookkeeping is tested alone.
type prioritizer interface {
	Priority(piece int) stages.Priority
	SetPriority(piece int, p stages.Priority)
}

var _ prioritizer = (*stages.Scheduler)(nil)

// held is a piece the Readers want: how much, and its priority before they did (a skipped
// file's piece is skipped again once no Reader wants it).
type held struct{ want, base stages.Priority }

// readerHub is the Readers of one torrent and what they read through: the run's Scheduler
// (which pieces are done; their priorities) and its storage. A Pipeline has its own; a
// Session's Torrent keeps one across its runs (withReaders), so that its Readers outlive
// a pause.
type readerHub struct {
	persistent bool // a Torrent's: the end of a run is not the end of its Readers

	// mu guards what follows. It is taken before the Scheduler's lock, never after: the
	// Scheduler's OnPieceDone callback takes only sigMu.
	mu          sync.RWMutex
	pieceLength int64
	sched       *stages.Scheduler
	prio        prioritizer
	store       stages.Storage // nil between runs
	readers     map[*Reader]window
	held        map[int]held // the pieces some Reader wants
	endErr      error        // once set, no run comes any more

	sigMu sync.Mutex
	sig   chan struct{} // closed and replaced on every change a waiting Read must see
}

func newReaderHub(persistent bool) *readerHub {
	return &readerHub{persistent: persistent, readers: make(map[*Reader]window),
		held: make(map[int]held), sig: make(chan struct{})}
}

// withReaders has the pipeline's Readers kept by h: a Torrent's, across runs.
func withReaders(h *readerHub) Option { return func(p *Pipeline) { p.readers = h } }

func (h *readerHub) newReader(m *metainfo.MetaInfo, fileIndex int) (*Reader, error) {
	if m == nil {
		return nil, ErrNoInfo
	}
	files := m.Info.Files
	if fileIndex < 0 || fileIndex >= len(files) {
		return nil, fmt.Errorf("pipeline: reader: file %d of %d", fileIndex, len(files))
	}
	f := files[fileIndex]
	h.mu.Lock()
	h.pieceLength = m.Info.PieceLength
	h.mu.Unlock()
	return &Reader{hub: h, name: strings.Join(f.Path, "/"), off: f.Offset, length: f.Length,
		pieceLength: m.Info.PieceLength, closed: make(chan struct{}), readahead: DefaultReadahead}, nil
}

// setSched gives the hub a run's Scheduler, once the torrent's metadata is known: the
// Readers' priorities go to it at once, and its verified pieces wake them.
func (h *readerHub) setSched(info *metainfo.Info, s *stages.Scheduler) {
	s.OnPieceDone(func(int) { h.signal() })
	h.mu.Lock()
	h.pieceLength, h.sched, h.prio = info.PieceLength, s, s
	for piece, c := range h.held { // a new run's Scheduler: its own base priorities
		c.base = s.Priority(piece)
		h.held[piece] = c
		s.SetPriority(piece, max(c.want, c.base))
	}
	h.mu.Unlock()
	h.signal()
}

// attachStore makes the run's storage readable, once what it holds is known.
func (h *readerHub) attachStore(st stages.Storage) {
	h.mu.Lock()
	h.store = st
	h.mu.Unlock()
	h.signal()
}

// detachStore waits for the reads in progress and forgets the storage, before it closes.
func (h *readerHub) detachStore() {
	h.mu.Lock()
	h.store = nil
	h.mu.Unlock()
	h.signal()
}

// runEnded is called when a run returns: a Pipeline's Readers end with it.
func (h *readerHub) runEnded() {
	if !h.persistent {
		h.end(ErrRunEnded)
	}
}

// end fails the Readers' reads with err from now on.
func (h *readerHub) end(err error) {
	h.mu.Lock()
	if h.endErr == nil {
		h.endErr = err
	}
	h.store = nil
	h.mu.Unlock()
	h.signal()
}

// signal wakes every waiting Read to look again. It is called under the Scheduler's lock.
func (h *readerHub) signal() {
	h.sigMu.Lock()
	close(h.sig)
	h.sig = make(chan struct{})
	h.sigMu.Unlock()
}

func (h *readerHub) changed() <-chan struct{} {
	h.sigMu.Lock()
	defer h.sigMu.Unlock()
	return h.sig
}

// read reads into b at off, in the torrent's byte space, as much as is verified from
// there on, once the piece under off is.
func (h *readerHub) read(ctx context.Context, r *Reader, b []byte, off int64) (int, error) {
	for {
		changed := h.changed() // before looking: a change after the look closes it
		n, ok, err := h.tryRead(b, off)
		if ok || err != nil {
			return n, err
		}
		select {
		case <-changed:
		case <-r.closed:
			return 0, ErrReaderClosed
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
}

// tryRead reads into b at off what is verified from there on; ok is false when the piece
// under off is not, or no run's storage is open.
func (h *readerHub) tryRead(b []byte, off int64) (n int, ok bool, err error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.endErr != nil {
		return 0, false, h.endErr
	}
	if h.store == nil || h.sched == nil {
		return 0, false, nil
	}
	end, pl := off, h.pieceLength
	for end < off+int64(len(b)) && h.sched.Has(int(end/pl)) {
		end = (end/pl + 1) * pl
	}
	if end == off {
		return 0, false, nil
	}
	n, err = h.store.ReadAt(b[:min(end-off, int64(len(b)))], off)
	return n, true, err
}

// retarget records that r now wants the pieces of w, and sets the priority of every piece
// whose most urgent Reader changed.
func (h *readerHub) retarget(r *Reader, w window) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old, ok := h.readers[r]
	if ok && old == w {
		return
	}
	h.readers[r] = w
	h.update(old, w)
}

// remove forgets a closed Reader and gives its pieces back.
func (h *readerHub) remove(r *Reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.readers[r]
	delete(h.readers, r)
	h.update(old, window{})
}

// update sets the priorities of the pieces of old and w (one Reader's windows before and
// after) to what the Readers want of them now. Called with mu held.
func (h *readerHub) update(old, w window) {
	for piece := old.first; piece < old.high; piece++ {
		h.apply(piece)
	}
	for piece := w.first; piece < w.high; piece++ {
		if piece < old.first || piece >= old.high {
			h.apply(piece)
		}
	}
}

// apply sets piece to what the most urgent Reader wants of it, never below its base; a
// piece no Reader wants any more gets its base back.
func (h *readerHub) apply(piece int) {
	want := stages.PriorityNormal
	for _, w := range h.readers {
		want = max(want, w.level(piece))
	}
	c, ok := h.held[piece]
	switch {
	case want == stages.PriorityNormal && ok:
		delete(h.held, piece)
		h.setPriority(piece, c.base)
	case want == stages.PriorityNormal, ok && c.want == want:
	default:
		if !ok {
			c.base = stages.PriorityNormal
			if h.prio != nil {
				c.base = h.prio.Priority(piece)
			}
		}
		c.want = want
		h.held[piece] = c
		h.setPriority(piece, max(want, c.base))
	}
}

// setBase sets the priority piece has apart from the Readers (the files' choice): at once,
// or, while a Reader holds the piece, as what it returns to once they let it go.
func (h *readerHub) setBase(piece int, p stages.Priority) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.held[piece]; ok {
		c.base = p
		h.held[piece] = c
		h.setPriority(piece, max(c.want, p))
		return
	}
	h.setPriority(piece, p)
}

func (h *readerHub) setPriority(piece int, p stages.Priority) {
	if h.prio != nil {
		h.prio.SetPriority(piece, p)
	}
}

// The errors of a Torrent's Readers once no run comes any more.
var (
	errRemoved       = errors.New("pipeline: torrent removed")
	errSessionClosed = errors.New("pipeline: session closed")
)
