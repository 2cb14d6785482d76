//go:build !linux

package storage

import "os"

// nextData returns [at, end): without SEEK_DATA, the whole range is taken as data (runs
// of zeros are skipped as they are read).
func nextData(f *os.File, at, end int64) (from, to int64, err error) { return at, end, nil }

// punchHole does nothing: the bytes stay in the part file, unused.
func punchHole(*os.File, int64, int64) {}
