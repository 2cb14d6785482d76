package resume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSelectionRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := SelectionPath(dir, hash1)
	if _, err := LoadSelection(path, 3); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadSelection(none) = %v, want fs.ErrNotExist", err)
	}
	for _, sel := range []*Selection{
		{Priorities: []int8{0, -1, 1}},
		{Chosen: []int8{-1, 0, -1}, Priorities: []int8{0, 0, -1}},
		{Priorities: []int8{-2, 0, -1}}, // low
	} {
		if err := SaveSelection(path, sel); err != nil {
			t.Fatal(err)
		}
		got, err := LoadSelection(path, 3)
		if err != nil || !slices.Equal(got.Chosen, sel.Chosen) || !slices.Equal(got.Priorities, sel.Priorities) {
			t.Fatalf("LoadSelection = %+v, %v; want %+v", got, err, sel)
		}
	}
	for name, data := range map[string]string{
		"not JSON":      "{",
		"other version": `{"version":2,"priorities":[0,0,0]}`,
		"too few files": `{"version":1,"priorities":[0,0]}`,
		"bad priority":  `{"version":1,"priorities":[0,2,0]}`,
		"below low":     `{"version":1,"priorities":[0,-3,0]}`,
		"bad chosen":    `{"version":1,"chosen":[0],"priorities":[0,0,0]}`,
		"no priorities": `{"version":1}`,
		"far too large": `{"version":1,"priorities":[` + string(make([]byte, 1000)) + `]}`,
	} {
		os.WriteFile(path, []byte(data), 0o644)
		if _, err := LoadSelection(path, 3); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: LoadSelection = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestRecordPartStamp: the record keeps the part file's stamp; a record without one
// (older, or no part file) matches only the absence of a part file.
func TestRecordPartStamp(t *testing.T) {
	info, _ := newInfo(t, 3, "p", 1<<10, 3000)
	dir := t.TempDir()
	part := PartPath(dir, hash1)
	if st, err := StampPart(part); st != nil || err != nil {
		t.Fatalf("StampPart(none) = %v, %v; want nil, nil", st, err)
	}
	os.MkdirAll(filepath.Dir(part), 0o755)
	os.WriteFile(part, []byte("abc"), 0o644)
	st, err := StampPart(part)
	if err != nil || st == nil || st.Size != 3 {
		t.Fatalf("StampPart = %v, %v", st, err)
	}
	rec := sampleRecord(info)
	rec.Part = st
	path := Path(dir, hash1)
	if err := Save(path, rec); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, info, hash1)
	if err != nil {
		t.Fatal(err)
	}
	if !got.PartMatches(st) || got.PartMatches(nil) {
		t.Fatalf("loaded record's part %+v: matches the stamp %v, nil %v; want true, false", got.Part, got.PartMatches(st), got.PartMatches(nil))
	}
	later := &FileStamp{Size: 3, ModTime: st.ModTime.Add(time.Second)}
	if got.PartMatches(later) {
		t.Error("record matches a part file modified since")
	}
	rec.Part = nil
	Save(path, rec)
	if got, _ := Load(path, info, hash1); got.Part != nil || !got.PartMatches(nil) || got.PartMatches(st) {
		t.Errorf("record without a part file: Part %v", got.Part)
	}
}

// TestReaderUsePart: a missing file's bytes come from the part file, zeros past its end.
func TestReaderUsePart(t *testing.T) {
	info, data := newInfo(t, 4, "r", 1<<10, 1500, 2000, 900)
	dir := t.TempDir()
	writeFiles(t, dir, info, data)
	os.Remove(filepath.Join(dir, "r", "f0.bin"))
	os.Remove(filepath.Join(dir, "r", "f2.bin"))
	part := PartPath(dir, hash1)
	os.MkdirAll(filepath.Dir(part), 0o755)
	// The part file holds file 0 whole and the first 100 bytes of file 2 (the piece file 1
	// ends in), at their offsets in the torrent.
	pb := make([]byte, 3500+100)
	copy(pb, data[:1500])
	copy(pb[3500:], data[3500:3600])
	os.WriteFile(part, pb, 0o644)
	r, err := OpenReader(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.UsePart(part); err != nil {
		t.Fatal(err)
	}
	have, err := Recheck(context.Background(), info, r, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Pieces of 1 KiB: 0 in file 0, 1 across files 0 and 1, 2 in file 1, 3 across files 1
	// and 2 (whose bytes past 3600 the part file lacks), 4 in file 2.
	for i, want := range []bool{true, true, true, false, false} {
		if have.Has(i) != want {
			t.Errorf("piece %d had = %v, want %v", i, have.Has(i), want)
		}
	}
	if !r.Missing(0) || r.Missing(1) {
		t.Errorf("Missing(0), Missing(1) = %v, %v; want true, false", r.Missing(0), r.Missing(1))
	}
}
