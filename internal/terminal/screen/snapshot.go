package screen

import (
	"strconv"
	"unicode/utf8"
)

// Snapshot appends to dst escape sequences that take a terminal of the same
// size, in any state, to the model's state: RIS, the title, the normal
// screen's scrollback and lines, the alternate screen when it is active, and
// then tab stops, saved cursors, scroll regions, modes, character sets,
// attributes and the cursor. Fed to xterm.js, it shows what xterm.js shows
// after the whole stream the model was fed (see the package doc for the few
// exceptions).
func (m *Model) Snapshot(dst []byte) []byte {
	s := serializer{m: m, dst: dst}
	s.dst = append(s.dst, "\x1bc"...)
	if m.titleSet {
		s.dst = append(s.dst, "\x1b]2;"...)
		s.dst = append(s.dst, m.title...)
		s.dst = append(s.dst, '\a')
	}
	s.emitBuffer(m.normal, 0)
	if m.active == m.alt {
		s.bufferState(m.normal, false)
		// The normal screen's cursor (pending wrap included) stays where
		// it was under the alternate one: a later resize keeps or drops
		// the normal screen's lines by it. Origin mode is not on yet.
		s.cursor(m.normal)
		s.sgr(0, 0, true)
		s.dst = append(s.dst, "\x1b[?47h\x1b[H"...)
		s.x = 0
		// Only the screen: a fresh terminal's alternate screen keeps no
		// scrollback (xterm.js's can, after a resize; see doc.go).
		s.emitBuffer(m.alt, m.alt.count-m.alt.rows)
	}
	b := m.active
	// DECRC can make the active character set differ from the designated
	// one; only DECRC reproduces that, from a saved cursor holding it.
	viaRestore := m.charset != m.g[m.glevel] && b.savedCharset == m.charset
	s.bufferState(b, viaRestore)
	if m.origin {
		s.dst = append(s.dst, "\x1b[?6h"...)
		s.origin = true
	}
	if viaRestore {
		s.charsets(m.g, m.glevel)
		s.dst = append(s.dst, "\x1b8"...)
		s.cursor(b)
		s.sgr(m.fg, m.cbg, true)
	} else {
		s.cursor(b)
		s.sgr(m.fg, m.cbg, false)
		s.charsets(m.g, m.glevel)
	}
	s.setLink(m.linkBits >> linkShift)
	s.modes()
	return s.dst
}

type serializer struct {
	m      *Model
	dst    []byte
	fg, bg uint32 // attributes in force on the terminal
	link   uint32 // hyperlink in force on the terminal
	x      int    // the terminal's cursor column while emitting lines
	origin bool   // origin mode is on in the terminal
}

func (s *serializer) csi(n int, final byte) {
	s.dst = append(s.dst, "\x1b["...)
	s.dst = strconv.AppendInt(s.dst, int64(n), 10)
	s.dst = append(s.dst, final)
}

func (s *serializer) cha(x int) {
	if s.x != x {
		s.csi(x+1, 'G')
		s.x = x
	}
}

// emitBuffer writes all lines of b (scrollback first) from the top left of a
// blank screen, so that the terminal ends with the same lines in the same
// places, wrap flags included.
func (s *serializer) emitBuffer(b *buffer, from int) {
	cols, rows := b.cols, b.rows
	s.x = 0
	var prev []cell
	prevFill := uint32(0)
	for i := from; i < b.count; i++ {
		l := b.line(i)
		fill := uint32(0)
		start := 0
		if i == from && b.wrapped[b.slot(i)] && rows >= 2 {
			// Only a wrap marks a line wrapped, so wrap into row 1 from a
			// dummy row 0 and delete that row.
			start, _ = s.wrapInto(blankLine(cols), l, 0, false, rows)
			s.sgr(s.fg, 0, false)
			s.dst = append(s.dst, "\x1b[H\x1b[M"...)
			s.x = 0
		} else if i > from {
			if b.wrapped[b.slot(i)] {
				var wrapBg uint32
				scrolled := i-from >= rows // the wrap scrolled in a line filled with wrapBg
				start, wrapBg = s.wrapInto(prev, l, prevFill, scrolled, rows)
				if scrolled {
					fill = wrapBg
				}
			} else {
				if normColor(s.bg&colorBits) != 0 {
					s.sgr(s.fg, 0, false)
				}
				s.dst = append(s.dst, "\r\n"...)
				s.x = 0
			}
		}
		s.emitCells(l, start, fill, cols)
		prev, prevFill = l, fill
	}
}

