// Package bencode is a safe front for github.com/jackpal/bencode-go: it checks the
// structure of untrusted bencoded bytes before jackpal's decoder sees them, and finds the
// exact raw bytes of a dictionary value (the info hash is the SHA-1 of such bytes, BEP 3).
//
// jackpal/bencode-go v1.0.2 trusts its input. Its Decode
//   - allocates a string buffer of the length the input claims before reading it:
//     "1000000000:" costs a gigabyte, and a negative length ("-1:") panics in makeslice;
//   - recurses once per nesting level with no limit: 30 MiB of 'l' overflows the
//     goroutine stack, a fatal error that recover cannot catch;
//   - builds about 50 bytes of Go values per input byte for inputs such as "lelele...";
//   - accepts non-canonical integers (i-0e, i03e, i+3e), duplicate dictionary keys (the
//     last one wins) and trailing bytes after the value.
//
// Validate rejects all of these with a scan that allocates nothing and never recurses, and
// Decode runs it (with a depth of MaxDepth and at most MaxValues values) before handing the
// bytes to jackpal. DictValue relies on the same scan, so a dictionary with two "info" keys
// cannot make the hashed bytes differ from the decoded ones.
package bencode

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	jackpal "github.com/jackpal/bencode-go"
)

// MaxDepth is the nesting depth of lists and dictionaries that Decode and DictValue accept.
// Torrents and tracker replies nest at most four or five levels deep.
const MaxDepth = 64

// MaxValues bounds how many values (integers, strings, lists and dictionaries, keys
// included) Decode builds, because a decoded value costs tens of bytes however small its
// encoding. libtorrent bounds its decoder the same way (3,000,000 tokens by default).
const MaxValues = 3_000_000

// ErrNoKey reports that a dictionary has no value for the key asked for.
var ErrNoKey = errors.New("bencode: no such key")

// SyntaxError describes malformed or hostile bencoded input.
type SyntaxError struct {
	Offset int    // offset of the offending byte in the input
	Reason string // what is wrong there
}

// Error returns `bencode: offset <n>: <reason>`.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bencode: offset %d: %s", e.Offset, e.Reason)
}

// Validate checks that data is exactly one well-formed bencoded value (BEP 3) with lists
// and dictionaries nested at most maxDepth deep (a negative maxDepth counts as 0, which
// admits only a string or an integer). It rejects:
//   - integers with leading zeros, "-0", a '+' sign, no digits, or outside int64;
//   - string lengths with leading zeros or longer than the rest of the input;
//   - dictionary keys that are not strings, and duplicate keys;
//   - bytes after the value.
//
// Keys out of order are accepted, as libtorrent and most clients do, because real torrents
// have them; the info hash is taken over the raw bytes, so the order is preserved anyway.
// Validate does not recurse, and allocates nothing for input with sorted keys nested at
// most 16 deep, which covers torrents and tracker replies; a dictionary with keys out of
// order costs a map of its keys to find duplicates.
// The error is a *SyntaxError.
func Validate(data []byte, maxDepth int) error {
	_, err := scan(data, maxDepth, math.MaxInt)
	return err
}

// Decode validates data (depth MaxDepth, at most MaxValues values) and decodes it with
// jackpal/bencode-go. The result is built from string, int64, []any and map[string]any.
// A panic in the decoder is returned as an error.
func Decode(data []byte) (v any, err error) {
	return decode(data, MaxValues)
}

func decode(data []byte, maxValues int) (v any, err error) {
	if _, err := scan(data, MaxDepth, maxValues); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("bencode: decoder panic: %v", r)
		}
	}()
	v, err = jackpal.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bencode: %w", err)
	}
	return v, nil
}

// DictValue returns the raw bytes of the value stored under key in the top-level
// dictionary data, exactly as they appear in data (a sub-slice with its capacity capped,
// not a re-encoding). data is validated first as Decode does. A missing key is an error
// wrapping ErrNoKey. The SHA-1 of DictValue(torrent, "info") is the info hash (BEP 3).
func DictValue(data []byte, key string) ([]byte, error) {
	if _, err := scan(data, MaxDepth, MaxValues); err != nil {
		return nil, err
	}
	if data[0] != 'd' {
		return nil, errors.New("bencode: top-level value is not a dictionary")
	}
	// data is valid, so the walk below can skip the checks scan has made.
	p := 1
	for data[p] != 'e' {
		kStart, kEnd := stringBounds(data, p)
		vEnd := skipValue(data, kEnd)
		if string(data[kStart:kEnd]) == key {
			return data[kEnd:vEnd:vEnd], nil
		}
		p = vEnd
	}
	return nil, fmt.Errorf("%w: %q", ErrNoKey, key)
}

// stringBounds returns where the contents of the valid string at p start and end.
func stringBounds(data []byte, p int) (start, end int) {
	n := 0
	for data[p] != ':' {
		n = n*10 + int(data[p]-'0')
		p++
	}
	return p + 1, p + 1 + n
}

// skipValue returns the offset just past the valid value at p.
func skipValue(data []byte, p int) int {
	depth := 0
	for {
		switch c := data[p]; {
		case c == 'i':
			p += bytes.IndexByte(data[p:], 'e') + 1
		case c == 'l' || c == 'd':
			depth++
			p++
		case c == 'e':
			depth--
			p++
		default:
			_, p = stringBounds(data, p)
		}
		if depth == 0 {
			return p
		}
	}
}

// TypeName names the bencode type of a value returned by Decode, for error messages.
func TypeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case []any:
		return "list"
	case map[string]any:
		return "dictionary"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}
