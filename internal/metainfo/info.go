package metainfo

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// ErrV2Only is returned for a BitTorrent v2 torrent (BEP 52) that v1 peers cannot
// download: it has a "file tree" but no v1 "pieces". Hybrid torrents, which have both,
// are downloaded from v1 peers.
var ErrV2Only = errors.New("BitTorrent v2-only torrents are not supported yet")

// parseInfo validates the decoded info dictionary (BEP 3) and lays out its files.
func parseInfo(d map[string]any) (*Info, error) {
	info := &Info{}

	// Like libtorrent, prefer "name.utf-8" (and "path.utf-8"): old clients wrote "name"
	// in the creator's code page and the UTF-8 form beside it.
	key := "name"
	if _, ok := d["name.utf-8"].(string); ok {
		key = "name.utf-8"
	}
	name, ok, err := optString(d, key, "info."+key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("metainfo: info.name: missing")
	}
	if info.Name, err = cleanComponent(name); err != nil {
		return nil, fmt.Errorf("metainfo: info.%s: %w", key, err)
	}

	// BEP 52: "meta version" 2 marks a v2 torrent; with "pieces" too it is a hybrid.
	metaVersion, _ := d["meta version"].(int64)
	if metaVersion > 2 {
		return nil, fmt.Errorf("metainfo: info.meta version: %d is unknown", metaVersion)
	}
	if _, tree := d["file tree"]; metaVersion == 2 || tree {
		if _, v1 := d["pieces"]; !v1 {
			return nil, fmt.Errorf(`metainfo: %w (the info dictionary has a v2 "file tree" and no v1 "pieces")`, ErrV2Only)
		}
	}

	pl, ok, err := optInt(d, "piece length", "info.piece length")
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		return nil, errors.New("metainfo: info.piece length: missing")
	case pl <= 0:
		return nil, errors.New("metainfo: info.piece length: must be > 0")
	case pl > MaxPieceLength:
		return nil, fmt.Errorf("metainfo: info.piece length: %d exceeds the limit of %d", pl, MaxPieceLength)
	case metaVersion == 2 && (pl < 16<<10 || pl&(pl-1) != 0):
		return nil, fmt.Errorf("metainfo: info.piece length: %d is not a power of two of at least 16 KiB, as BEP 52 requires", pl)
	}
	info.PieceLength = pl

	pieces, ok, err := optString(d, "pieces", "info.pieces")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("metainfo: info.pieces: missing")
	}
	if len(pieces)%hashLen != 0 {
		return nil, fmt.Errorf("metainfo: info.pieces: length %d is not a multiple of %d", len(pieces), hashLen)
	}
	info.Pieces = []byte(pieces)

	// BEP 27: the torrent is private when "private" is the integer 1; anything else is not.
	p, _ := d["private"].(int64)
	info.Private = p == 1

	_, hasLength := d["length"]
	_, hasFiles := d["files"]
	var targets map[int][]string
	switch {
	case hasLength && hasFiles:
		return nil, errors.New(`metainfo: info: has both "length" (single-file) and "files" (multi-file)`)
	case hasLength:
		n, _, err := optInt(d, "length", "info.length")
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return nil, errors.New("metainfo: info.length: must be > 0")
		}
		attr := attrOf(d)
		if attr&(AttrPad|AttrSymlink) != 0 {
			return nil, fmt.Errorf("metainfo: info.attr: %q: a single-file torrent is neither padding nor a symlink", attr)
		}
		info.Length = n
		info.Files = []File{{Path: []string{info.Name}, Length: n, Attr: attr}}
	case hasFiles:
		if targets, err = parseFiles(info, d["files"]); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New(`metainfo: info: has neither "length" (single-file) nor "files" (multi-file)`)
	}

	// BEP 3: pieces holds one hash per piece, the last piece possibly short.
	want := (info.Length-1)/pl + 1
	if want > MaxPieces {
		return nil, fmt.Errorf("metainfo: info: length %d in pieces of %d makes %d pieces, more than %d",
			info.Length, pl, want, MaxPieces)
	}
	if got := int64(len(pieces) / hashLen); got != want {
		return nil, fmt.Errorf("metainfo: info.pieces: %d hashes, want %d for length %d in pieces of %d",
			got, want, info.Length, pl)
	}
	resolveSymlinks(info.Files, targets)
	if metaVersion == 2 {
		if err := checkHybrid(info, d); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// attrOf reads the BEP 47 "attr" of a file dictionary; anything but a string is none.
func attrOf(d map[string]any) Attr {
	s, _ := d["attr"].(string)
	return parseAttr(s)
}

// parseFiles reads the multi-file "files" list into info: lengths, offsets, attributes and
// paths below info.Name. It returns the symlink targets by file index, relative to the
// torrent's root, for resolveSymlinks.
func parseFiles(info *Info, v any) (map[int][]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("metainfo: info.files: want a list, got %s", bencode.TypeName(v))
	}
	if len(list) == 0 {
		return nil, errors.New("metainfo: info.files: must not be empty")
	}
	info.MultiFile = true
	info.Files = make([]File, 0, len(list))
	tree := newPathTree()
	targets := make(map[int][]string)
	var total int64
	for i, fv := range list {
		fd, ok := fv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("metainfo: info.files[%d]: want a dictionary, got %s", i, bencode.TypeName(fv))
		}
		f, target, err := parseFile(fd, i, info.Name)
		if err != nil {
			return nil, err
		}
		if f.Length > math.MaxInt64-total {
			return nil, fmt.Errorf("metainfo: info.files[%d].length: total length overflows int64", i)
		}
		// Padding is never on disk, so its paths may repeat (".pad/N" for each N).
		if !f.IsPad() {
			if err := tree.add(f.Path[1:], i); err != nil {
				return nil, err
			}
		}
		if target != nil {
			targets[i] = target
		}
		f.Offset = total
		total += f.Length
		info.Files = append(info.Files, f)
	}
	if total == 0 {
		return nil, errors.New("metainfo: info.files: total length must be > 0")
	}
	info.Length = total
	return targets, nil
}