// wrapInto gets the terminal from the end of line prev onto the next line by
// printing the first cell of l (or a placeholder) at the last column so that
// xterm.js marks the new line as wrapped. prevFill is the background prev's
// blanks were emitted on, and scrolled says whether the wrap scrolls in a
// new line (filled with the background in force). It returns the first cell
// of l still to emit and the background colour in force when the wrap
// happened.
func (s *serializer) wrapInto(prev, l []cell, prevFill uint32, scrolled bool, rows int) (int, uint32) {
	cols := len(l)
	// The cells as emitCells sends them: what no output makes is a blank.
	last := s.view(prev, cols-1, prevFill)
	first := s.view(l, 0, 0) // (an orphan there is erased with its colour below)
	printable := first.width() > 0 && !s.blank(l, 0)
	if !last.hasContent() && last.width() == 1 && printable && first.width() == 2 &&
		sameAttrs(last, first) {
		// A wide character that did not fit: printing it at the last column
		// wraps and blanks that column with its attributes, as it did.
		s.cha(cols - 1)
		s.printCell(first)
		s.x = 2
		bg := normColor(s.bg & colorBits)
		s.afterWide(l, 2)
		return 2, bg
	}
	placeholderPrev := false
	if s.x < cols {
		// The terminal is not in the pending-wrap state: reprint the last
		// glyph of prev, or a placeholder to erase afterwards.
		switch {
		case last.hasContent() && last.width() == 1 && cols >= 2 && prev[cols-2].width() == 2 && !s.blank(prev, cols-2):
			// last covers the right half of a wide character (printed with
			// autowrap off, see afterWide): printing it alone would blank
			// the wide character, so reprint both the same way.
			s.cha(cols - 2)
			s.printCell(prev[cols-2])
			s.dst = append(s.dst, "\x1b[?7l"...)
			s.printCell(last)
			s.dst = append(s.dst, "\x1b[?7h"...)
		case last.hasContent() && last.width() == 1:
			s.cha(cols - 1)
			s.printCell(last)
		case last.width() == 0 && cols >= 2 && prev[cols-2].width() == 2 && !s.blank(prev, cols-2):
			s.cha(cols - 2)
			s.printCell(prev[cols-2])
		default:
			s.cha(cols - 1)
			s.sgr(0, normColor(last.bg&colorBits), false)
			s.dst = append(s.dst, ' ')
			placeholderPrev = true
		}
		s.x = cols
	}
	start := 0
	placeholderFirst := false
	var wrapBg uint32
	if printable {
		s.printCell(first)
		start = max(first.width(), 1)
		if start == 2 {
			s.x = 2
			s.afterWide(l, 2)
		}
	} else {
		s.sgr(0, normColor(first.bg&colorBits), false)
		s.dst = append(s.dst, ' ')
		placeholderFirst = true
		start = 1
	}
	wrapBg = normColor(s.bg & colorBits)
	s.x = start
	if placeholderPrev && rows >= 2 {
		s.dst = append(s.dst, "\x1b[A"...)
		s.x = -1
		if attrBlankCell(last) {
			s.attrBlank(prev, cols-1, 0)
		} else {
			s.cha(cols - 1)
			s.sgr(0, normColor(last.bg&colorBits), false)
			s.dst = append(s.dst, "\x1b[X"...)
		}
		s.dst = append(s.dst, "\x1b[B"...)
		s.x = -1
	}
	if placeholderFirst {
		s.x = -1
		if attrBlankCell(first) {
			fill := uint32(0)
			if scrolled {
				fill = wrapBg
			}
			start = s.attrBlank(l, 0, fill)
			s.x = -1
		} else {
			s.cha(0)
			s.sgr(0, normColor(first.bg&colorBits), false)
			s.dst = append(s.dst, "\x1b[X"...)
			start = 1
			if first.hasContent() { // a zero-width character: emitted by emitCells
				start = 0
			}
		}
	}
	return start, wrapBg
}

