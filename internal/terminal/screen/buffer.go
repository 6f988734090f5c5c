package screen

// This file holds the cell storage: one buffer per screen (normal and
// alternate), each a ring of fixed-width lines in one flat slice, with the
// line-level operations xterm.js's Buffer and BufferLine perform.

// Cell content layout, the same as xterm.js (src/common/buffer/Constants.ts):
// bits 0-20 the code point (or an index into Model.comb when isCombined is
// set), bit 21 isCombined, bits 22-23 the width (0, 1 or 2).
const (
	codeMask    = 0x1FFFFF
	isCombined  = 0x200000
	contentMask = 0x3FFFFF // code point or combined: the cell has content
	widthShift  = 22

	nullContent = 1 << widthShift // an empty cell of width 1

	// Bits 24-31, unused by xterm.js's content word, hold the cell's OSC 8
	// hyperlink number (0: none).
	linkShift = 24
	linkMask  = 0xFF << linkShift
	maxLinks  = 255
)

// Attribute layout, the same as xterm.js (Attributes, FgFlags, BgFlags) for
// colours and flags. The underline style, which xterm.js keeps in a separate
// object, lives in cells in the bg bits xterm.js uses for its bookkeeping
// (28, 29, 31); the model's current attributes keep bit 28 as xterm.js's
// HAS_EXTENDED and the style apart (Model.ulStyle).
const (
	cmMask    = 0x3000000
	cmP16     = 0x1000000
	cmP256    = 0x2000000
	cmRGB     = 0x3000000
	rgbMask   = 0xFFFFFF
	colorBits = cmMask | rgbMask

	fgInverse       = 0x4000000
	fgBold          = 0x8000000
	fgUnderline     = 0x10000000
	fgBlink         = 0x20000000
	fgInvisible     = 0x40000000
	fgStrikethrough = 0x80000000

	bgItalic   = 0x4000000
	bgDim      = 0x8000000
	bgOverline = 0x40000000
	bgHasExt   = 0x10000000                           // in the current and saved attributes only
	bgULMask   = 0x10000000 | 0x20000000 | 0x80000000 // in cells only
)

func ulStyle(bg uint32) uint32 { return (bg>>28)&3 | (bg>>31)<<2 }

func withULStyle(bg, s uint32) uint32 {
	return bg&^bgULMask | (s&3)<<28 | (s>>2)<<31
}

// cell is one character cell: content, foreground and background words in
// xterm.js's encoding. 12 bytes.
type cell struct {
	c, fg, bg uint32
}

func (c cell) width() int       { return int(c.c >> widthShift & 3) }
func (c cell) hasContent() bool { return c.c&contentMask != 0 }

// buffer is one screen: rows visible lines plus, for the normal screen, up
// to a fixed number of scrollback lines above them. Lines live in cells, cols
// cells each, in physical slots; ring maps logical line numbers (0 is the
// oldest scrollback line) to slots so that scrolling moves no cells.
type buffer struct {
	cols, rows int
	slots      int     // capacity in lines: rows + scrollback
	cells      []cell  // slots*cols
	wrapped    []bool  // per slot: the line continues the one above (soft wrap)
	ring       []int32 // ring[(start+i)%slots] is the slot of logical line i
	start      int
	count      int // logical lines in use, >= rows; ybase = count - rows

	x, y                    int // cursor; x may equal cols (pending wrap)
	scrollTop, scrollBottom int
	savedX, savedY          int // savedY is absolute (ybase + y)
	savedFg, savedBg        uint32
	savedCharset            byte
	tabs                    []bool
	empty                   bool // alternate screen not in use (xterm.js clears its lines)

	// blankRow is a line of blank cells, and colorRow one of colorFill
	// cells, that fill copies from (colorFill is cell{}, never a fill,
	// until a whole line is filled with a colour).
	blankRow  []cell
	colorRow  []cell
	colorFill cell
}

func newBuffer(cols, rows, scrollback int) *buffer {
	b := &buffer{}
	b.alloc(cols, rows, rows+scrollback)
	b.count = rows
	b.scrollBottom = rows - 1
	b.resetTabs()
	return b
}

