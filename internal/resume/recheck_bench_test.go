//go:build unix

package resume

import (
	"bytes"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRecheck hashes a generated 64 MiB torrent held in memory, so it measures
// Recheck itself (copying each piece out, hashing, collecting) without the disk.
// MB/s is the recheck rate; CPU-s/GiB is the CPU time spent per GiB checked.
func BenchmarkRecheck(b *testing.B) {
	const size = 64 << 20
	for _, pieceLen := range []int64{256 << 10, 4 << 20} {
		info, data := newInfo(b, 6, "bench", pieceLen, size/2, size/2)
		for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("piece=%dKiB/workers=%d", pieceLen>>10, workers), func(b *testing.B) {
				r := bytes.NewReader(data)
				b.SetBytes(size)
				cpu0 := cpuTime()
				for b.Loop() {
					have, err := Recheck(b.Context(), info, r, workers, nil)
					if err != nil || have.Count() != info.NumPieces() {
						b.Fatalf("Recheck = %d of %d pieces, %v", have.Count(), info.NumPieces(), err)
					}
				}
				gib := float64(b.N) * size / (1 << 30)
				b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "CPU-s/GiB")
				b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
			})
		}
	}
}

// BenchmarkRecheckFiles rechecks the same payload as files on disk through a Reader, in
// the page cache after the first pass: what a restart costs when the data is hot.
func BenchmarkRecheckFiles(b *testing.B) {
	const size = 64 << 20
	info, data := newInfo(b, 6, "bench", 256<<10, size/4, size/2, size/4)
	dir := b.TempDir()
	writeFiles(b, dir, info, data)
	r, err := OpenReader(dir, info)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	workers := runtime.GOMAXPROCS(0)
	b.SetBytes(size)
	cpu0 := cpuTime()
	for b.Loop() {
		have, err := Recheck(b.Context(), info, r, workers, nil)
		if err != nil || have.Count() != info.NumPieces() {
			b.Fatalf("Recheck = %d of %d pieces, %v", have.Count(), info.NumPieces(), err)
		}
	}
	gib := float64(b.N) * size / (1 << 30)
	b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "CPU-s/GiB")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMiB is the process's peak resident set, the generated payload included.
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}
