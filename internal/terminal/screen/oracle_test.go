package screen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/terminal/screen/oracle"
)

// oracleCase is one comparison the xterm.js oracle runs: the stream and
// the model's snapshot after it, fed to two fresh terminals.
type oracleCase struct {
	oracle.Case
	// gap is set when the model holds a cell no output can reproduce (see
	// "Known differences" in doc.go): a difference is then logged, not failed.
	gap bool
}

func newCase(name string, cols, rows, scrollback int, stream []byte) oracleCase {
	m := New(cols, rows, scrollback)
	m.Write(stream)
	return oracleCase{
		Case: oracle.Case{Name: name, Cols: cols, Rows: rows, Scrollback: scrollback, Stream: stream, Snapshot: m.Snapshot(nil)},
		gap:  hasUnprintable(m),
	}
}

// hasUnprintable reports whether m holds what no output reproduces on a
// fresh terminal: a cell whose width is not that of its characters or a wide
// character in the last column (sent as blanks), or an alternate screen
// with scrollback.
func hasUnprintable(m *Model) bool {
	s := serializer{m: m}
	for _, b := range []*buffer{m.normal, m.alt} {
		for i, c := range b.cells {
			x := i % b.cols
			if c.hasContent() && (!s.printable(c) || c.width() == 2 && (x == b.cols-1 || !rightHalfOK(b.cells[i-x:i-x+b.cols], x))) {
				return true
			}
		}
	}
	// The alternate screen with lines scrolled off, which xterm.js keeps
	// after a resize while it was unused: a fresh terminal's has none.
	return m.alt.count > m.alt.rows
}

// runOracle runs the oracle over cases, or skips the test when node or the
// oracle's node_modules (npm ci in internal/terminal/screen/oracle) is
// missing.
func runOracle(t *testing.T, cases []oracleCase) []oracle.Result {
	t.Helper()
	cs := make([]oracle.Case, len(cases))
	for i, c := range cases {
		cs[i] = c.Case
	}
	return oracle.RunTest(t, 5*time.Minute, cs)
}

func checkOracle(t *testing.T, cases []oracleCase) {
	t.Helper()
	res := runOracle(t, cases)
	failed, gaps := 0, 0
	for i, r := range res {
		if r.OK {
			continue
		}
		if r.XtermError != "" {
			gaps++
			t.Logf("%s: xterm.js threw, no reference: %s", r.Name, r.XtermError)
			continue
		}
		if cases[i].gap {
			gaps++
			t.Logf("%s: known gap (state no output reproduces):\n  %s", r.Name, strings.Join(r.Diffs[:min(len(r.Diffs), 3)], "\n  "))
			continue
		}
		failed++
		if failed <= 15 {
			t.Errorf("%s: snapshot differs from stream:\n  %s", r.Name, strings.Join(r.Diffs, "\n  "))
		}
	}
	t.Logf("oracle: %d of %d cases match, %d differ in known gaps or crash xterm.js", len(res)-failed-gaps, len(res), gaps)
}

// TestOracleGenerated compares, on random streams of the sequences real
// programs use, what xterm.js shows after the stream with what it shows after
// the model's snapshot.
func TestOracleGenerated(t *testing.T) {
	var cases []oracleCase
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		cols := 10 + r.IntN(30)
		rows := 2 + r.IntN(10)
		sb := []int{0, 5, 50}[r.IntN(3)]
		stream := genStream(r, 50+r.IntN(400))
		cases = append(cases, newCase(fmt.Sprintf("gen-%d(%dx%d sb%d)", seed, cols, rows, sb), cols, rows, sb, stream))
	}
	checkOracle(t, cases)
}

// newResizeCase is newCase with a resize to cols2 x rows2 after stream[:at].
func newResizeCase(name string, cols, rows, scrollback int, stream []byte, at, cols2, rows2 int) oracleCase {
	m := New(cols, rows, scrollback)
	m.Write(stream[:at])
	m.Resize(cols2, rows2)
	m.Write(stream[at:])
	return oracleCase{
		Case: oracle.Case{
			Name: name, Cols: cols, Rows: rows, Scrollback: scrollback, Stream: stream, Snapshot: m.Snapshot(nil),
			ResizeAt: at, NewCols: cols2, NewRows: rows2,
		},
		gap: hasUnprintable(m),
	}
}

// TestOracleResize compares after streams with a resize in the middle.
func TestOracleResize(t *testing.T) {
	var cases []oracleCase
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		cols := 10 + r.IntN(30)
		rows := 2 + r.IntN(10)
		sb := []int{0, 5, 50}[r.IntN(3)]
		// Without combining marks: xterm.js's reflow copies stale combined
		// characters between cells (BufferLine.copyCellsFrom copies its
		// whole map), which the model does not reproduce.
		stream := genStreamTexts(r, 50+r.IntN(400), plainTexts)
		at := r.IntN(len(stream) + 1)
		cols2, rows2 := cols, rows
		switch r.IntN(3) {
		case 0:
			cols2 = 10 + r.IntN(30)
		case 1:
			rows2 = 2 + r.IntN(10)
		default:
			cols2, rows2 = 10+r.IntN(30), 2+r.IntN(10)
		}
		cases = append(cases, newResizeCase(fmt.Sprintf("resize-%d(%dx%d->%dx%d sb%d @%d)", seed, cols, rows, cols2, rows2, sb, at), cols, rows, sb, stream, at, cols2, rows2))
	}
	checkOracle(t, cases)
}

