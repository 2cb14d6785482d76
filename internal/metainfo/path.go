package metainfo

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A name or path component from a torrent becomes a file name on disk. Two kinds of
// trouble are told apart:
//
//   - A component that could escape the output directory, or name nothing, is refused at
//     parse time, naming the field: "" (empty), "." and "..", and any with '/', '\\' or NUL
//     in it. libtorrent sanitises these instead (".." dropped, "/" removed, "" made "_"),
//     which turns a hostile torrent into a different one; BitStorm refuses it.
//   - A component that is safe but not a usable file name is cleaned as libtorrent cleans
//     it (torrent_info.cpp, sanitize_append_path_element), so that both clients put the
//     same files at the same paths: invalid UTF-8 bytes and control characters become
//     '_', the Unicode direction marks that disguise an extension (U+200E, U+200F,
//     U+202A to U+202E) are removed, and a component of 240 bytes or more is shortened to
//     its first 240 bytes followed by its extension (the last '.' in its final 10 bytes),
//     which keeps it under the 255 bytes file systems allow.

// maxComponent is the length at which libtorrent shortens a path component.
const maxComponent = 240

// cleanComponent returns the path component c as it is written to disk, or an error
// saying why c is refused.
func cleanComponent(c string) (string, error) {
	if err := checkComponent(c); err != nil {
		return "", err
	}
	s := sanitize(c)
	if s == "" || s == "." || s == ".." {
		return "", fmt.Errorf("%q is no name once direction marks are removed", c)
	}
	return s, nil
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

// sanitize cleans a component that checkComponent accepts, as libtorrent does.
func sanitize(c string) string {
	if plain(c) {
		return c
	}
	var b strings.Builder
	added := 0
	extension := false
	for i, size := 0, 0; i < len(c); i += size {
		var r rune
		r, size = utf8.DecodeRuneInString(c[i:])
		switch {
		case directionMark(r):
			continue
		case r == utf8.RuneError && size == 1, r < 0x20:
			b.WriteByte('_')
			added++
			continue
		}
		b.WriteString(c[i : i+size])
		added += size
		if added >= maxComponent && !extension {
			dot := -1
			for j := len(c) - 1; j > max(len(c)-10, i); j-- {
				if c[j] == '.' {
					dot = j
					break
				}
			}
			if dot < 0 {
				break
			}
			extension = true
			i = dot - size // the loop moves on to the dot
		}
	}
	return b.String()
}

// plain reports whether sanitize would return c unchanged: short valid UTF-8 without
// control characters or direction marks. Nearly every real name is plain.
func plain(c string) bool {
	if len(c) >= maxComponent {
		return false
	}
	for _, r := range c {
		if r < 0x20 || r == utf8.RuneError || directionMark(r) {
			return false
		}
	}
	return true
}

// directionMark reports whether r changes the writing direction: "evil\u202Efdp.exe"
// shows as "evilexe.pdf". libtorrent drops these from file names (filter_path_character).
func directionMark(r rune) bool {
	return r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e)
}
