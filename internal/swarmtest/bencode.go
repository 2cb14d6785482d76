package swarmtest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// decodeBencode decodes the one value that is all of b (BEP 3): int64,
// string, []any or map[string]any. It is just enough to read a tracker reply.
func decodeBencode(b []byte) (any, error) {
	v, rest, err := decodeValue(b, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("bencode: %d bytes after the value", len(rest))
	}
	return v, nil
}

var errBencodeEOF = errors.New("bencode: unexpected end")

func decodeValue(b []byte, depth int) (any, []byte, error) {
	if depth > 32 {
		return nil, nil, errors.New("bencode: nested too deep")
	}
	if len(b) == 0 {
		return nil, nil, errBencodeEOF
	}
	switch c := b[0]; {
	case c == 'i':
		end := bytes.IndexByte(b, 'e')
		if end < 0 {
			return nil, nil, errBencodeEOF
		}
		n, err := strconv.ParseInt(string(b[1:end]), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("bencode: integer %q", b[1:end])
		}
		return n, b[end+1:], nil
	case c >= '0' && c <= '9':
		colon := bytes.IndexByte(b, ':')
		if colon < 0 {
			return nil, nil, errBencodeEOF
		}
		n, err := strconv.Atoi(string(b[:colon]))
		if err != nil || n < 0 {
			return nil, nil, fmt.Errorf("bencode: string length %q", b[:colon])
		}
		b = b[colon+1:]
		if n > len(b) {
			return nil, nil, errBencodeEOF
		}
		return string(b[:n]), b[n:], nil
	case c == 'l':
		var list []any
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			v, rest, err := decodeValue(b, depth+1)
			if err != nil {
				return nil, nil, err
			}
			list, b = append(list, v), rest
		}
		if len(b) == 0 {
			return nil, nil, errBencodeEOF
		}
		return list, b[1:], nil
	case c == 'd':
		dict := map[string]any{}
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			k, rest, err := decodeValue(b, depth+1)
			if err != nil {
				return nil, nil, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, nil, errors.New("bencode: dictionary key is not a string")
			}
			v, rest, err := decodeValue(rest, depth+1)
			if err != nil {
				return nil, nil, err
			}
			dict[key], b = v, rest
		}
		if len(b) == 0 {
			return nil, nil, errBencodeEOF
		}
		return dict, b[1:], nil
	default:
		return nil, nil, fmt.Errorf("bencode: unexpected byte %q", c)
	}
}