// emitCells writes cells [start, cols) of a line on which every cell is
// blank with background fill.
func (s *serializer) emitCells(l []cell, start int, fill uint32, cols int) {
	for c := start; c < cols; {
		cl := s.view(l, c, fill)
		if !cl.hasContent() {
			// (A wide character cut by a resize at the last column cannot be
			// printed there either.)
			if cl.width() == 0 { // orphaned second half: left blank
				c++
				continue
			}
			if attrBlankCell(cl) {
				c = s.attrBlank(l, c, fill)
				continue
			}
			bg := normColor(cl.bg & colorBits)
			if bg == fill {
				c++
				continue
			}
			n := 1
			for c+n < cols {
				nc := s.view(l, c+n, fill)
				if nc.hasContent() || nc.width() != 1 || attrBlankCell(nc) || normColor(nc.bg&colorBits) != bg {
					break
				}
				n++
			}
			s.cha(c)
			s.sgr(0, bg, false)
			if n == 1 {
				s.dst = append(s.dst, "\x1b[X"...)
			} else {
				s.csi(n, 'X')
			}
			c += n
			continue
		}
		s.cha(c)
		if cl.width() == 0 {
			// A zero-width character alone in its cell: make sure it does
			// not join the previous one (any CSI resets joining).
			s.sgr(cl.fg, cl.bg, true)
		}
		s.printCell(cl)
		w := cl.width()
		if w == 0 {
			w = 1
		}
		s.x = c + w
		c += w
		if w == 2 {
			s.afterWide(l, c)
		}
	}
}

// afterWide handles a character printed over the right half of a wide one
// ending the line with autowrap off, which skips the repair of the wide
// character: it does the same. c is the column after the wide character.
func (s *serializer) afterWide(l []cell, c int) {
	cols := len(l)
	if c == cols && l[cols-1].hasContent() {
		s.dst = append(s.dst, "\x1b[?7l"...)
		s.printCell(l[cols-1])
		s.dst = append(s.dst, "\x1b[?7h"...)
		s.x = cols
	}
}

func (s *serializer) printCell(cl cell) {
	s.setLink(cl.c >> linkShift)
	s.sgr(cl.fg, cl.bg, false)
	s.dst = s.m.cellString(s.dst, cl)
}

// sgr brings the terminal's attributes to fg, bg.
func (s *serializer) sgr(fg, bg uint32, force bool) {
	fg, bg = normAttrs(fg, bg)
	if !force && fg == s.fg && bg == s.bg {
		return
	}
	s.fg, s.bg = fg, bg
	d := append(s.dst, "\x1b[0"...)
	if fg&fgBold != 0 {
		d = append(d, ";1"...)
	}
	if bg&bgDim != 0 {
		d = append(d, ";2"...)
	}
	if bg&bgItalic != 0 {
		d = append(d, ";3"...)
	}
	if fg&fgUnderline != 0 {
		if st := ulStyle(bg); st > 1 {
			d = append(d, ";4:"...)
			d = strconv.AppendUint(d, uint64(st), 10)
		} else {
			d = append(d, ";4"...)
		}
	}
	if fg&fgBlink != 0 {
		d = append(d, ";5"...)
	}
	if fg&fgInverse != 0 {
		d = append(d, ";7"...)
	}
	if fg&fgInvisible != 0 {
		d = append(d, ";8"...)
	}
	if fg&fgStrikethrough != 0 {
		d = append(d, ";9"...)
	}
	if bg&bgOverline != 0 {
		d = append(d, ";53"...)
	}
	d = appendColor(d, fg, 30, 90, 38)
	d = appendColor(d, bg, 40, 100, 48)
	s.dst = append(d, 'm')
}

