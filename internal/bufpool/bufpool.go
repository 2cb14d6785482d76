// Package bufpool recycles fixed-size byte buffers through a bounded free list.
//
// Unlike sync.Pool, a Pool keeps what it holds across garbage collections and never
// holds more than its capacity, so the memory a download keeps is what is in flight
// plus at most the free list: peak RSS follows the work, not the GC's timing.
package bufpool

// Pool hands out buffers of one size. It is safe for concurrent use.
type Pool struct {
	size int
	free chan []byte
}

// New returns a pool of buffers of size bytes that keeps at most keep idle buffers.
func New(size, keep int) *Pool {
	return &Pool{size: size, free: make(chan []byte, keep)}
}

// Size is the length of the buffers the pool hands out.
func (p *Pool) Size() int { return p.size }

// Get returns a buffer of length Size, recycled when one is idle. Its contents are undefined.
func (p *Pool) Get() []byte {
	select {
	case b := <-p.free:
		return b[:p.size]
	default:
		return make([]byte, p.size)
	}
}

// Put returns b to the pool. Buffers of another capacity are dropped, as are buffers
// beyond the pool's capacity. The caller must not use b afterwards.
func (p *Pool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	select {
	case p.free <- b[:p.size]:
	default:
	}
}