func (b *buffer) alloc(cols, rows, slots int) {
	b.cols, b.rows, b.slots = cols, rows, slots
	b.cells = make([]cell, slots*cols)
	fillLine(b.cells, nullCell)
	b.blankRow = make([]cell, cols)
	fillLine(b.blankRow, nullCell)
	b.colorRow = make([]cell, cols)
	b.colorFill = cell{}
	b.wrapped = make([]bool, slots)
	b.ring = make([]int32, slots)
	for i := range b.ring {
		b.ring[i] = int32(i)
	}
	b.start = 0
}

func (b *buffer) ybase() int { return b.count - b.rows }

// slot returns the physical slot of logical line i.
func (b *buffer) slot(i int) int {
	j := b.start + i
	if j >= b.slots {
		j -= b.slots
	}
	return int(b.ring[j])
}

func (b *buffer) ringIndex(i int) int {
	j := b.start + i
	if j >= b.slots {
		j -= b.slots
	}
	return j
}

// line returns the cells of logical line i.
func (b *buffer) line(i int) []cell {
	s := b.slot(i)
	return b.cells[s*b.cols : (s+1)*b.cols : (s+1)*b.cols]
}

// row returns the cells of screen row y.
func (b *buffer) row(y int) []cell { return b.line(b.count - b.rows + y) }

func (b *buffer) rowWrapped(y int) *bool { return &b.wrapped[b.slot(b.count-b.rows+y)] }

func (b *buffer) resetTabs() {
	if cap(b.tabs) >= b.cols {
		b.tabs = b.tabs[:b.cols]
	} else {
		b.tabs = make([]bool, b.cols)
	}
	for i := range b.tabs {
		b.tabs[i] = i%8 == 0
	}
}

func (b *buffer) nextStop(x int) int {
	for x++; x < b.cols && !b.tabs[x]; x++ {
	}
	if x >= b.cols {
		return b.cols - 1
	}
	return x
}

func (b *buffer) prevStop(x int) int {
	for x--; x > 0 && (x >= b.cols || !b.tabs[x]); x-- {
	}
	if x >= b.cols {
		return b.cols - 1
	}
	if x < 0 {
		return 0
	}
	return x
}

func fillLine(l []cell, fill cell) {
	if len(l) == 0 {
		return
	}
	// Doubling copies: memmove is several times faster than storing
	// 12-byte structs one by one.
	l[0] = fill
	for n := 1; n < len(l); n *= 2 {
		copy(l[n:], l[:n])
	}
}

// fill sets the cells of l, at most a line, to fill. Erasing is much of what
// full-screen programs do, and one memmove from a line of such cells is
// several times faster than fillLine's doubling copies (a call each): blank
// cells come from blankRow; a coloured fill from colorRow when it is the
// colour of the last whole line filled, so that a run of lines erased in one
// colour is fast and alternating colours cost no more than fillLine.
func (b *buffer) fill(l []cell, fill cell) {
	switch fill {
	case nullCell:
		copy(l, b.blankRow)
	case b.colorFill:
		copy(l, b.colorRow)
	default:
		fillLine(l, fill)
		if len(l) == len(b.colorRow) {
			copy(b.colorRow, l)
			b.colorFill = fill
		}
	}
}

// rotate moves logical line from to position to (from > to: the lines in
// between move down one; from < to: up one), keeping its slot.
func (b *buffer) rotate(from, to int) {
	s := b.ring[b.ringIndex(from)]
	if from > to {
		for i := from; i > to; i-- {
			b.ring[b.ringIndex(i)] = b.ring[b.ringIndex(i-1)]
		}
	} else {
		for i := from; i < to; i++ {
			b.ring[b.ringIndex(i)] = b.ring[b.ringIndex(i+1)]
		}
	}
	b.ring[b.ringIndex(to)] = s
}

// shiftLines moves the line at logical index from to index to, n times,
// blanking it to fill each time: n lines scroll out at from and blank ones
// come in at to, the lines in between moving towards from.
func (b *buffer) shiftLines(from, to, n int, fill cell) {
	for ; n > 0; n-- {
		b.rotate(from, to)
		b.blank(to, fill)
	}
}

