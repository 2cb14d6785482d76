package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: Write creates the directory, replaces the file whole, and leaves no
// temporary file behind; a failed Write (its directory is a file) leaves the old file.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	for _, data := range []string{"first", "second, longer"} {
		if err := Write(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != data {
			t.Fatalf("ReadFile = %q, %v; want %q", got, err, data)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if IsTemp(e.Name()) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if !IsTemp(TempPrefix(path)+"123") || IsTemp("state.json") {
		t.Error("IsTemp does not tell Write's temporary files from others")
	}
	if err := Write(filepath.Join(path, "under-a-file"), []byte("x")); err == nil {
		t.Error("Write under a file = nil error")
	}
	if got, _ := os.ReadFile(path); string(got) != "second, longer" {
		t.Errorf("after a failed Write the file holds %q", got)
	}
}
