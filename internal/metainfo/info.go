package metainfo

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/bitstorm/bitstorm/internal/bencode"
)

// parseInfo validates the decoded info dictionary (BEP 3) and lays out its files.
func parseInfo(d map[string]any) (*Info, error) {
	info := &Info{}

	name, ok, err := optString(d, "name", "info.name")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("metainfo: info.name: missing")
	}
	if err := checkComponent(name); err != nil {
		return nil, fmt.Errorf("metainfo: info.name: %w", err)
	}
	info.Name = name

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
	}
	info.PieceLength = pl

	pieces, ok, err := optString(d, "pieces", "info.pieces")
	if err != nil {
		return nil, err
	}
	if !ok {
		if v, _ := d["meta version"].(int64); v >= 2 {
			return nil, errors.New("metainfo: info.pieces: missing: v2-only torrents (BEP 52) are not supported")
		}
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
		info.Length = n
		info.Files = []File{{Path: []string{name}, Length: n}}
	case hasFiles:
		if err := parseFiles(info, d["files"]); err != nil {
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
	return info, nil
}

// parseFiles reads the multi-file "files" list into info: lengths, offsets and paths
// below info.Name.
func parseFiles(info *Info, v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("metainfo: info.files: want a list, got %s", bencode.TypeName(v))
	}
	if len(list) == 0 {
		return errors.New("metainfo: info.files: must not be empty")
	}
	info.MultiFile = true
	info.Files = make([]File, 0, len(list))
	tree := newPathTree()
	var total int64
	for i, fv := range list {
		fd, ok := fv.(map[string]any)
		if !ok {
			return fmt.Errorf("metainfo: info.files[%d]: want a dictionary, got %s", i, bencode.TypeName(fv))
		}
		field := fmt.Sprintf("info.files[%d].length", i)
		n, ok, err := optInt(fd, "length", field)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			return fmt.Errorf("metainfo: %s: missing", field)
		case n < 0:
			return fmt.Errorf("metainfo: %s: must be >= 0", field)
		case n > math.MaxInt64-total:
			return fmt.Errorf("metainfo: %s: total length overflows int64", field)
		}
		path, err := parsePath(fd["path"], i)
		if err != nil {
			return err
		}
		if err := tree.add(path, i); err != nil {
			return err
		}
		info.Files = append(info.Files, File{
			Path:   append([]string{info.Name}, path...),
			Length: n,
			Offset: total,
		})
		total += n
	}
	if total == 0 {
		return errors.New("metainfo: info.files: total length must be > 0")
	}
	info.Length = total
	return nil
}

// parsePath reads and checks the "path" list of file i.
func parsePath(v any, i int) ([]string, error) {
	if v == nil {
		return nil, fmt.Errorf("metainfo: info.files[%d].path: missing", i)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("metainfo: info.files[%d].path: want a list, got %s", i, bencode.TypeName(v))
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("metainfo: info.files[%d].path: must not be empty", i)
	}
	path := make([]string, len(list))
	for j, cv := range list {
		c, ok := cv.(string)
		if !ok {
			return nil, fmt.Errorf("metainfo: info.files[%d].path[%d]: want a string, got %s", i, j, bencode.TypeName(cv))
		}
		if err := checkComponent(c); err != nil {
			return nil, fmt.Errorf("metainfo: info.files[%d].path[%d]: %w", i, j, err)
		}
		path[j] = c
	}
	return path, nil
}

// checkComponent rejects a path component that could escape the output directory or
// mean something other than one name: with none of these, joining components below a
// directory stays below it, on Unix and on Windows.
func checkComponent(c string) error {
	switch {
	case c == "":
		return errors.New("must not be empty")
	case c == "." || c == "..":
		return fmt.Errorf("%q is not allowed", c)
	case strings.ContainsRune(c, '/'):
		return fmt.Errorf("%q contains '/'", c)
	case strings.ContainsRune(c, '\\'):
		return fmt.Errorf("%q contains '\\'", c)
	case strings.ContainsRune(c, 0):
		return fmt.Errorf("%q contains NUL", c)
	}
	return nil
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
