// Package peerid names the client behind a peer id, by the conventions of BEP 20: the
// Azureus style ("-LT2080-": a dash, two letters naming the client, four characters of
// version, a dash), the mainline style ("M7-2-2--": a letter and dash-separated
// numbers), and Shad0w's ("T03A0-": a letter and up to five base-64 digits). A peer
// chooses its id, so the name is a hint for people to read, never a fact to act on;
// a peer that names itself in its BEP 10 extended handshake ("v") is better named so.
package peerid

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// azureus names the two-letter client codes of the Azureus style (BEP 20's list and
// those common today), with how each writes its version.
var azureus = map[string]struct {
	name    string
	version func(v string) string
}{
	"AZ": {"Azureus", fourDigits},
	"BC": {"BitComet", fourDigits},
	"BS": {"BitStorm", fourDigits}, // ours ("-BS0001-"); BEP 20 lists BS for the long gone BTSlave
	"BT": {"BitTorrent", threeDigits},
	"DE": {"Deluge", fourDigits},
	"KT": {"KTorrent", fourDigits},
	"LT": {"libtorrent (Rasterbar)", threeDigits},
	"lt": {"libTorrent (Rakshasa)", threeDigits},
	"qB": {"qBittorrent", threeDigits},
	"TR": {"Transmission", transmission},
	"UM": {"µTorrent Mac", threeDigits},
	"UT": {"µTorrent", threeDigits},
	"WW": {"WebTorrent", fourDigits},
}

// shadow names the one-letter codes of Shad0w's style.
var shadow = map[byte]string{
	'A': "ABC", 'O': "Osprey Permaseed", 'Q': "BTQueue", 'R': "Tribler", 'S': "Shadow's", 'T': "BitTornado", 'U': "UPnP NAT Bit Torrent",
}

// Client names the software that made id, with its version when the id tells it: "" when
// the id follows no convention known here.
func Client(id [20]byte) string {
	s := string(id[:])
	switch {
	case s[0] == '-' && s[7] == '-' && printable(s[1:7]):
		code, ver := s[1:3], s[3:7]
		if c, ok := azureus[code]; ok {
			return c.name + " " + c.version(ver)
		}
		return fmt.Sprintf("%s %s", code, fourDigits(ver)) // unknown code: shown as it is
	case strings.HasPrefix(s, "A2-"): // aria2: "A2-1-37-0-"
		if v, ok := dashed(s[3:]); ok {
			return "aria2 " + v
		}
	case s[0] == 'M' || s[0] == 'Q': // mainline and Queen Bee: "M7-2-2--"
		if v, ok := dashed(s[1:]); ok {
			name := "BitTorrent"
			if s[0] == 'Q' {
				name = "Queen Bee"
			}
			return name + " " + v
		}
	}
	if name, ok := shadow[s[0]]; ok && shadowVersion(s[1:6]) != "" {
		return name + " " + shadowVersion(s[1:6])
	}
	return ""
}

// printable reports whether s is letters and digits only.
func printable(s string) bool {
	for i := range len(s) {
		if digit(s[i]) < 0 {
			return false
		}
	}
	return true
}

// digit is the value of c as a version character: 0-9, then A-Z for 10-35 (libtorrent
// writes 1.2.10 as "12A0"), then a-z for 36-61 (Shad0w's base 64); -1 for any other.
func digit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}

func join(v string) string {
	parts := make([]string, len(v))
	for i := range len(v) {
		parts[i] = strconv.Itoa(digit(v[i]))
	}
	return strings.Join(parts, ".")
}

func fourDigits(v string) string  { return join(v) }
func threeDigits(v string) string { return join(v[:3]) }

// transmission's versions: "300Z" is 3.00 (Z, a development build: 3.00+), "0072" 0.72.
func transmission(v string) string {
	dev := ""
	if v[3] == 'Z' || v[3] == 'X' {
		dev = "+"
	}
	if strings.HasPrefix(v, "00") {
		return "0." + v[2:4]
	}
	return fmt.Sprintf("%d.%s%s", digit(v[0]), v[1:3], dev)
}

// dashed reads "7-2-2--" as "7.2.2": numbers separated by single dashes, at least two.
func dashed(s string) (string, bool) {
	var nums []string
	for len(nums) < 4 {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || s[i] != '-' {
			break
		}
		nums, s = append(nums, s[:i]), s[i+1:]
	}
	return strings.Join(nums, "."), len(nums) >= 2
}

// shadowVersion reads up to five base-64 digits padded with dashes ("03A0-": 0.3.10.0).
func shadowVersion(s string) string {
	s = strings.TrimRight(s, "-")
	if len(s) < 3 || !printable(s) {
		return ""
	}
	return join(s)
}

// maxNameLen bounds a client's self-given name: it is shown in lists.
const maxNameLen = 64

// Clean makes a name a peer sent (BEP 10 "v") fit to show: valid UTF-8 (bytes that are
// not are read as Latin-1, as µTorrent's "\xb5Torrent" means), no control characters, at
// most 64 characters.
func Clean(name string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(name) && n < maxNameLen; {
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size == 1 {
			r = rune(name[i]) // Latin-1
		}
		i += size
		if unicode.IsControl(r) {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
