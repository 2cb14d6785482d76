package swarmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWritePayloadDeterministic(t *testing.T) {
	files := []FileSpec{
		{Path: "p/a.bin", Size: 3<<20 + 7}, // crosses 1 MiB chunks
		{Path: "p/d/e/small", Size: 100},
		{Path: "p/empty", Size: 0},
	}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := WritePayload(dir, 7, files); err != nil {
			t.Fatal(err)
		}
	}
	if err := WritePayload(c, 8, files); err != nil {
		t.Fatal(err)
	}
	if err := ComparePayload(a, b, files); err != nil {
		t.Errorf("same seed: %v", err)
	}
	err := ComparePayload(a, c, files)
	if err == nil {
		t.Fatal("different seeds gave equal payloads")
	}
	// Both non-empty files differ, the empty one cannot.
	if got := strings.Count(err.Error(), "sha256"); got != 2 {
		t.Errorf("different seeds: %d files differ, want 2: %v", got, err)
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(a, filepath.FromSlash(f.Path)))
		if err != nil || st.Size() != f.Size {
			t.Errorf("%s: stat = %v, %v; want size %d", f.Path, st, err, f.Size)
		}
	}
	if got, want := TotalSize(files), int64(3<<20+107); got != want {
		t.Errorf("TotalSize = %d, want %d", got, want)
	}
}

// A file's content depends on the seed and its own path only, so a prefix of
// a longer file equals the shorter one.
func TestWritePayloadContentDependsOnPathOnly(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := WritePayload(a, 1, []FileSpec{{"x/f", 1000}, {"x/g", 5000}}); err != nil {
		t.Fatal(err)
	}
	if err := WritePayload(b, 1, []FileSpec{{"x/g", 5000}}); err != nil {
		t.Fatal(err)
	}
	if err := ComparePayload(a, b, []FileSpec{{"x/g", 5000}}); err != nil {
		t.Error(err)
	}
	c := t.TempDir()
	if err := WritePayload(c, 1, []FileSpec{{"x/g", 2500}}); err != nil {
		t.Fatal(err)
	}
	long, _ := os.ReadFile(filepath.Join(a, "x", "g"))
	short, _ := os.ReadFile(filepath.Join(c, "x", "g"))
	if string(long[:2500]) != string(short) {
		t.Error("a shorter file is not a prefix of the longer one")
	}
}

func TestWritePayloadRejectsBadPaths(t *testing.T) {
	for _, p := range []string{"", "/abs", "../up", "a/../../up", "a//b", "a/./b", ".."} {
		t.Run(p, func(t *testing.T) {
			if err := WritePayload(t.TempDir(), 1, []FileSpec{{p, 1}}); err == nil {
				t.Errorf("WritePayload(%q) = nil, want error", p)
			}
		})
	}
	if err := WritePayload(t.TempDir(), 1, []FileSpec{{"neg", -1}}); err == nil {
		t.Error("negative size accepted")
	}
}

func TestComparePayloadReportsDifferences(t *testing.T) {
	files := []FileSpec{{"a", 10}, {"b", 10}, {"c", 10}}
	want, got := t.TempDir(), t.TempDir()
	if err := WritePayload(want, 3, files); err != nil {
		t.Fatal(err)
	}
	if err := WritePayload(got, 3, files[:2]); err != nil {
		t.Fatal(err)
	}
	// b: same size, one byte flipped. c: missing.
	name := filepath.Join(got, "b")
	data, _ := os.ReadFile(name)
	data[9] ^= 1
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err := ComparePayload(want, got, files)
	if err == nil {
		t.Fatal("ComparePayload = nil, want errors for b and c")
	}
	for _, s := range []string{"b: sha256", "c: "} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("ComparePayload error %q lacks %q", err, s)
		}
	}
	if strings.Contains(err.Error(), "a: ") {
		t.Errorf("ComparePayload error %q names the equal file a", err)
	}
}