// normAttrs returns attributes as sgr sends them: cells with the same
// normalized attributes are recreated alike.
func normAttrs(fg, bg uint32) (uint32, uint32) {
	fg, bg = normColor(fg), normColor(bg)
	if ulStyle(bg) != 0 {
		// A style without the flag (xterm.js shows it when DECRC dropped
		// the flag but not the style) shows as underlined: same as SGR 4:N.
		fg |= fgUnderline
	}
	if ulStyle(bg) == 1 { // SGR 4 either way
		bg = withULStyle(bg, 0)
	}
	return fg, bg
}

// sameAttrs reports whether cells a and b are recreated with the same
// attributes and link.
func sameAttrs(a, b cell) bool {
	afg, abg := normAttrs(a.fg, a.bg)
	bfg, bbg := normAttrs(b.fg, b.bg)
	return afg == bfg && abg == bbg && a.c&linkMask == b.c&linkMask
}

func appendColor(d []byte, v uint32, base, bright, ext int) []byte {
	switch v & cmMask {
	case cmP16:
		i := int(v & 0xFF)
		d = append(d, ';')
		if i < 8 {
			d = strconv.AppendInt(d, int64(base+i), 10)
		} else {
			d = strconv.AppendInt(d, int64(bright+i-8), 10)
		}
	case cmP256:
		d = append(d, ';')
		d = strconv.AppendInt(d, int64(ext), 10)
		d = append(d, ";5;"...)
		d = strconv.AppendUint(d, uint64(v&0xFF), 10)
	case cmRGB:
		d = append(d, ';')
		d = strconv.AppendInt(d, int64(ext), 10)
		d = append(d, ";2;"...)
		d = strconv.AppendUint(d, uint64(v>>16&0xFF), 10)
		d = append(d, ';')
		d = strconv.AppendUint(d, uint64(v>>8&0xFF), 10)
		d = append(d, ';')
		d = strconv.AppendUint(d, uint64(v&0xFF), 10)
	}
	return d
}

// bufferState restores b's tab stops, saved cursor and scroll region.
func (s *serializer) bufferState(b *buffer, forceSave bool) {
	def := true
	for i, t := range b.tabs {
		if t != (i%8 == 0) {
			def = false
			break
		}
	}
	if !def {
		s.dst = append(s.dst, "\x1b[3g"...)
		for i, t := range b.tabs {
			if t {
				s.x = -1
				s.cha(i)
				s.dst = append(s.dst, "\x1bH"...)
			}
		}
	}
	y := min(max(b.savedY-b.ybase(), 0), b.rows-1)
	x := min(b.savedX, b.cols-1)
	if forceSave || x != 0 || y != 0 || b.savedFg != 0 || b.savedBg&^bgHasExt != 0 || b.savedCharset != 0 {
		s.dst = append(s.dst, "\x1b["...)
		s.dst = strconv.AppendInt(s.dst, int64(y+1), 10)
		s.dst = append(s.dst, ';')
		s.dst = strconv.AppendInt(s.dst, int64(x+1), 10)
		s.dst = append(s.dst, 'H')
		s.sgr(b.savedFg, b.savedBg&^bgHasExt, false)
		if b.savedCharset != 0 {
			s.dst = append(s.dst, "\x1b("...)
			s.dst = append(s.dst, b.savedCharset)
		}
		s.dst = append(s.dst, "\x1b7"...)
		if b.savedCharset != 0 {
			s.dst = append(s.dst, "\x1b(B"...)
		}
	}
	if b.scrollTop != 0 || b.scrollBottom != b.rows-1 {
		s.dst = append(s.dst, "\x1b["...)
		s.dst = strconv.AppendInt(s.dst, int64(b.scrollTop+1), 10)
		s.dst = append(s.dst, ';')
		s.dst = strconv.AppendInt(s.dst, int64(b.scrollBottom+1), 10)
		s.dst = append(s.dst, 'r')
	}
}

