package stagetest

import (
	"fmt"
	"sync"

	"github.com/bitstorm/bitstorm/stages"
)

// MemStorage is a stages.Storage in memory.
type MemStorage struct {
	mu     sync.Mutex
	data   []byte
	closed bool
}

var _ stages.Storage = (*MemStorage)(nil)

// NewMemStorage returns storage for size bytes.
func NewMemStorage(size int64) *MemStorage { return &MemStorage{data: make([]byte, size)} }

// WriteAt copies p at off.
func (m *MemStorage) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return 0, fmt.Errorf("memstorage: write [%d, %d) out of range", off, off+int64(len(p)))
	}
	return copy(m.data[off:], p), nil
}

// ReadAt copies into p from off.
func (m *MemStorage) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return 0, fmt.Errorf("memstorage: read [%d, %d) out of range", off, off+int64(len(p)))
	}
	return copy(p, m.data[off:]), nil
}

// Close marks the storage closed.
func (m *MemStorage) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Bytes returns a copy of the contents.
func (m *MemStorage) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data...)
}

// Closed reports whether Close was called.
func (m *MemStorage) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}
