package resume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bitstorm/bitstorm/internal/metainfo"
)

// Stamp returns the size and modification time of every file of info below outDir, in
// the order of info.Files; a file that does not exist gets Size -1, and so do padding and
// symlinks (BEP 47), which hold no data on disk.
func Stamp(outDir string, info *metainfo.Info) ([]FileStamp, error) {
	stamps := make([]FileStamp, len(info.Files))
	for i, f := range info.Files {
		if !f.OnDisk() {
			stamps[i] = FileStamp{Size: -1}
			continue
		}
		name := filepath.Join(append([]string{outDir}, f.Path...)...)
		st, err := os.Stat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			stamps[i] = FileStamp{Size: -1}
			continue
		case err != nil:
			return nil, fmt.Errorf("resume: stamp: %w", err)
		case !st.Mode().IsRegular():
			return nil, fmt.Errorf("resume: stamp: %s: not a regular file", name)
		}
		stamps[i] = FileStamp{Size: st.Size(), ModTime: st.ModTime()}
	}
	return stamps, nil
}

// Matches reports whether stamps, taken now, are those r was saved with: as many files,
// each with the same size and modification time. Only then are r's pieces still on disk.
func (r *Record) Matches(stamps []FileStamp) bool {
	if len(stamps) != len(r.Files) {
		return false
	}
	for i, s := range stamps {
		if s.Size != r.Files[i].Size || !s.ModTime.Equal(r.Files[i].ModTime) {
			return false
		}
	}
	return true
}
