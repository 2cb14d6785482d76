package metainfo

import (
	"sort"
	"strings"
)

// Attr is the set of BEP 47 attributes of a file: the letters of its "attr" string.
type Attr uint8

// The attributes BEP 47 defines. Other letters are ignored, as the BEP asks.
const (
	// AttrPad ('p') marks a padding file: zeros that align the next file to a piece
	// boundary. It is part of the pieces, and so of what is hashed, but never on disk.
	AttrPad Attr = 1 << iota
	// AttrHidden ('h') marks a hidden file; it is recorded and nothing more.
	AttrHidden
	// AttrExecutable ('x') marks an executable file: it is created with the executable bit.
	AttrExecutable
	// AttrSymlink ('l') marks a symbolic link to File.SymlinkPath. It holds no data.
	AttrSymlink
)

// attrLetters is the letter of each attribute, in the order String writes them.
var attrLetters = [...]struct {
	a Attr
	c byte
}{{AttrPad, 'p'}, {AttrHidden, 'h'}, {AttrExecutable, 'x'}, {AttrSymlink, 'l'}}

// parseAttr reads a BEP 47 "attr" string: "characters appear in no particular order and
// unknown characters should be ignored".
func parseAttr(s string) Attr {
	var a Attr
	for _, l := range attrLetters {
		if strings.IndexByte(s, l.c) >= 0 {
			a |= l.a
		}
	}
	return a
}

// String returns the attributes as BEP 47 letters, in the order "phxl"; "" for none.
func (a Attr) String() string {
	var b []byte
	for _, l := range attrLetters {
		if a&l.a != 0 {
			b = append(b, l.c)
		}
	}
	return string(b)
}

// IsPad reports whether f is a padding file (BEP 47): its bytes are zeros, counted in
// the pieces but never stored, read from disk or asked of peers on their own.
func (f *File) IsPad() bool { return f.Attr&AttrPad != 0 }

// IsSymlink reports whether f is a symbolic link (BEP 47) to SymlinkPath. It has no bytes
// in the torrent (Length 0) and is created once the data is complete.
func (f *File) IsSymlink() bool { return f.Attr&AttrSymlink != 0 }

// OnDisk reports whether f is stored as a regular file: neither padding nor a symlink.
func (f *File) OnDisk() bool { return f.Attr&(AttrPad|AttrSymlink) == 0 }

// Span is a range of the torrent's concatenated byte space.
type Span struct {
	Off, Len int64
}

// DataSpans returns the parts of [off, off+n) that files store, in order and merged where
// they touch. What they leave out is padding (BEP 47): zeros that count in the piece
// hashes but that no file holds, so readers fill them in instead of reading them. A range
// without padding comes back whole. The range must lie within [0, Length].
func (i *Info) DataSpans(off, n int64) []Span {
	end := off + n
	var spans []Span
	k := sort.Search(len(i.Files), func(k int) bool { return i.Files[k].Offset+i.Files[k].Length > off })
	for ; k < len(i.Files) && i.Files[k].Offset < end; k++ {
		f := &i.Files[k]
		if f.IsPad() || f.Length == 0 {
			continue
		}
		from, to := max(off, f.Offset), min(end, f.Offset+f.Length)
		s := Span{Off: from, Len: to - from}
		if last := len(spans) - 1; last >= 0 && spans[last].Off+spans[last].Len == s.Off {
			spans[last].Len += s.Len
			continue
		}
		spans = append(spans, s)
	}
	return spans
}

// PadPieces returns, in order, the pieces that are all padding (BEP 47): zeros that no
// peer needs to send, so such a piece is had without downloading it.
func (i *Info) PadPieces() []int {
	var pieces []int
	gap := func(from, to int64) { // [from, to) holds no file data
		for p := (from + i.PieceLength - 1) / i.PieceLength; p < int64(i.NumPieces()); p++ {
			if i.PieceOffset(int(p))+i.PieceSize(int(p)) > to {
				break
			}
			pieces = append(pieces, int(p))
		}
	}
	var end int64 // where the data seen so far ends
	for k := range i.Files {
		if f := &i.Files[k]; !f.IsPad() && f.Length > 0 {
			if f.Offset > end {
				gap(end, f.Offset)
			}
			end = f.Offset + f.Length
		}
	}
	if end < i.Length {
		gap(end, i.Length)
	}
	return pieces
}
