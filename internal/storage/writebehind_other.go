//go:build !linux

package storage

import "os"

// writeBehind is Linux-only (sync_file_range); elsewhere the page cache does as it likes.
type writeBehind struct{}

func newWriteBehind(int64) *writeBehind             { return nil }
func (w *writeBehind) wrote(*os.File, int64, int64) {}
func (w *writeBehind) forget()                      {}
