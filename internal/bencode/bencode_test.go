package bencode

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxDepth int
		offset   int    // of the error; -1 when valid
		reason   string // substring of the error's reason
	}{
		{name: "zero", in: "i0e", offset: -1},
		{name: "negative", in: "i-42e", offset: -1},
		{name: "max int64", in: "i9223372036854775807e", offset: -1},
		{name: "min int64", in: "i-9223372036854775808e", offset: -1},
		{name: "empty string", in: "0:", offset: -1},
		{name: "string", in: "4:spam", offset: -1},
		{name: "binary string", in: "3:\x00e:", offset: -1},
		{name: "empty list", in: "le", maxDepth: 1, offset: -1},
		{name: "list", in: "l4:spami3ee", maxDepth: 1, offset: -1},
		{name: "empty dict", in: "de", maxDepth: 1, offset: -1},
		{name: "dict", in: "d3:cow3:moo4:spaml1:a1:bee", maxDepth: 2, offset: -1},
		{name: "nested at max depth", in: "llleee", maxDepth: 3, offset: -1},
		// Keys out of order are not canonical but appear in real torrents.
		{name: "keys out of order", in: "d1:bi1e1:ai2ee", maxDepth: 1, offset: -1},
		{name: "keys out of order, then sorted", in: "d1:ci1e1:ai2e1:bi3ee", maxDepth: 1, offset: -1},
		{name: "empty key", in: "d0:i1ee", maxDepth: 1, offset: -1},
		{name: "unsorted within unsorted", in: "d1:bd1:yi1e1:xi2ee1:ai3ee", maxDepth: 2, offset: -1},
		{name: "deeper than the stack buffer", in: strings.Repeat("l", 40) + strings.Repeat("e", 40), maxDepth: 40, offset: -1},
		{name: "dicts deeper than the stack buffer", in: strings.Repeat("d1:a", 40) + "0:" + strings.Repeat("e", 40), maxDepth: 40, offset: -1},

		{name: "empty input", in: "", offset: 0, reason: "unexpected end of input"},
		{name: "negative zero", in: "i-0e", offset: 0, reason: "negative zero"},
		{name: "leading zero", in: "i03e", offset: 0, reason: "leading zero"},
		{name: "negative leading zero", in: "i-03e", offset: 0, reason: "leading zero"},
		{name: "double zero", in: "i00e", offset: 0, reason: "leading zero"},
		{name: "plus sign", in: "i+3e", offset: 1, reason: `invalid character '+' in integer`},
		{name: "no digits", in: "ie", offset: 0, reason: "no digits"},
		{name: "minus only", in: "i-e", offset: 0, reason: "no digits"},
		{name: "double minus", in: "i--1e", offset: 2, reason: `invalid character '-'`},
		{name: "int past int64", in: "i9223372036854775808e", offset: 0, reason: "out of range"},
		{name: "int below int64", in: "i-9223372036854775809e", offset: 0, reason: "out of range"},
		{name: "huge int", in: "i" + strings.Repeat("9", 100) + "e", offset: 0, reason: "out of range"},
		{name: "unterminated int", in: "i12", offset: 3, reason: "unexpected end of input"},
		{name: "float", in: "i1.5e", offset: 2, reason: `invalid character '.'`},
		{name: "string too long", in: "5:abc", offset: 0, reason: "string length exceeds input"},
		{name: "string length claims 99999999999", in: "99999999999:abc", offset: 0, reason: "string length exceeds input"},
		{name: "string length past int64", in: strings.Repeat("9", 30) + ":", offset: 0, reason: "string length exceeds input"},
		{name: "string length leading zero", in: "03:abc", offset: 0, reason: "leading zero"},
		{name: "negative string length", in: "-1:", offset: 0, reason: `invalid character '-'`},
		{name: "string length without colon", in: "3abc", offset: 1, reason: `invalid character 'a' in string length`},
		{name: "string length at end", in: "1", offset: 1, reason: "unexpected end of input"},
		{name: "unterminated list", in: "li1e", maxDepth: 1, offset: 4, reason: "unexpected end of input"},
		{name: "unterminated dict", in: "d1:ai1e", maxDepth: 1, offset: 7, reason: "unexpected end of input"},
		{name: "too deep", in: "llleee", maxDepth: 2, offset: 2, reason: "nesting deeper than 2"},
		{name: "container at depth 0", in: "le", maxDepth: 0, offset: 0, reason: "nesting deeper than 0"},
		{name: "negative depth", in: "le", maxDepth: -1, offset: 0, reason: "nesting deeper than 0"},
		{name: "deep nesting", in: strings.Repeat("l", 1<<20), maxDepth: 64, offset: 64, reason: "nesting deeper than 64"},
		{name: "integer key", in: "di1ei2ee", maxDepth: 1, offset: 1, reason: "key is not a string"},
		{name: "list key", in: "dlei2ee", maxDepth: 2, offset: 1, reason: "key is not a string"},
		{name: "key without value", in: "d1:ae", maxDepth: 1, offset: 4, reason: "key without a value"},
		{name: "duplicate key", in: "d1:ai1e1:ai2ee", maxDepth: 1, offset: 7, reason: `duplicate dictionary key "a"`},
		{name: "duplicate key out of order", in: "d1:ai1e1:ci2e1:bi3e1:ai4ee", maxDepth: 1, offset: 19, reason: `duplicate dictionary key "a"`},
		{name: "duplicate key in nested dict", in: "d1:ad1:xi1e1:xi1eee", maxDepth: 2, offset: 11, reason: "duplicate"},
		{name: "duplicate in unsorted within unsorted", in: "d1:bd1:yi1e1:xi2e1:yi3ee1:ai3ee", maxDepth: 2, offset: 17, reason: `duplicate dictionary key "y"`},
		{name: "duplicate after unsorted nested value", in: "d1:bd1:zi1e1:ai1ee1:ai1e1:bi1ee", maxDepth: 2, offset: 24, reason: `duplicate dictionary key "b"`},
		{name: "same key in sibling dicts", in: "ld1:xi1eed1:xi1eee", maxDepth: 2, offset: -1},
		{name: "trailing bytes", in: "i1ei2e", offset: 3, reason: "trailing data"},
		{name: "trailing e", in: "lee", maxDepth: 1, offset: 2, reason: "trailing data"},
		{name: "stray e", in: "e", offset: 0, reason: `invalid character 'e'`},
		{name: "unknown type", in: "x", offset: 0, reason: `invalid character 'x'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate([]byte(tt.in), tt.maxDepth)
			if tt.offset < 0 {
				if err != nil {
					t.Fatalf("Validate(%q, %d) = %v, want nil", tt.in, tt.maxDepth, err)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Validate(%q, %d) = %v, want a *SyntaxError", tt.in, tt.maxDepth, err)
			}
			if se.Offset != tt.offset || !strings.Contains(se.Reason, tt.reason) {
				t.Errorf("Validate(%q, %d) = %v, want offset %d: ...%s...", tt.in, tt.maxDepth, err, tt.offset, tt.reason)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	err := Validate([]byte("d4:spam99:eggse"), 1)
	want := "bencode: offset 7: string length exceeds input"
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %q", err, want)
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	in := []byte("d8:announce12:http://x/ann4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee")
	if err := Validate(in, MaxDepth); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Validate(in, MaxDepth) }); n != 0 {
		t.Errorf("Validate allocates %v times per run, want 0", n)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{name: "int", in: "i-7e", want: int64(-7)},
		{name: "string", in: "4:spam", want: "spam"},
		{name: "list", in: "li1e1:ae", want: []any{int64(1), "a"}},
		{name: "dict", in: "d1:ali1eee", want: map[string]any{"a": []any{int64(1)}}},
		{name: "unsorted dict", in: "d1:bi1e1:ai2ee", want: map[string]any{"a": int64(2), "b": int64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%q) = %#v, %v, want %#v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestDecodeHostile feeds inputs that make jackpal/bencode-go allocate by the input's
// claims, panic or overflow the stack; Decode must reject each one with an error.
func TestDecodeHostile(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "huge string claim", in: "1000000000:abc"},
		{name: "negative string length", in: "-1:"},
		{name: "nesting 8 MiB deep", in: strings.Repeat("l", 8<<20)},
		{name: "nesting within list", in: "l" + strings.Repeat("d1:a", 100) + "i1e" + strings.Repeat("e", 101)},
		{name: "too many values", in: "l" + strings.Repeat("le", MaxValues) + "e"},
		{name: "duplicate key", in: "d4:infoi1e4:infoi2ee"},
		{name: "trailing data", in: "i1ejunk"},
		{name: "int out of range", in: "i99999999999999999999e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%.40q) = %T, want error", tt.in, got)
			}
			if !strings.HasPrefix(err.Error(), "bencode: ") {
				t.Errorf("Decode(%.40q) error %q lacks the package prefix", tt.in, err)
			}
		})
	}
}

func TestDecodeValueLimit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "scalar", in: "i1e", ok: true},
		{name: "list of 4 at limit", in: "l0:0:0:0:e", ok: true},
		{name: "list of 5", in: "l0:0:0:0:0:e", ok: false},
		{name: "dict keys count", in: "d1:ai1e1:bi2ee", ok: true},
		{name: "dict keys count over", in: "d1:ai1e1:bi2e1:ci3ee", ok: false},
		{name: "nested", in: "llllleeeee", ok: true},
		{name: "nested over", in: "lllllleeeeee", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.in), 5)
			if (err == nil) != tt.ok {
				t.Errorf("decode(%q, 5) = %v, want ok = %v", tt.in, err, tt.ok)
			}
		})
	}
}

func TestDictValue(t *testing.T) {
	const torrent = "d8:announce3:url4:infod6:lengthi5e4:name1:a3:zzz0:e3:zzzi1ee"
	tests := []struct {
		name string
		in   string
		key  string
		want string
	}{
		{name: "dict value", in: torrent, key: "info", want: "d6:lengthi5e4:name1:a3:zzz0:e"},
		{name: "string value", in: torrent, key: "announce", want: "3:url"},
		{name: "last key", in: torrent, key: "zzz", want: "i1e"},
		{name: "key only nested", in: "d1:ad4:infoi1ee4:infoi2ee", key: "info", want: "i2e"},
		{name: "unsorted keys kept as is", in: "d4:infod4:name1:a6:lengthi1ee1:ai0ee", key: "info", want: "d4:name1:a6:lengthi1ee"},
		{name: "key equal to a value", in: "d1:a4:info4:infoi3ee", key: "info", want: "i3e"},
		{name: "empty key", in: "d0:i9ee", key: "", want: "i9e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DictValue([]byte(tt.in), tt.key)
			if err != nil || string(got) != tt.want {
				t.Errorf("DictValue(%q, %q) = %q, %v, want %q", tt.in, tt.key, got, err, tt.want)
			}
			if cap(got) != len(got) {
				t.Errorf("DictValue(%q, %q) has cap %d > len %d: appending would overwrite the input", tt.in, tt.key, cap(got), len(got))
			}
		})
	}
}

func TestDictValueErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		key    string
		noKey  bool
		syntax bool
	}{
		{name: "missing key", in: "d1:ai1ee", key: "info", noKey: true},
		{name: "empty dict", in: "de", key: "info", noKey: true},
		{name: "not a dict", in: "l4:infoe", key: "info"},
		{name: "string", in: "4:info", key: "info"},
		{name: "invalid", in: "d4:info", key: "info", syntax: true},
		{name: "duplicate key", in: "d4:infoi1e4:infoi2ee", key: "info", syntax: true},
		{name: "trailing data", in: "d4:infoi1eeX", key: "info", syntax: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DictValue([]byte(tt.in), tt.key)
			if err == nil {
				t.Fatalf("DictValue(%q, %q) = %q, want error", tt.in, tt.key, got)
			}
			if errors.Is(err, ErrNoKey) != tt.noKey {
				t.Errorf("DictValue(%q, %q) = %v; errors.Is(ErrNoKey) = %v, want %v", tt.in, tt.key, err, !tt.noKey, tt.noKey)
			}
			var se *SyntaxError
			if errors.As(err, &se) != tt.syntax {
				t.Errorf("DictValue(%q, %q) = %v; is *SyntaxError = %v, want %v", tt.in, tt.key, err, !tt.syntax, tt.syntax)
			}
		})
	}
	_, err := DictValue([]byte("d1:ai1ee"), "info")
	if want := `bencode: no such key: "info"`; err == nil || err.Error() != want {
		t.Errorf("DictValue error = %v, want %q", err, want)
	}
}

func BenchmarkValidate(b *testing.B) {
	in := []byte("d4:infod6:lengthi1048576e4:name4:file12:piece lengthi16384e6:pieces" +
		"1280:" + strings.Repeat("x", 1280) + "ee")
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := Validate(in, MaxDepth); err != nil {
			b.Fatal(err)
		}
	}
}
