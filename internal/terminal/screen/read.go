package screen

import "strings"

// This file holds read-only accessors for readers that want the screen as
// text and attributes rather than as escape sequences (the screen API).
// They allocate; they are not meant for the output path.

// ColorMode says how a Color is given.
type ColorMode uint8

// Colour modes.
const (
	ColorDefault ColorMode = iota // the terminal's default colour
	ColorPalette                  // Index into the 256-colour palette (0-15: the 16 ANSI colours)
	ColorRGB                      // true colour, RGB as 0xRRGGBB
)

// Color is a cell's foreground or background colour.
type Color struct {
	Mode  ColorMode
	Index uint8
	RGB   uint32
}

// Attrs are a cell's colours and attributes.
type Attrs struct {
	FG, BG                       Color
	Bold, Dim, Italic, Underline bool
	Blink, Inverse, Invisible    bool
	Strikethrough, Overline      bool
}

// Run is a stretch of one row's cells with the same attributes.
type Run struct {
	// Text is the characters of the cells; empty cells are spaces, the
	// right halves of wide characters add nothing.
	Text string
	// Cells is the number of columns the run covers.
	Cells int
	Attrs Attrs
}

func color(w uint32) Color {
	switch w & cmMask {
	case cmP16, cmP256:
		return Color{Mode: ColorPalette, Index: uint8(w & 0xFF)}
	case cmRGB:
		return Color{Mode: ColorRGB, RGB: w & rgbMask}
	}
	return Color{}
}

func attrsOf(c cell) Attrs {
	return Attrs{
		FG: color(c.fg), BG: color(c.bg),
		Bold: c.fg&fgBold != 0, Dim: c.bg&bgDim != 0, Italic: c.bg&bgItalic != 0,
		Underline: c.fg&fgUnderline != 0, Blink: c.fg&fgBlink != 0, Inverse: c.fg&fgInverse != 0,
		Invisible: c.fg&fgInvisible != 0, Strikethrough: c.fg&fgStrikethrough != 0, Overline: c.bg&bgOverline != 0,
	}
}

// ScreenRuns returns the visible rows of the active screen (the alternate
// one when it is in use), each as runs of cells with equal attributes.
func (m *Model) ScreenRuns() [][]Run {
	b := m.active
	out := make([][]Run, b.rows)
	var sb []byte
	for y := range b.rows {
		var runs []Run
		row := b.row(y)
		for x := 0; x < len(row); {
			a := attrsOf(row[x])
			sb = sb[:0]
			start := x
			for ; x < len(row) && attrsOf(row[x]) == a; x++ {
				sb = m.cellText(sb, row[x])
			}
			runs = append(runs, Run{Text: string(sb), Cells: x - start, Attrs: a})
		}
		out[y] = runs
	}
	return out
}

// cellText appends what c shows: its characters, a space for an empty
// cell, nothing for the right half of a wide character.
func (m *Model) cellText(dst []byte, c cell) []byte {
	if c.width() == 0 {
		return dst
	}
	if !c.hasContent() {
		return append(dst, ' ')
	}
	return m.cellString(dst, c)
}

// Text returns the visible rows of the active screen as plain text, one
// line per row without trailing blanks, each ended by "\n".
func (m *Model) Text() string {
	b := m.active
	var sb strings.Builder
	var line []byte
	for y := range b.rows {
		line = line[:0]
		for _, c := range b.row(y) {
			line = m.cellText(line, c)
		}
		sb.WriteString(strings.TrimRight(string(line), " "))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Cursor returns the cursor's position on the screen (0-based; x is at most
// cols-1 even in the pending-wrap position) and whether it is shown.
func (m *Model) Cursor() (x, y int, visible bool) {
	b := m.active
	return min(b.x, b.cols-1), b.y, !m.cursorHidden
}

// AltScreen reports whether the alternate screen is in use.
func (m *Model) AltScreen() bool { return m.active == m.alt }