// blank clears logical line i to fill and unwraps it.
func (b *buffer) blank(i int, fill cell) {
	s := b.slot(i)
	b.fill(b.cells[s*b.cols:(s+1)*b.cols], fill)
	b.wrapped[s] = false
}

// scroll is xterm.js's BufferService.scroll: a new blank line appears at the
// bottom of the scroll region; with the region at the top of the screen the
// top line goes to scrollback (or is dropped when there is none).
func (b *buffer) scroll(fill cell, isWrapped bool) {
	ybase := b.count - b.rows
	top := ybase + b.scrollTop
	bottom := ybase + b.scrollBottom
	if b.scrollTop == 0 && b.slots > b.rows {
		if b.count < b.slots {
			// The new line takes a free slot at logical index count, then
			// moves up to just below the region.
			b.count++
		} else {
			// Full: the oldest line's slot is recycled.
			b.start++
			if b.start == b.slots {
				b.start = 0
			}
			bottom--
		}
		last := b.count - 1
		if bottom+1 < last {
			b.rotate(last, bottom+1)
		}
		b.blank(bottom+1, fill)
		b.wrapped[b.slot(bottom+1)] = isWrapped
		return
	}
	b.rotate(top, bottom)
	b.blank(bottom, fill)
	b.wrapped[b.slot(bottom)] = isWrapped
}

// insertCells is BufferLine.insertCells.
func insertCells(l []cell, pos, n int, fill cell) {
	cols := len(l)
	pos %= cols
	if pos > 0 && l[pos-1].width() == 2 {
		l[pos-1] = cell{nullContent | fill.c&linkMask, fill.fg, fill.bg}
	}
	if n < cols-pos {
		copy(l[pos+n:], l[pos:cols-n])
		for i := 0; i < n; i++ {
			l[pos+i] = fill
		}
	} else {
		for i := pos; i < cols; i++ {
			l[i] = fill
		}
	}
	if l[cols-1].width() == 2 {
		l[cols-1] = cell{nullContent | fill.c&linkMask, fill.fg, fill.bg}
	}
}

// deleteCells is BufferLine.deleteCells.
func deleteCells(l []cell, pos, n int, fill cell) {
	cols := len(l)
	pos %= cols
	if n < cols-pos {
		copy(l[pos:], l[pos+n:])
		for i := cols - n; i < cols; i++ {
			l[i] = fill
		}
	} else {
		for i := pos; i < cols; i++ {
			l[i] = fill
		}
	}
	if pos > 0 && l[pos-1].width() == 2 {
		l[pos-1] = cell{nullContent | fill.c&linkMask, fill.fg, fill.bg}
	}
	if l[pos].width() == 0 && !l[pos].hasContent() {
		l[pos] = cell{nullContent | fill.c&linkMask, fill.fg, fill.bg}
	}
}

// replaceCells is BufferLine.replaceCells without protection.
func replaceCells(l []cell, start, end int, fill cell) {
	if start, end = replaceEdges(l, start, end, fill); start < end {
		fillLine(l[start:end], fill)
	}
}

// replaceCells is replaceCells on a line of b, filled from b's fill line.
func (b *buffer) replaceCells(l []cell, start, end int, fill cell) {
	if start, end = replaceEdges(l, start, end, fill); start < end {
		b.fill(l[start:end], fill)
	}
}

// replaceEdges repairs the wide characters replaceCells cuts in half and
// returns the range of l it fills.
func replaceEdges(l []cell, start, end int, fill cell) (int, int) {
	cols := len(l)
	if start > 0 && start <= cols && l[start-1].width() == 2 {
		l[start-1] = cell{nullContent | fill.c&linkMask, fill.fg, fill.bg}
	}
	if end < cols && end > 0 && l[end-1].width() == 2 {
		l[end] = cell{nullContent | fill.c&linkMask, fill.fg, fill.bg}
	}
	return start, min(end, cols)
}