// TestOracleCorpus does the same for the recorded programs in testdata, cut
// at several points.
func TestOracleCorpus(t *testing.T) {
	var cases []oracleCase
	for _, rec := range loadCorpus(t) {
		n := len(rec.data)
		for _, cut := range []int{n / 5, n / 3, n / 2, 2 * n / 3, 4 * n / 5, n} {
			cases = append(cases, newCase(fmt.Sprintf("%s@%d", rec.name, cut), rec.cols, rec.rows, 1000, rec.data[:cut]))
		}
		// The window resized half-way, narrower and shorter, then wider:
		// the program keeps printing for its old size, as it would until
		// it handles SIGWINCH.
		cases = append(cases,
			newResizeCase(rec.name+"-narrower", rec.cols, rec.rows, 1000, rec.data, n/2, rec.cols-17, rec.rows-5),
			newResizeCase(rec.name+"-wider", rec.cols, rec.rows, 1000, rec.data, n/2, rec.cols+23, rec.rows+3))
	}
	if len(cases) == 0 {
		t.Skip("no recordings in testdata")
	}
	checkOracle(t, cases)
}

// genStream returns n random pieces of terminal output.
func genStream(r *rand.Rand, n int) []byte { return genStreamTexts(r, n, allTexts) }

var (
	allTexts   = []string{"hello", "a", "wide 漢字か", "e\u0301", "😀", "x\u0308\u0301", "tab\tstop", "ŝ", "\u200b", " ", "END"}
	plainTexts = []string{"hello", "a", "wide 漢字か", "é", "😀", "tab\tstop", "ŝ", " ", "END", "abcdefghijklmnopqrstuvwxyz"}
)

func genStreamTexts(r *rand.Rand, n int, texts []string) []byte {
	var b []byte
	csis := []string{"A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "P", "S", "T", "X", "@", "b", "d", "e", "f", "g", "I", "Z", "`", "a", "s", "u", " q", "!p"}
	for i := 0; i < n; i++ {
		switch k := r.IntN(24); {
		case k < 6:
			b = append(b, texts[r.IntN(len(texts))]...)
		case k < 8:
			for j := r.IntN(60); j > 0; j-- {
				b = append(b, byte('a'+r.IntN(26)))
			}
		case k < 9:
			b = append(b, "\r\n"[r.IntN(2)])
		case k < 10:
			b = append(b, []byte{'\b', '\t', '\v', '\f', 0x0e, 0x0f, '\a', '\r', '\n'}[r.IntN(9)])
		case k < 13:
			b = append(b, "\x1b["...)
			np := r.IntN(3)
			for j := 0; j < np; j++ {
				if j > 0 {
					b = append(b, ';')
				}
				b = fmt.Appendf(b, "%d", r.IntN(12))
			}
			b = append(b, csis[r.IntN(len(csis))]...)
		case k < 16:
			b = append(b, genSGR(r)...)
		case k < 18:
			modes := []int{1, 6, 7, 25, 45, 47, 66, 1000, 1002, 1003, 1004, 1006, 1047, 1048, 1049, 2004, 9, 1016, 2026}
			hl := "hl"[r.IntN(2)]
			b = fmt.Appendf(b, "\x1b[?%d%c", modes[r.IntN(len(modes))], hl)
		case k < 19:
			b = fmt.Appendf(b, "\x1b[%d;%dr", r.IntN(8), r.IntN(12))
		case k < 20:
			escs := []string{"7", "8", "D", "E", "H", "M", "=", ">", "(0", "(B", ")0", "*A", "+0", "n", "o", "~", "#8", "%G"}
			if r.IntN(40) == 0 {
				escs = append(escs, "c")
			}
			b = append(b, 0x1b)
			b = append(b, escs[r.IntN(len(escs))]...)
		case k < 21:
			b = fmt.Appendf(b, "\x1b[%d;%dH", r.IntN(14), r.IntN(44))
		case k < 22:
			b = append(b, []string{"\x1b]0;title\a", "\x1b]2;tï\x1b\\", "\x1bPqdata\x1b\\", "\x1b_apc\x1b\\", "\x1b[4h", "\x1b[4l", "\x1b]8;;http://x\a", "\x1b]8;id=1;http://y\x1b\\", "\x1b]8;;\a"}[r.IntN(9)]...)
		case k < 23:
			b = fmt.Appendf(b, "\x1b[%dX", r.IntN(5))
		default:
			// Occasionally a raw random byte.
			b = append(b, byte(r.IntN(256)))
		}
	}
	return b
}

func genSGR(r *rand.Rand) []byte {
	b := []byte("\x1b[")
	np := 1 + r.IntN(3)
	for j := 0; j < np; j++ {
		if j > 0 {
			b = append(b, ';')
		}
		switch r.IntN(8) {
		case 0:
			b = fmt.Appendf(b, "38;5;%d", r.IntN(256))
		case 1:
			b = fmt.Appendf(b, "48;2;%d;%d;%d", r.IntN(256), r.IntN(256), r.IntN(256))
		case 2:
			b = fmt.Appendf(b, "38:2::%d:%d:%d", r.IntN(256), r.IntN(256), r.IntN(256))
		case 3:
			b = fmt.Appendf(b, "4:%d", r.IntN(6))
		default:
			opts := []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 21, 22, 23, 24, 25, 27, 28, 29, 31, 32, 39, 41, 44, 49, 53, 55, 91, 102}
			b = fmt.Appendf(b, "%d", opts[r.IntN(len(opts))])
		}
	}
	return append(b, 'm')
}
