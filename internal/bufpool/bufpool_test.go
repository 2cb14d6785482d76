package bufpool

import "testing"

func TestPoolRecyclesAndBounds(t *testing.T) {
	p := New(16, 1)
	a := p.Get()
	if len(a) != 16 {
		t.Fatalf("Get() len = %d, want 16", len(a))
	}
	a[0] = 7
	p.Put(a[:3]) // a shortened slice keeps its capacity and is restored to full length
	b := p.Get()
	if &b[0] != &a[0] || len(b) != 16 {
		t.Fatalf("Get() after Put did not recycle the buffer at full length")
	}
	p.Put(b)
	p.Put(make([]byte, 16)) // over capacity: dropped
	p.Put(make([]byte, 8))  // wrong size: dropped
	if n := len(p.free); n != 1 {
		t.Fatalf("free list holds %d buffers, want 1", n)
	}
}

func BenchmarkGetPut(b *testing.B) {
	p := New(16<<10, 4)
	b.ReportAllocs()
	for b.Loop() {
		p.Put(p.Get())
	}
}
