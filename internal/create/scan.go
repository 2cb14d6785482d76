package create

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// content is what a torrent shares: its name and files, in torrent order.
type content struct {
	name  string
	multi bool
	files []file
	total int64
}

// file is one regular file of the torrent.
type file struct {
	osPath string   // where to read it, through the symlinks that led to it
	path   []string // components below the directory; nil for a single-file torrent
	key    string   // path joined with '/': the sort key
	length int64
}

// scan lists what path holds, following the rules documented on Build.
func scan(ctx context.Context, path string) (*content, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	fi, err := os.Stat(abs) // follows a symlink, as mktorrent does
	if err != nil {
		return nil, fmt.Errorf("create: %w", err) // *PathError names the path
	}
	c := &content{name: filepath.Base(abs)}
	if err := checkName(c.name); err != nil {
		return nil, fmt.Errorf("create: %s: %w", path, err)
	}
	switch {
	case fi.Mode().IsRegular():
		c.files = []file{{osPath: abs, length: fi.Size()}}
		c.total = fi.Size()
		return c, nil
	case !fi.IsDir():
		return nil, fmt.Errorf("create: %s: not a regular file or a directory (%s)", path, fi.Mode().Type())
	}
	c.multi = true
	if err := walk(ctx, c, abs, nil, []os.FileInfo{fi}); err != nil {
		return nil, err
	}
	// mktorrent sorts by the whole path with strcmp, so "a-b" and "a.txt" come before
	// "a/x", unlike a walk that finishes each directory before the next name.
	slices.SortFunc(c.files, func(a, b file) int { return strings.Compare(a.key, b.key) })
	return c, nil
}

// walk appends the regular files below dir, whose path below the root is rel, to c.
// ancestors are dir and the directories above it, to detect symlink loops.
func walk(ctx context.Context, c *content, dir string, rel []string, ancestors []os.FileInfo) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	for _, e := range entries {
		osPath := filepath.Join(dir, e.Name())
		fi, err := os.Stat(osPath) // follows symlinks; fails on a dangling one
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			continue // a FIFO, socket or device: mktorrent skips them too
		}
		if err := checkName(e.Name()); err != nil {
			return fmt.Errorf("create: %s: %w", osPath, err)
		}
		path := append(slices.Clip(rel), e.Name())
		if fi.Mode().IsRegular() {
			c.files = append(c.files, file{osPath: osPath, path: path, key: strings.Join(path, "/"), length: fi.Size()})
			c.total += fi.Size()
			continue
		}
		if slices.ContainsFunc(ancestors, func(a os.FileInfo) bool { return os.SameFile(a, fi) }) {
			return fmt.Errorf("create: %s: symbolic link loop: leads to a directory that contains it", osPath)
		}
		if err := walk(ctx, c, osPath, path, append(slices.Clip(ancestors), fi)); err != nil {
			return err
		}
	}
	return nil
}

// checkName rejects a file name BitStorm's metainfo would reject in a torrent. On Unix
// only '\\' can occur: names never hold '/' or NUL, and ReadDir returns no "." or "..".
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || name == string(filepath.Separator) {
		return fmt.Errorf("%q cannot name a torrent or a file in it", name)
	}
	if i := strings.IndexAny(name, "/\\\x00"); i >= 0 {
		return fmt.Errorf("name contains %q, which torrent paths do not allow", name[i])
	}
	return nil
}