// cursor places the cursor, reproducing the pending-wrap state (x == cols)
// by reprinting the glyph that ends the row.
func (s *serializer) cursor(b *buffer) {
	y := b.y
	// In origin mode the cursor can be outside the scroll region only by
	// coming back from the alternate screen, which passes its position on
	// (unclamped): do the same.
	viaAlt := s.origin && (b.y < b.scrollTop || b.y > b.scrollBottom) && b == s.m.normal
	if s.origin && !viaAlt {
		y -= b.scrollTop
	}
	x := b.x
	row := b.row(min(b.y, b.rows-1))
	pending := false
	if x >= b.cols {
		x = b.cols - 1
		if c := row[b.cols-1]; c.hasContent() && c.width() <= 1 && s.printable(c) {
			pending = true
		} else if c.width() == 0 && b.cols >= 2 && row[b.cols-2].width() == 2 && s.printable(row[b.cols-2]) {
			x = b.cols - 2
			pending = true
		}
	}
	if viaAlt {
		s.dst = append(s.dst, "\x1b[?47h"...)
	}
	s.dst = append(s.dst, "\x1b["...)
	s.dst = strconv.AppendInt(s.dst, int64(y+1), 10)
	s.dst = append(s.dst, ';')
	s.dst = strconv.AppendInt(s.dst, int64(x+1), 10)
	s.dst = append(s.dst, 'H')
	if viaAlt {
		s.dst = append(s.dst, "\x1b[?47l"...)
	}
	if pending {
		if x == b.cols-1 && b.cols >= 2 && row[x-1].width() == 2 {
			// The last glyph covers the right half of a wide character
			// (printed with autowrap off): reprint both the same way.
			s.dst = append(s.dst, '\b')
			s.printCell(row[x-1])
			s.dst = append(s.dst, "\x1b[?7l"...)
			s.printCell(row[x])
			s.dst = append(s.dst, "\x1b[?7h"...)
		} else {
			if row[x].width() == 0 {
				s.setLink(row[x].c >> linkShift)
				s.sgr(row[x].fg, row[x].bg, true) // join nothing
			}
			s.printCell(row[x])
		}
		if b.x > b.cols {
			// Zero-width characters printed in the pending-wrap position
			// move xterm.js's cursor past the edge without writing: do the
			// same, after a CSI so that they join nothing.
			s.sgr(s.fg, s.bg, true)
			for n := b.x - b.cols; n > 0; n-- {
				s.dst = append(s.dst, "\u200b"...)
			}
		}
	}
}

func (s *serializer) charsets(g [4]byte, level uint8) {
	for i, cs := range g {
		if cs == 0 {
			continue
		}
		s.dst = append(s.dst, 0x1b, "()*+"[i], cs)
	}
	switch level {
	case 1:
		s.dst = append(s.dst, 0x0e)
	case 2:
		s.dst = append(s.dst, "\x1bn"...)
	case 3:
		s.dst = append(s.dst, "\x1bo"...)
	}
}

func (s *serializer) modes() {
	m := s.m
	d := s.dst
	flag := func(on bool, seq string) {
		if on {
			d = append(d, seq...)
		}
	}
	flag(m.appCursor, "\x1b[?1h")
	flag(m.appKeypad, "\x1b[?66h")
	flag(m.bracketed, "\x1b[?2004h")
	flag(!m.wrap, "\x1b[?7l")
	flag(m.reverseWrap, "\x1b[?45h")
	switch m.mouseProto {
	case mouseX10:
		d = append(d, "\x1b[?9h"...)
	case mouseVT200:
		d = append(d, "\x1b[?1000h"...)
	case mouseDrag:
		d = append(d, "\x1b[?1002h"...)
	case mouseAny:
		d = append(d, "\x1b[?1003h"...)
	}
	switch m.mouseEnc {
	case encSGR:
		d = append(d, "\x1b[?1006h"...)
	case encSGRPixels:
		d = append(d, "\x1b[?1016h"...)
	}
	flag(m.sendFocus, "\x1b[?1004h")
	flag(m.insert, "\x1b[4h")
	flag(m.convertEol, "\x1b[20h")
	flag(m.syncOutput, "\x1b[?2026h")
	if m.cursorStyle != 0 || m.cursorBlink != 0 {
		// DECSCUSR 1-6; 7 and 8 set only blinking (xterm.js keeps the shape).
		n := 2*int(m.cursorStyle) - 1
		if m.cursorStyle == 0 {
			n = 7
		}
		if m.cursorBlink == 1 {
			n++
		}
		d = append(d, "\x1b["...)
		d = strconv.AppendInt(d, int64(n), 10)
		d = append(d, " q"...)
	}
	if m.cursorHidden {
		d = append(d, "\x1b[?25l"...)
	} else {
		d = append(d, "\x1b[?25h"...)
	}
	s.dst = d
}

