package resume

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// A selective download keeps two things beside its resume record: the file selection
// (SelectionPath), so that a run without one goes on with the last, and the part file
// (PartPath), which holds the bytes of files not selected that pieces shared with
// selected ones carry (internal/storage). The record stamps the part file as it stamps
// the files: a part file changed behind its back makes the data be rechecked.

// SelectionPath returns where the file selection of the torrent with infoHash downloading
// into outDir is kept: <outDir>/.bitstorm/<hex info hash>.select.
func SelectionPath(outDir string, infoHash [20]byte) string {
	return filepath.Join(outDir, ".bitstorm", hex.EncodeToString(infoHash[:])+".select")
}

// PartPath returns the part file of the torrent with infoHash downloading into outDir:
// <outDir>/.bitstorm/<hex info hash>.parts.
func PartPath(outDir string, infoHash [20]byte) string {
	return filepath.Join(outDir, ".bitstorm", hex.EncodeToString(infoHash[:])+".parts")
}

// Selection is the priority of each file of a torrent (-1 skip, -2 low, 0 normal, 1 high), in
// the order of info.Files.
type Selection struct {
	// Chosen is the selection as the run's options made it (a command line's --select),
	// nil when they made none. A later run whose options choose the same goes on with
	// Priorities; one that chooses otherwise applies its own choice.
	Chosen []int8
	// Priorities are the priorities as they are now, later changes included.
	Priorities []int8
}

type selectionJSON struct {
	Version    int    `json:"version"`
	Chosen     []int8 `json:"chosen,omitempty"`
	Priorities []int8 `json:"priorities"`
}

// SaveSelection writes sel to path atomically.
func SaveSelection(path string, sel *Selection) error {
	data, err := json.Marshal(selectionJSON{Version: Version, Chosen: sel.Chosen, Priorities: sel.Priorities})
	if err != nil {
		return fmt.Errorf("resume: save selection: %w", err)
	}
	if err := saveFile(path, append(data, '\n')); err != nil {
		return fmt.Errorf("resume: save selection: %w", err)
	}
	return nil
}

// LoadSelection reads the selection at path, for a torrent of numFiles files. The error
// wraps fs.ErrNotExist when there is none, ErrCorrupt when it does not fit the torrent.
func LoadSelection(path string, numFiles int) (*Selection, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	defer f.Close()
	limit := int64(256 + 2*4*numFiles)
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("resume: %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("resume: %s: %w: larger than %d bytes", path, ErrCorrupt, limit)
	}
	var s selectionJSON
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("resume: %s: %w: %w", path, ErrCorrupt, err)
	}
	if s.Version != Version {
		return nil, fmt.Errorf("resume: %s: %w: version %d, want %d", path, ErrCorrupt, s.Version, Version)
	}
	if err := checkPriorities(s.Priorities, numFiles); err != nil {
		return nil, fmt.Errorf("resume: %s: %w: priorities: %w", path, ErrCorrupt, err)
	}
	if s.Chosen != nil {
		if err := checkPriorities(s.Chosen, numFiles); err != nil {
			return nil, fmt.Errorf("resume: %s: %w: chosen: %w", path, ErrCorrupt, err)
		}
	}
	return &Selection{Chosen: s.Chosen, Priorities: s.Priorities}, nil
}

func checkPriorities(l []int8, numFiles int) error {
	if len(l) != numFiles {
		return fmt.Errorf("%d files, want %d", len(l), numFiles)
	}
	for i, p := range l {
		if p < -2 || p > 1 {
			return fmt.Errorf("file %d: priority %d", i, p)
		}
	}
	return nil
}

// StampPart returns the stamp of the part file at path, nil when there is none.
func StampPart(path string) (*FileStamp, error) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("resume: stamp: %w", err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("resume: stamp: %s: not a regular file", path)
	}
	return &FileStamp{Size: st.Size(), ModTime: st.ModTime()}, nil
}

// PartMatches reports whether the part file's stamp, taken now (nil: there is none), is
// the one r was saved with.
func (r *Record) PartMatches(st *FileStamp) bool {
	if r.Part == nil || st == nil {
		return r.Part == nil && st == nil
	}
	return r.Part.Size == st.Size && r.Part.ModTime.Equal(st.ModTime)
}

// UsePart has the reads of files that are missing go to the part file at path instead,
// when it exists: a selective download keeps there the bytes of unselected files that
// pieces shared with selected ones hold. Where it holds nothing, it reads as zeros.
func (r *Reader) UsePart(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	r.part = f
	return nil
}

// readPart reads the torrent's bytes at off from the part file: zeros past its end.
func (r *Reader) readPart(p []byte, off int64) (int, error) {
	n, err := r.part.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		clear(p[n:])
		return len(p), nil
	}
	return n, err
}
