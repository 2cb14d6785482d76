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
	max   int64

	mu    sync.Mutex
	size  int64
	lru   *list.List // of *cached, most recent first
	index map[int]*list.Element
}

type cached struct {
	piece int
	data  []byte
}

// NewPieceCache returns a cache over store that holds at most maxBytes of pieces.
func NewPieceCache(info *metainfo.Info, store Storage, maxBytes int64) *PieceCache {
	return &PieceCache{info: info, store: store, max: maxBytes, lru: list.New(), index: make(map[int]*list.Element)}
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
	c.mu.Lock()
	if e, ok := c.index[i]; ok {
		c.lru.MoveToFront(e)
		data := e.Value.(*cached).data
		c.mu.Unlock()
		return data, nil
	}
	c.mu.Unlock()
	data := make([]byte, c.info.PieceSize(i))
	if _, err := c.store.ReadAt(data, c.info.PieceOffset(i)); err != nil {
		return nil, fmt.Errorf("reading piece %d: %w", i, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[i]; ok { // another session read it meanwhile
		return e.Value.(*cached).data, nil
	}
	c.index[i] = c.lru.PushFront(&cached{piece: i, data: data})
	c.size += int64(len(data))
	for c.size > c.max && c.lru.Len() > 1 {
		old := c.lru.Remove(c.lru.Back()).(*cached)
		delete(c.index, old.piece)
		c.size -= int64(len(old.data))
	}
	return data, nil
}
