package swarmtest

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// FileSpec is one file of a generated payload.
type FileSpec struct {
	// Path is slash-separated and relative to the payload directory; its
	// first element is the torrent's name for a multi-file torrent.
	Path string
	// Size is the length in bytes.
	Size int64
}

// TotalSize returns the sum of the sizes.
func TotalSize(files []FileSpec) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

const chunkSize = 1 << 20

// WritePayload creates each file under dir with pseudo-random content that
// depends only on seed and the file's path (ChaCha8), writing 1 MiB at a
// time. Parent directories are created as needed.
func WritePayload(dir string, seed int64, files []FileSpec) error {
	buf := make([]byte, chunkSize)
	for _, f := range files {
		if err := writeFile(dir, seed, f, buf); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir string, seed int64, f FileSpec, buf []byte) (err error) {
	name, err := localPath(dir, f.Path)
	if err != nil {
		return err
	}
	if f.Size < 0 {
		return fmt.Errorf("swarmtest: payload %q: negative size", f.Path)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("swarmtest: payload: %w", err)
	}
	out, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("swarmtest: payload: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("swarmtest: payload: %w", cerr)
		}
	}()
	if _, err := io.CopyBuffer(out, io.LimitReader(payloadStream(seed, f.Path), f.Size), buf); err != nil {
		return fmt.Errorf("swarmtest: payload %q: %w", f.Path, err)
	}
	return nil
}

// payloadStream is the endless content of the file at p.
func payloadStream(seed int64, p string) io.Reader {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(p))
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return rand.NewChaCha8(key)
}

// localPath joins dir and the slash-separated relative path p, refusing paths
// that would leave dir.
func localPath(dir, p string) (string, error) {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("swarmtest: payload path %q: must be clean and relative", p)
	}
	return filepath.Join(dir, filepath.FromSlash(p)), nil
}

// SHA256File returns the hex SHA-256 of the file's content.
func SHA256File(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, bufio.NewReaderSize(f, chunkSize)); err != nil {
		return "", fmt.Errorf("swarmtest: sha256 %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ComparePayload checks that every file in files has the same size and
// SHA-256 under got as under want. The error lists every file that differs.
func ComparePayload(want, got string, files []FileSpec) error {
	var errs []error
	for _, f := range files {
		if err := compareFile(want, got, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func compareFile(want, got string, f FileSpec) error {
	wantName, err := localPath(want, f.Path)
	if err != nil {
		return err
	}
	gotName, _ := localPath(got, f.Path)
	st, err := os.Stat(gotName)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if st.Size() != f.Size {
		return fmt.Errorf("%s: size %d, want %d", f.Path, st.Size(), f.Size)
	}
	w, err := SHA256File(wantName)
	if err != nil {
		return fmt.Errorf("%s: payload: %w", f.Path, err)
	}
	g, err := SHA256File(gotName)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if g != w {
		return fmt.Errorf("%s: sha256 %s, want %s", f.Path, g, w)
	}
	return nil
}