func blankLine(cols int) []cell {
	l := make([]cell, cols)
	for i := range l {
		l[i].c = nullContent
	}
	return l
}

// attrBlank writes cell c of l, a blank cell with attributes beyond a
// background colour, which xterm.js makes when it repairs a wide character
// another one overwrote half of. It uses the same repairs: a wide character
// whose right half is printed over becomes a blank with the attributes of
// that print. It returns the next cell to emit.
func (s *serializer) attrBlank(l []cell, c int, fill uint32) int {
	cols := len(l)
	cl := s.sent(l, c)
	if c+1 < cols {
		s.cha(c)
		s.dst = append(s.dst, "\u4e00"...) // a wide character over c, c+1
		s.x = -1
		s.cha(c + 1)
		s.setLink(cl.c >> linkShift)
		s.sgr(cl.fg, cl.bg, false)
		s.dst = append(s.dst, 'X') // blanks c with cl's attributes
		s.x = c + 2
		// Cell c+1 now holds the X: emit it explicitly.
		n := s.view(l, c+1, fill)
		// A blank there is erased; if it has attributes too and ends the
		// line, it gets only its background (doc.go: the last column's
		// trick would undo this one).
		if !n.hasContent() && n.width() == 1 && (!attrBlankCell(n) || c+1 == cols-1) {
			s.x = -1
			s.cha(c + 1)
			s.sgr(0, normColor(n.bg&colorBits), false)
			s.dst = append(s.dst, "\x1b[X"...)
			return c + 2
		}
		return c + 1
	}
	// The last column: print a wide character over c-1, c and then the
	// glyph that covers c-1 over it; the print's end repair blanks c with
	// the attributes in force.
	g := c - 1
	if v := s.view(l, g, fill); v.width() == 0 && !v.hasContent() && g > 0 { // a wide character's right half
		g--
	}
	s.x = -1
	s.cha(c - 1)
	s.dst = append(s.dst, "\u4e00"...)
	s.x = -1
	s.cha(g)
	prev := s.view(l, g, fill)
	if prev.hasContent() && sameAttrs(prev, cl) {
		if prev.width() == 0 {
			s.sgr(prev.fg, prev.bg, true) // join nothing
		}
		s.printCell(prev)
		s.x = c
		return c + 1
	}
	// Otherwise blank it with cl's attributes and restore it.
	s.setLink(cl.c >> linkShift)
	s.sgr(cl.fg, cl.bg, false)
	if g == c-2 {
		s.dst = append(s.dst, "\u4e00"...)
	} else {
		s.dst = append(s.dst, 'X')
	}
	s.x = -1
	s.cha(g)
	if prev.hasContent() {
		s.sgr(prev.fg, prev.bg, true)
		s.printCell(prev)
	} else {
		s.sgr(0, normColor(prev.bg&colorBits), false)
		s.dst = append(s.dst, "\x1b[X"...)
	}
	s.x = -1
	return c + 1
}

// normColor clears the colour bits xterm.js leaves behind but never shows
// (SGR 30-37 keep the upper bits of an earlier RGB colour, for example).
func normColor(v uint32) uint32 {
	switch v & cmMask {
	case cmP16, cmP256:
		return v &^ (rgbMask &^ 0xFF)
	case cmRGB:
		return v
	}
	return v &^ rgbMask
}

