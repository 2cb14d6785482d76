package bencode

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	jackpal "github.com/jackpal/bencode-go"
)

var fuzzSeeds = []string{
	"i0e", "i-1e", "i-0e", "i03e", "4:spam", "0:", "le", "de", "l4:spami42ee",
	"d3:cow3:moo4:spaml1:a1:bee", "d1:bi1e1:ai2ee", "d1:ai1e1:ai2ee", "-1:", "99999999999:",
	"lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
	"d8:announce12:http://x/ann4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
	"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e",
}

// FuzzValidate checks that Validate never panics and that whatever it accepts, Decode
// decodes, and DictValue finds each key's raw bytes, which decode to the same value.
func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := Validate(data, MaxDepth); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(data) {
				t.Fatalf("Validate(%q) = %v: not a *SyntaxError within the input", data, err)
			}
			return
		}
		v, err := Decode(data)
		if err != nil {
			t.Fatalf("Validate(%q) = nil but Decode = %v", data, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, want := range m {
			raw, err := DictValue(data, k)
			if err != nil {
				t.Fatalf("DictValue(%q, %q) = %v", data, k, err)
			}
			got, err := Decode(raw)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("DictValue(%q, %q) = %q, decodes to %#v, %v; want %#v", data, k, raw, got, err, want)
			}
		}
	})
}

// FuzzDecode checks that Decode never panics, agrees with Validate, and that what it
// accepts re-encodes (with jackpal's Marshal, which sorts keys) to the same length and
// decodes again to the same value: nothing was dropped or reinterpreted.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if verr := Validate(data, MaxDepth); (err == nil) != (verr == nil) {
			t.Fatalf("Decode(%q) = %v but Validate = %v", data, err, verr)
		}
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := jackpal.Marshal(&buf, v); err != nil {
			t.Fatalf("Marshal(Decode(%q)) = %v", data, err)
		}
		if buf.Len() != len(data) {
			t.Fatalf("Marshal(Decode(%q)) = %q: length %d, want %d", data, buf.Bytes(), buf.Len(), len(data))
		}
		again, err := Decode(buf.Bytes())
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("Decode(Marshal(Decode(%q))) = %#v, %v, want %#v", data, again, err, v)
		}
	})
}
