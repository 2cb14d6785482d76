package metainfo

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A tiny bencoder for building test torrents, including ones no real encoder would
// write: dict keeps its keys in the order given, raw splices bytes in as they are.

type kv struct {
	k string
	v any
}

type dict []kv

type raw string

func enc(v any) []byte {
	var b bytes.Buffer
	encTo(&b, v)
	return b.Bytes()
}

func encTo(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case string:
		fmt.Fprintf(b, "%d:%s", len(v), v)
	case []byte:
		fmt.Fprintf(b, "%d:%s", len(v), v)
	case int:
		fmt.Fprintf(b, "i%de", v)
	case int64:
		fmt.Fprintf(b, "i%de", v)
	case raw:
		b.WriteString(string(v))
	case []any:
		b.WriteByte('l')
		for _, e := range v {
			encTo(b, e)
		}
		b.WriteByte('e')
	case []string:
		b.WriteByte('l')
		for _, e := range v {
			encTo(b, e)
		}
		b.WriteByte('e')
	case dict:
		b.WriteByte('d')
		for _, e := range v {
			encTo(b, e.k)
			encTo(b, e.v)
		}
		b.WriteByte('e')
	case map[string]any:
		b.WriteByte('d')
		for _, k := range slices.Sorted(maps.Keys(v)) {
			encTo(b, k)
			encTo(b, v[k])
		}
		b.WriteByte('e')
	default:
		panic(fmt.Sprintf("enc: unsupported %T", v))
	}
}

// hashes returns n distinct fake piece hashes.
func hashes(n int) string {
	var s strings.Builder
	for i := range n {
		fmt.Fprintf(&s, "%020d", i)
	}
	return s.String()
}

// singleInfo is a valid single-file info dictionary: 100 bytes in pieces of 32.
func singleInfo() map[string]any {
	return map[string]any{
		"name":         "file.bin",
		"piece length": 32,
		"pieces":       hashes(4),
		"length":       100,
	}
}

// multiInfo is a valid multi-file info dictionary: 10+0+90 bytes in pieces of 32.
func multiInfo() map[string]any {
	return map[string]any{
		"name":         "dir",
		"piece length": 32,
		"pieces":       hashes(4),
		"files": []any{
			map[string]any{"length": 10, "path": []string{"a.txt"}},
			map[string]any{"length": 0, "path": []string{"sub", "empty"}},
			map[string]any{"length": 90, "path": []string{"sub", "b.bin"}},
		},
	}
}

// with returns a copy of m with key set to v, or deleted if v is nil.
func with(m map[string]any, key string, v any) map[string]any {
	c := maps.Clone(m)
	if v == nil {
		delete(c, key)
	} else {
		c[key] = v
	}
	return c
}

// withFile returns a copy of the multi-file info m with files[i] replaced by f.
func withFile(m map[string]any, i int, f any) map[string]any {
	files := slices.Clone(m["files"].([]any))
	files[i] = f
	return with(m, "files", files)
}

func torrent(info any) []byte {
	return enc(map[string]any{"announce": "http://127.0.0.1:1/announce", "info": info})
}