// printable reports whether printing c's characters makes a cell like c:
// whether its width is that of its first character. (A resize can leave the
// join state of the parser pointing at a blank cell, and a zero-width
// character joined to it then makes a cell no output can.)
func (s *serializer) printable(c cell) bool {
	var cp uint32
	if c.c&isCombined != 0 {
		idx := int(c.c & codeMask)
		if idx >= len(s.m.comb) || s.m.comb[idx] == "" {
			return false
		}
		r, _ := utf8.DecodeRuneInString(s.m.comb[idx])
		cp = uint32(r)
	} else {
		cp = c.c & codeMask
	}
	return wcwidth(cp) == c.width()
}

// setLink brings the terminal's current hyperlink (OSC 8) to model link n.
func (s *serializer) setLink(n uint32) {
	if n >= uint32(len(s.m.links)) {
		n = 0
	}
	if n == s.link {
		return
	}
	s.link = n
	s.dst = append(s.dst, "\x1b]8;"...)
	if n == 0 {
		s.dst = append(s.dst, ';')
	} else {
		s.dst = append(s.dst, s.m.links[n]...)
	}
	s.dst = append(s.dst, "\x1b\\"...)
}

// rightHalfOK reports whether the wide character at l[c] can be printed:
// its right half is the usual placeholder, or a character printed over it
// at the end of the line with autowrap off (see afterWide). A reflow can
// leave a blank there, which no output makes.
func rightHalfOK(l []cell, c int) bool {
	n := l[c+1]
	if n.width() == 0 && !n.hasContent() {
		return true
	}
	return c+1 == len(l)-1 && n.hasContent() && n.width() == 1 // (a wide one is not printed there)
}

// blank reports whether cell c of l is sent as a blank: it is one, or no
// output makes a cell like it (see printable and rightHalfOK).
func (s *serializer) blank(l []cell, c int) bool {
	cl := l[c]
	return !cl.hasContent() || !s.printable(cl) || (cl.width() == 2 && (c == len(l)-1 || !rightHalfOK(l, c)))
}

// sent returns cell c of l as the snapshot recreates it: a cell no output
// makes (see blank) becomes a blank with its attributes.
func (s *serializer) sent(l []cell, c int) cell {
	cl := l[c]
	if cl.hasContent() && s.blank(l, c) {
		return cell{nullContent | cl.c&linkMask, cl.fg, cl.bg}
	}
	return cl
}

// view returns cell c of l as the snapshot recreates it on a line whose
// blanks have background fill: as sent; an orphaned right half, which
// emitCells leaves alone, as a blank of the fill; and a blank with
// attributes just before another at the end of the line with its
// background only, as the last column's repair (attrBlank) leaves it.
// Deciding on these cells makes the snapshot of the recreated line the same.
func (s *serializer) view(l []cell, c int, fill uint32) cell {
	// Most of a screen, as it is, without the calls below.
	if cl := l[c]; cl.width() == 1 {
		if cp := cl.c & contentMask; cp-0x20 < 0x7f-0x20 || cp == 0 && c != len(l)-2 {
			return cl // printable ASCII, or a blank not before the last column
		}
	}
	return s.viewSlow(l, c, fill)
}

func (s *serializer) viewSlow(l []cell, c int, fill uint32) cell {
	if s.orphan(l, c) {
		return cell{c: nullContent, bg: fill}
	}
	cl := s.sent(l, c)
	if cols := len(l); c == cols-2 && attrBlankCell(cl) && !s.orphan(l, cols-1) && attrBlankCell(s.sent(l, cols-1)) {
		return cell{c: nullContent, bg: cl.bg & colorBits}
	}
	return cl
}

// orphan reports whether cell c of l is an empty cell of width 0 that is
// not the right half of a wide character the snapshot prints.
func (s *serializer) orphan(l []cell, c int) bool {
	cl := l[c]
	return cl.width() == 0 && !cl.hasContent() && (c == 0 || l[c-1].width() != 2 || s.blank(l, c-1))
}

// attrBlankCell reports whether c is a blank with attributes beyond its
// background colour, which only attrBlank's repairs recreate.
func attrBlankCell(c cell) bool {
	return !c.hasContent() && c.width() == 1 && (c.fg != 0 || c.bg&^colorBits != 0 || c.c&linkMask != 0)
}
