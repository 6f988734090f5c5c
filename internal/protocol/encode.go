package protocol

import (
	"encoding/binary"
	"unicode/utf8"
)

// jsonSafe marks the ASCII bytes that go into a JSON string as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether the eight bytes in w are all printable ASCII
// other than '"' and '\\', i.e. go into a JSON string as they are. Each term
// is the classic "has a zero byte" test, exact when no byte has its high bit
// set, and those are excluded first.
func plainWord(w uint64) bool {
	if w&highs != 0 {
		return false
	}
	ctl := (w - 0x20*ones) &^ w                           // a byte < 0x20
	quote := ((w ^ '"'*ones) - ones) &^ (w ^ '"'*ones)    // a '"'
	bslash := ((w ^ '\\'*ones) - ones) &^ (w ^ '\\'*ones) // a '\\'
	return (ctl|quote|bslash)&highs == 0
}

// AppendString appends b to dst as a JSON string. Invalid UTF-8 becomes U+FFFD
// because JSON text must be valid Unicode (asciinema does the same). Runs
// that need no escaping are copied whole: terminal output and recordings
// pass every byte a program prints through here.
func AppendString(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(b); {
		// Eight bytes at a time while none needs a look: most terminal
		// output is long runs of printable ASCII between escapes. A word
		// that does is then taken byte by byte to its end, so text dense
		// with escapes does not test every word eight times.
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for end := min(i+8, len(b)); i < end; {
			c := b[i]
			if c < utf8.RuneSelf {
				i++
				if jsonSafe[c] {
					continue
				}
				dst = append(dst, b[start:i-1]...)
				start = i
				switch c {
				case '"', '\\':
					dst = append(dst, '\\', c)
				case '\n':
					dst = append(dst, '\\', 'n')
				case '\r':
					dst = append(dst, '\\', 'r')
				case '\t':
					dst = append(dst, '\\', 't')
				default:
					dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
				}
				continue
			}
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, b[start:i]...)
				dst = append(dst, `\ufffd`...)
				start = i + 1
			}
			i += size
		}
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}
