package stages

import (
	"container/list"
	"fmt"
	"sync"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// PieceCache serves the blocks we upload from whole pieces read from Storage, keeping the
// most recently used pieces up to a byte budget: peers request a piece's blocks one after
// another, so one disk read serves them all. Buffers are never recycled: a block handed out
// stays valid while it is being written, even after its piece is evicted. Safe for
// concurrent use.
type PieceCache struct {
	info  *metainfo.Info
	store Storage
	b     *CacheBudget

	// Guarded by b.mu.
	index  map[int]*list.Element
	closed bool
}

// CacheBudget is the byte budget of the PieceCaches made with it: together they keep the
// most recently used pieces of all of them up to one limit, as libtorrent's one cache
// per session, instead of a limit each (a Session of a thousand torrents would otherwise
// allow a thousand times the memory). Safe for concurrent use.
type CacheBudget struct {
	max int64

	mu   sync.Mutex // guards the fields below and the index of every cache of the budget
	size int64
	lru  *list.List // of *cached, most recent first
}

type cached struct {
	c     *PieceCache
	piece int
	data  []byte
}

// NewCacheBudget returns a budget of maxBytes for the pieces of the caches made with it.
func NewCacheBudget(maxBytes int64) *CacheBudget {
	return &CacheBudget{max: maxBytes, lru: list.New()}
}

// Size is the bytes of pieces the budget's caches hold now.
func (b *CacheBudget) Size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// NewPieceCache returns a cache over store that holds at most maxBytes of pieces.
func NewPieceCache(info *metainfo.Info, store Storage, maxBytes int64) *PieceCache {
	return NewSharedPieceCache(info, store, NewCacheBudget(maxBytes))
}

// NewSharedPieceCache returns a cache over store whose pieces count against b, together
// with those of b's other caches; the least recently used piece of any of them goes first.
func NewSharedPieceCache(info *metainfo.Info, store Storage, b *CacheBudget) *PieceCache {
	return &PieceCache{info: info, store: store, b: b, index: make(map[int]*list.Element)}
}

// Block returns the bytes [begin, begin+length) of piece. The caller must have checked
// that the piece is verified and the range lies inside it.
func (c *PieceCache) Block(piece, begin, length int) ([]byte, error) {
	data, err := c.piece(piece)
	if err != nil {
		return nil, err
	}
	return data[begin : begin+length : begin+length], nil
}

func (c *PieceCache) piece(i int) ([]byte, error) {
	b := c.b
	b.mu.Lock()
	if e, ok := c.index[i]; ok {
		b.lru.MoveToFront(e)
		data := e.Value.(*cached).data
		b.mu.Unlock()
		return data, nil
	}
	b.mu.Unlock()
	data := make([]byte, c.info.PieceSize(i))
	if _, err := c.store.ReadAt(data, c.info.PieceOffset(i)); err != nil {
		return nil, fmt.Errorf("reading piece %d: %w", i, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := c.index[i]; ok { // another session read it meanwhile
		return e.Value.(*cached).data, nil
	}
	if c.closed { // served, not kept
		return data, nil
	}
	c.index[i] = b.lru.PushFront(&cached{c: c, piece: i, data: data})
	b.size += int64(len(data))
	for b.size > b.max && b.lru.Len() > 1 {
		old := b.lru.Remove(b.lru.Back()).(*cached)
		delete(old.c.index, old.piece)
		b.size -= int64(len(old.data))
	}
	return data, nil
}

// Close gives the cache's pieces back to its budget, for the other caches of a shared
// one; blocks handed out stay valid. A closed cache still serves Block, reading each
// piece from the store and keeping none.
func (c *PieceCache) Close() {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	c.closed = true
	for _, e := range c.index {
		b.size -= int64(len(b.lru.Remove(e).(*cached).data))
	}
	clear(c.index)
}
