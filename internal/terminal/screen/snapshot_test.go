package screen

import (
	"fmt"
	"testing"
)

// snapshotCases are small streams with the exact snapshot expected; the
// oracle test checks the same cases against xterm.js when Node.js is there.
var snapshotCases = []struct {
	name       string
	cols, rows int
	scrollback int
	stream     string
	want       string
}{
	{"lines", 10, 3, 10, "hello\r\nworld",
		"\x1bchello\r\nworld\r\n\x1b[2;6H\x1b[?25h"},
	{"soft wrap into scrollback, pending wrap", 5, 2, 10, "abcdefghij\r\n12345",
		"\x1bcabcdefghij\r\n12345\x1b[2;5H5\x1b[?25h"},
	{"colours", 10, 3, 10, "\x1b[1;31mred\x1b[0m \x1b[38;5;208m256\x1b[48;2;1;2;3mrgb",
		"\x1bc\x1b[0;1;31mred\x1b[0m \x1b[0;38;5;208m256\x1b[0;38;5;208;48;2;1;2;3mrgb\x1b[0;38;5;208m\r\n\r\n\x1b[1;10H\x1b[0;38;5;208;48;2;1;2;3mb\x1b[?25h"},
	{"alternate screen over the normal one", 10, 3, 0, "main\x1b[?1049h\x1b[2;5Halt\x1b[?25l",
		"\x1bcmain\r\n\r\n\x1b[1;5H\x1b7\x1b[1;5H\x1b[0m\x1b[?47h\x1b[H\r\n\x1b[5Galt\r\n\x1b[2;8H\x1b[?25l"},
	{"modes, title, charset, attributed blank", 10, 3, 10, "漢字\x1b[4:3mu\x1b]2;title\x07\x1b[2;3r\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b=\x1b(0q",
		"\x1bc\x1b]2;title\a\x1b[0;4:3m─一\x1b[3GX\x1b[3G\x1b[0m字\x1b[0;4:3mu\r\n\r\n\x1b[2;3r\x1b[1;2H\x1b(0\x1b[?66h\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[?25h"},
	{"hyperlink", 12, 2, 10, "\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\ x",
		"\x1bc\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\ x\r\n\x1b[1;7H\x1b[?25h"},
}

func TestSnapshotExact(t *testing.T) {
	for _, c := range snapshotCases {
		m := New(c.cols, c.rows, c.scrollback)
		m.Write([]byte(c.stream))
		if got := string(m.Snapshot(nil)); got != c.want {
			t.Errorf("%s: snapshot\n got  %q\n want %q", c.name, got, c.want)
		}
	}
}

func TestOracleSnapshotCases(t *testing.T) {
	var cases []oracleCase
	for _, c := range snapshotCases {
		cases = append(cases, newCase(c.name, c.cols, c.rows, c.scrollback, []byte(c.stream)))
	}
	checkOracle(t, cases)
}

// TestWriteSplit checks that bytes split anywhere across writes, in the
// middle of UTF-8 characters and escape sequences, give the same model.
func TestWriteSplit(t *testing.T) {
	stream := []byte("漢字\x1b[4:3mu\x1b]2;title\x07\x1b[2;3r\x1b[38;2;1;2;3mé😀\x1b]8;;x\x1b\\l\x1bPq\x1b\\e\u0301\r\n")
	whole := New(12, 3, 5)
	whole.Write(stream)
	want := whole.Snapshot(nil)
	for i := 0; i <= len(stream); i++ {
		m := New(12, 3, 5)
		m.Write(stream[:i])
		m.Write(stream[i:])
		if got := m.Snapshot(nil); string(got) != string(want) {
			t.Fatalf("split at %d: snapshot\n got  %q\n want %q", i, got, want)
		}
	}
}

// TestResizeKeepsContent checks a resize narrower and back reflows a soft
// wrapped line the way xterm.js does: into more lines and back into one.
func TestResizeKeepsContent(t *testing.T) {
	m := New(10, 4, 10)
	m.Write([]byte("0123456789abcde\r\n$ "))
	m.Resize(5, 4)
	if got, want := lineText(m, 0)+"|"+lineText(m, 1)+"|"+lineText(m, 2), "01234|56789|abcde"; got != want {
		t.Fatalf("after narrowing: %q, want %q", got, want)
	}
	m.Resize(10, 4)
	if got, want := lineText(m, 0)+"|"+lineText(m, 1), "0123456789|abcde"; got != want {
		t.Fatalf("after widening: %q, want %q", got, want)
	}
	if c, r := m.Size(); c != 10 || r != 4 {
		t.Fatalf("size %dx%d", c, r)
	}
}

// lineText returns logical line i of the normal screen (scrollback first),
// blanks as spaces, trailing blanks cut.
func lineText(m *Model, i int) string {
	b := m.normal
	if i >= b.count {
		return fmt.Sprintf("<no line %d>", i)
	}
	var s []byte
	for _, c := range b.line(i) {
		if c.hasContent() {
			s = m.cellString(s, c)
		} else if c.width() == 1 {
			s = append(s, ' ')
		}
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return string(s)
}

// TestResizeOddWraps resizes screens holding what reflows port from xterm.js
// index past: a group of wrapped lines with no content (a wrapped first
// line), and a wide character in the last column, which counts two cells
// past the edge (xterm.js throws there). The model must carry on.
func TestResizeOddWraps(t *testing.T) {
	m := New(2, 2, 3)
	m.Write([]byte("a\x1b7字m\x1b[u漢b\x1b[T[[7l"))
	m.Resize(6, 5)
	m.Resize(3, 5)
	checkBounded(t, m)

	m = New(2, 2, 0)
	m.Resize(9, 6)
	m.Write([]byte("\x1b#8\x1b"))
	m.Resize(6, 3)
	m.Write([]byte("mｆｆ\f\x1b[H"))
	m.Resize(3, 4)
	m.Write([]byte("\x1b[u"))
	m.Resize(4, 4)
	checkBounded(t, m)
}
