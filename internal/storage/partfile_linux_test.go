package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func diskUsage(st os.FileInfo) int64 { return st.Sys().(*syscall.Stat_t).Blocks * 512 }

// TestPartFileSparse: the part file takes room only for what was written to it.
func TestPartFileSparse(t *testing.T) {
	info := layout("t", 64<<20, 4096, 64<<20)
	dir := t.TempDir()
	part := filepath.Join(dir, ".bitstorm", "x.parts")
	s := openSelected(t, dir, info, part, 1)
	// A piece of 64 KiB around file 1: its ends fall in files 0 and 2.
	off := int64(64<<20) - 30_000
	if _, err := s.WriteAt(payload(3, 64<<10), off); err != nil {
		t.Fatal(err)
	}
	s.Sync()
	st, err := os.Stat(part)
	if err != nil {
		t.Fatal(err)
	}
	if used := diskUsage(st); used > 1<<20 {
		t.Errorf("part file of apparent size %d uses %d bytes on disk, want about 60 KiB", st.Size(), used)
	}
	if err := s.Want(2); err != nil {
		t.Fatal(err)
	}
	b, _ := fileBytes(t, dir, info.Files[2])
	want := payload(3, 64<<10)[30_000+4096:]
	if !bytes.Equal(b[:len(want)], want) || !bytes.Equal(b[len(want):len(want)+100], make([]byte, 100)) {
		t.Error("file 2 did not get its bytes from the part file")
	}
}
