package storage

import (
	"errors"
	"os"
	"syscall"
)

// lseek(2) whences that find the data and the holes of a sparse file.
const (
	seekData = 3
	seekHole = 4
)

// nextData returns the first run of data of f in [at, end): [from, to), with from = end
// when there is none. A file system without SEEK_DATA has the whole range be data.
func nextData(f *os.File, at, end int64) (from, to int64, err error) {
	from, err = f.Seek(at, seekData)
	if errors.Is(err, syscall.ENXIO) { // no data after at
		return end, end, nil
	}
	if errors.Is(err, syscall.EINVAL) {
		return at, end, nil
	}
	if err != nil || from >= end {
		return min(from, end), end, err
	}
	to, err = f.Seek(from, seekHole)
	if err != nil {
		return from, end, nil
	}
	return from, min(to, end), nil
}

// punchHole frees the room of [off, off+n) in f, which then reads as zeros; where the file
// system cannot, the bytes stay, unused.
func punchHole(f *os.File, off, n int64) {
	const fallocPunchHole, fallocKeepSize = 0x02, 0x01
	syscall.Fallocate(int(f.Fd()), fallocPunchHole|fallocKeepSize, off, n)
}
