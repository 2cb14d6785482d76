package pipeline_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/pipeline"
	"github.com/bitstorm/bitstorm/stages/stagetest"
)

// discard is Storage that keeps nothing: the benchmark measures the graph, not the disk.
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
func (discard) ReadAt(p []byte, off int64) (int, error)  { return len(p), nil }
func (discard) Close() error                             { return nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDownload runs the whole graph against in-process honest peers on loopback. The
// fake peers run in the same process, so CPU-s/GiB counts both sides: it is a figure to
// compare changes by, not the client's cost (make bench measures that against libtorrent).
func BenchmarkDownload(b *testing.B) {
	tor := stagetest.NewTorrent(b, 30, "bench", 256<<10, 64<<20)
	var peers []*stagetest.FakePeer
	for range 4 {
		peers = append(peers, stagetest.NewFakePeer(b, tor, stagetest.Honest))
	}
	b.SetBytes(tor.Meta.Info.Length)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		p, err := pipeline.New(tor.Meta, pipeline.WithPeerSource(addrs(peers...)), pipeline.WithStorage(discard{}),
			withConfig(pipeline.Config{}))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := p.Run(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	gib := float64(b.N) * float64(tor.Meta.Info.Length) / (1 << 30)
	b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "CPU-s/GiB")
}