// parseFile reads file i of the "files" list (BEP 3, with BEP 47 attributes). A symlink
// comes back with its target's components.
func parseFile(fd map[string]any, i int, name string) (File, []string, error) {
	f := File{Attr: attrOf(fd)}
	var target []string
	if f.IsSymlink() {
		// libtorrent takes a symlink without a target for a regular file.
		if sp, ok := fd["symlink path"].([]any); ok {
			var err error
			if target, err = parseComponents(sp, fmt.Sprintf("info.files[%d].symlink path", i)); err != nil {
				return f, nil, err
			}
		} else {
			f.Attr &^= AttrSymlink
		}
	}
	// A symlink takes no room in the torrent, whatever "length" says (libtorrent agrees).
	if !f.IsSymlink() {
		field := fmt.Sprintf("info.files[%d].length", i)
		n, ok, err := optInt(fd, "length", field)
		switch {
		case err != nil:
			return f, nil, err
		case !ok:
			return f, nil, fmt.Errorf("metainfo: %s: missing", field)
		case n < 0:
			return f, nil, fmt.Errorf("metainfo: %s: must be >= 0", field)
		}
		f.Length = n
	}

	key := "path"
	if _, ok := fd["path.utf-8"].([]any); ok {
		key = "path.utf-8"
	}
	field := fmt.Sprintf("info.files[%d].%s", i, key)
	var path []string
	switch pv, ok := fd[key]; {
	case f.IsPad() && (!ok || isEmptyList(pv)):
		// BEP 47 padding needs no name; libtorrent calls it .pad/<length>.
		path = []string{".pad", strconv.FormatInt(f.Length, 10)}
	case !ok:
		return f, nil, fmt.Errorf("metainfo: %s: missing", field)
	default:
		list, ok := pv.([]any)
		if !ok {
			return f, nil, fmt.Errorf("metainfo: %s: want a list, got %s", field, bencode.TypeName(pv))
		}
		var err error
		if path, err = parseComponents(list, field); err != nil {
			return f, nil, err
		}
	}
	// BitComet marks its padding by name only, as libtorrent knows.
	for _, c := range path {
		if strings.Contains(c, "_____padding_file_") {
			f.Attr |= AttrPad
		}
	}
	f.Path = append([]string{name}, path...)
	return f, target, nil
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) == 0
}

// parseComponents reads a non-empty list of path components named field, cleaned by
// cleanComponent.
func parseComponents(list []any, field string) ([]string, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("metainfo: %s: must not be empty", field)
	}
	path := make([]string, len(list))
	for j, cv := range list {
		c, ok := cv.(string)
		if !ok {
			return nil, fmt.Errorf("metainfo: %s[%d]: want a string, got %s", field, j, bencode.TypeName(cv))
		}
		s, err := cleanComponent(c)
		if err != nil {
			return nil, fmt.Errorf("metainfo: %s[%d]: %w", field, j, err)
		}
		path[j] = s
	}
	return path, nil
}

// pathTree finds files that share a path, or where one file's path is a directory of
// another's ("a" and "a/b"), in time linear in the number of path components.
type pathTree struct {
	nodes map[pathEdge]int // edge -> node; node 0 is the root
	file  []int            // node -> index of the file it is, or -1 for a directory
	owner []int            // node -> index of the first file through it
}

type pathEdge struct {
	parent int
	name   string
}

func newPathTree() *pathTree {
	return &pathTree{nodes: make(map[pathEdge]int), file: []int{-1}, owner: []int{-1}}
}

// add inserts the path of file i, or reports how it clashes with an earlier file.
func (t *pathTree) add(path []string, i int) error {
	node := 0
	for j, name := range path {
		last := j == len(path)-1
		next, ok := t.nodes[pathEdge{node, name}]
		if !ok {
			next = len(t.file)
			t.nodes[pathEdge{node, name}] = next
			t.file = append(t.file, -1)
			t.owner = append(t.owner, i)
			if last {
				t.file[next] = i
			}
			node = next
			continue
		}
		switch prior := t.file[next]; {
		case prior >= 0 && last:
			return fmt.Errorf("metainfo: info.files[%d].path: same path as info.files[%d]", i, prior)
		case prior >= 0:
			return fmt.Errorf("metainfo: info.files[%d].path: %q is a file, info.files[%d]",
				i, strings.Join(path[:j+1], "/"), prior)
		case last:
			return fmt.Errorf("metainfo: info.files[%d].path: %q is a directory of info.files[%d]",
				i, strings.Join(path, "/"), t.owner[next])
		}
		node = next
	}
	return nil
}
