package metainfo

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// A hybrid torrent (BEP 52) describes its files twice: as a v1 "files" list, with
// padding files that start every file on a piece boundary, and as a v2 "file tree", where
// that alignment is implied. BitStorm joins the v1 swarm, so it downloads by the v1 list;
// but a v1 peer and a v2 peer must see the same files at the same offsets, or the torrent
// is two torrents under one name. checkHybrid refuses a hybrid whose two descriptions
// disagree, as libtorrent does (aux::files_compatible).

// maxTreeDepth bounds the directory depth of a "file tree", as libtorrent does.
const maxTreeDepth = 100

// checkHybrid compares info's v1 file layout with the "file tree" of d, its info
// dictionary with "meta version" 2.
func checkHybrid(info *Info, d map[string]any) error {
	v, ok := d["file tree"]
	if !ok {
		return errors.New(`metainfo: info.file tree: missing, though "meta version" is 2 (BEP 52)`)
	}
	tree, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("metainfo: info.file tree: want a dictionary, got %s", bencode.TypeName(v))
	}
	t := &treeWalk{targets: make(map[int][]string)}
	if err := t.walk(tree, nil, 0); err != nil {
		return err
	}
	// A single-file v1 torrent matches a tree of one file, which is named by its key.
	single := !info.MultiFile && len(t.files) == 1 && len(t.files[0].Path) == 1
	for i := range t.files {
		if !single {
			t.files[i].Path = slices.Concat([]string{info.Name}, t.files[i].Path)
		}
	}
	resolveSymlinks(t.files, t.targets)

	// Every v2 file of some data starts on a piece boundary: the padding v1 lists. The
	// v1 list may pad its last file too (libtorrent's hybrids do), or not.
	var off int64
	for i := range t.files {
		f := &t.files[i]
		if r := off % info.PieceLength; f.Length > 0 && r != 0 {
			off += info.PieceLength - r
		}
		f.Offset = off
		off += f.Length
	}
	if padded := (off + info.PieceLength - 1) / info.PieceLength * info.PieceLength; info.Length != off && info.Length != padded {
		return fmt.Errorf("metainfo: info.file tree: does not match info.files (BEP 52 hybrid): "+
			"%d bytes of files and padding, info.files has %d", off, info.Length)
	}
	v1 := slices.DeleteFunc(slices.Clone(info.Files), func(f File) bool { return !matters(&f) })
	v2 := slices.DeleteFunc(t.files, func(f File) bool { return !matters(&f) })
	for k := range max(len(v1), len(v2)) {
		if k >= len(v1) || k >= len(v2) || !sameFile(&v1[k], &v2[k]) {
			return fmt.Errorf("metainfo: info.file tree: does not match info.files (BEP 52 hybrid): %s, file tree has %s",
				describe(v1, k), describe(v2, k))
		}
	}
	return nil
}

// matters reports whether f must be the same in both descriptions of a hybrid: its data,
// or a symlink's target (attributes other than padding and symlink may differ).
func matters(f *File) bool { return !f.IsPad() && (f.Length > 0 || f.IsSymlink()) }

// sameFile compares two files that matter. A symlink has no bytes, so where it sits in the
// byte space (before or after the padding that aligns the next file) does not matter.
func sameFile(a, b *File) bool {
	return slices.Equal(a.Path, b.Path) && a.Length == b.Length && (a.Length == 0 || a.Offset == b.Offset) &&
		a.IsSymlink() == b.IsSymlink() && slices.Equal(a.SymlinkPath, b.SymlinkPath)
}

func describe(files []File, k int) string {
	if k >= len(files) {
		return "nothing more"
	}
	f := &files[k]
	if f.IsSymlink() {
		return fmt.Sprintf("%q -> %q", strings.Join(f.Path, "/"), strings.Join(f.SymlinkPath, "/"))
	}
	return fmt.Sprintf("%q (%d bytes at %d)", strings.Join(f.Path, "/"), f.Length, f.Offset)
}

// treeWalk collects the files of a v2 "file tree" in order, with paths relative to the
// torrent's root and symlink targets by file index.
type treeWalk struct {
	files   []File
	targets map[int][]string
}

// walk reads the directory dir (cleaned components) of the tree, whose node is node.
// BEP 52: a file is a dictionary whose only key is "", holding its "length".
func (t *treeWalk) walk(node map[string]any, dir []string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("metainfo: info.file tree: %q: deeper than %d directories", strings.Join(dir, "/"), maxTreeDepth)
	}
	keys := make([]string, 0, len(node))
	for k := range node {
		keys = append(keys, k)
	}
	sort.Strings(keys) // bencoded keys are sorted: the tree's order
	for _, k := range keys {
		at := strings.Join(append(slices.Clip(dir), k), "/")
		child, ok := node[k].(map[string]any)
		if !ok {
			return fmt.Errorf("metainfo: info.file tree: %q: want a dictionary, got %s", at, bencode.TypeName(node[k]))
		}
		name, err := cleanComponent(k)
		if err != nil {
			return fmt.Errorf("metainfo: info.file tree: %q: %w", at, err)
		}
		path := append(slices.Clip(dir), name)
		leaf, isFile := child[""]
		if !isFile {
			if err := t.walk(child, path, depth+1); err != nil {
				return err
			}
			continue
		}
		fd, ok := leaf.(map[string]any)
		if len(child) != 1 || !ok {
			return fmt.Errorf(`metainfo: info.file tree: %q: a file is a dictionary under the key "" alone`, at)
		}
		f := File{Path: path, Attr: attrOf(fd)}
		if f.IsPad() {
			return fmt.Errorf("metainfo: info.file tree: %q: padding is implied in a file tree, never listed", at)
		}
		if sp, ok := fd["symlink path"].([]any); ok && f.IsSymlink() {
			target, err := parseComponents(sp, fmt.Sprintf("info.file tree: %q: symlink path", at))
			if err != nil {
				return err
			}
			t.targets[len(t.files)] = target
		} else {
			f.Attr &^= AttrSymlink
			n, ok := fd["length"].(int64)
			if !ok || n < 0 {
				return fmt.Errorf("metainfo: info.file tree: %q: length: want an integer >= 0", at)
			}
			f.Length = n
		}
		t.files = append(t.files, f)
	}
	return nil
}
