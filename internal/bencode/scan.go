package bencode

import (
	"bytes"
	"fmt"
	"math"
)

// frame is an open list or dictionary during a scan.
type frame struct {
	dict      bool
	expectKey bool // dict: the next value is a key
	start     int  // offset of the 'd' or 'l'
	// prevStart and prevEnd bound the previous key's contents; prevEnd == 0 before the first key.
	prevStart, prevEnd int
	// seen holds the keys once they turn out to be out of order (nil while sorted).
	seen map[string]struct{}
}

// scan validates data (see Validate) and returns how many values it holds, keys included.
// It walks the input with an explicit stack, so hostile nesting costs no Go stack.
func scan(data []byte, maxDepth, maxValues int) (int, error) {
	var buf [16]frame // enough for torrents and tracker replies without allocating
	stack := buf[:0]
	values := 0
	p := 0
	for {
		if p >= len(data) {
			return values, syntaxError(p, "unexpected end of input")
		}
		c := data[p]
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if c == 'e' {
				if top.dict && !top.expectKey {
					return values, syntaxError(p, "dictionary key without a value")
				}
				stack = stack[:n-1]
				p++
				if len(stack) == 0 {
					break
				}
				continue
			}
			if top.dict && top.expectKey {
				if !isDigit(c) {
					return values, syntaxError(p, "dictionary key is not a string")
				}
				values++
				if values > maxValues {
					return values, syntaxError(p, fmt.Sprintf("more than %d values", maxValues))
				}
				kStart, kEnd, err := scanString(data, p)
				if err != nil {
					return values, err
				}
				if err := checkKey(data, top, p, kStart, kEnd); err != nil {
					return values, err
				}
				top.prevStart, top.prevEnd = kStart, kEnd
				top.expectKey = false
				p = kEnd
				continue
			}
			if top.dict {
				top.expectKey = true
			}
		}
		values++
		if values > maxValues {
			return values, syntaxError(p, fmt.Sprintf("more than %d values", maxValues))
		}
		switch {
		case c == 'i':
			end, err := scanInt(data, p)
			if err != nil {
				return values, err
			}
			p = end
		case c == 'l' || c == 'd':
			if len(stack) >= maxDepth {
				return values, syntaxError(p, fmt.Sprintf("nesting deeper than %d", max(maxDepth, 0)))
			}
			stack = append(stack, frame{dict: c == 'd', expectKey: true, start: p})
			p++
			continue
		case isDigit(c):
			_, end, err := scanString(data, p)
			if err != nil {
				return values, err
			}
			p = end
		default:
			return values, syntaxError(p, fmt.Sprintf("invalid character %q", c))
		}
		if len(stack) == 0 {
			break
		}
	}
	if p != len(data) {
		return values, syntaxError(p, "trailing data after value")
	}
	return values, nil
}

// checkKey rejects a duplicate key; the key at off has contents data[kStart:kEnd].
// Sorted keys (BEP 3) need one comparison with the previous key. The first key out of
// order switches the dictionary to a set of its keys, built by rescanning what came before.
func checkKey(data []byte, top *frame, off, kStart, kEnd int) error {
	key := data[kStart:kEnd]
	if top.seen == nil && top.prevEnd != 0 {
		switch bytes.Compare(data[top.prevStart:top.prevEnd], key) {
		case 0:
			return duplicateKey(off, key)
		case 1:
			top.seen = make(map[string]struct{})
			// Everything from the dictionary's start to this key is valid already.
			for q := top.start + 1; q < off; {
				s, e := stringBounds(data, q)
				top.seen[string(data[s:e])] = struct{}{}
				q = skipValue(data, e)
			}
		}
	}
	if top.seen != nil {
		if _, dup := top.seen[string(key)]; dup {
			return duplicateKey(off, key)
		}
		top.seen[string(key)] = struct{}{}
	}
	return nil
}

func duplicateKey(off int, key []byte) error {
	const show = 40
	if len(key) > show {
		return syntaxError(off, fmt.Sprintf("duplicate dictionary key %q...", key[:show]))
	}
	return syntaxError(off, fmt.Sprintf("duplicate dictionary key %q", key))
}

// scanInt checks the integer starting with 'i' at p and returns the offset past its 'e'.
// BEP 3: "i-0e is invalid. All encodings with a leading zero, such as i03e, are invalid,
// other than i0e". The value must also fit in an int64, which is what the decoder returns.
func scanInt(data []byte, p int) (int, error) {
	q := p + 1
	neg := q < len(data) && data[q] == '-'
	if neg {
		q++
	}
	digits := q
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var n uint64
	for q < len(data) && isDigit(data[q]) {
		d := uint64(data[q] - '0')
		if n > (limit-d)/10 {
			return 0, syntaxError(p, "integer out of range")
		}
		n = n*10 + d
		q++
	}
	switch {
	case q >= len(data):
		return 0, syntaxError(q, "unexpected end of input")
	case data[q] != 'e':
		return 0, syntaxError(q, fmt.Sprintf("invalid character %q in integer", data[q]))
	case q == digits:
		return 0, syntaxError(p, "integer has no digits")
	case data[digits] == '0' && q-digits > 1:
		return 0, syntaxError(p, "integer has a leading zero")
	case neg && n == 0:
		return 0, syntaxError(p, "negative zero")
	}
	return q + 1, nil
}

// scanString checks the string whose length starts at p and returns where its contents
// start and end. The length is compared with the input left, never trusted.
func scanString(data []byte, p int) (start, end int, err error) {
	q := p
	n := 0
	for q < len(data) && isDigit(data[q]) {
		n = n*10 + int(data[q]-'0')
		if n > len(data) {
			return 0, 0, syntaxError(p, "string length exceeds input")
		}
		q++
	}
	switch {
	case q >= len(data):
		return 0, 0, syntaxError(q, "unexpected end of input")
	case data[q] != ':':
		return 0, 0, syntaxError(q, fmt.Sprintf("invalid character %q in string length", data[q]))
	case data[p] == '0' && q-p > 1:
		return 0, 0, syntaxError(p, "string length has a leading zero")
	case n > len(data)-(q+1):
		return 0, 0, syntaxError(p, "string length exceeds input")
	}
	return q + 1, q + 1 + n, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func syntaxError(off int, reason string) error {
	return &SyntaxError{Offset: off, Reason: reason}
}
