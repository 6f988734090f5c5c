package screen

// This file holds the CSI sequences, each as xterm.js's InputHandler does it
// (the method named in the comment).

func (m *Model) csiDispatch(final byte) {
	b := m.active
	switch m.collect {
	case 0:
		switch final {
		case '@': // insertChars
			m.restrictCursor(b.cols - 1)
			insertCells(b.row(b.y), b.x, m.p1(), m.eraseCell())
		case 'A', 'F': // cursorUp, cursorPrecedingLine
			n := m.p1()
			if d := b.y - b.scrollTop; d >= 0 {
				n = min(d, n)
			}
			m.moveCursor(0, -n)
			if final == 'F' {
				b.x = 0
			}
		case 'B', 'E': // cursorDown, cursorNextLine
			n := m.p1()
			if d := b.scrollBottom - b.y; d >= 0 {
				n = min(d, n)
			}
			m.moveCursor(0, n)
			if final == 'E' {
				b.x = 0
			}
		case 'C', 'a': // cursorForward, hPositionRelative
			m.moveCursor(m.p1(), 0)
		case 'D':
			m.moveCursor(-m.p1(), 0)
		case 'G', '`': // cursorCharAbsolute, charPosAbsolute
			m.setCursor(m.p1()-1, b.y)
		case 'H', 'f': // cursorPosition
			x := 0
			if m.nparams >= 2 {
				x = max(m.p(1), 1) - 1
			}
			m.setCursor(x, m.p1()-1)
		case 'I': // cursorForwardTab
			if b.x < b.cols {
				// Stop at the last column, where further tabs do nothing: a
				// count of 2^31 would otherwise take seconds.
				for n := m.p1(); n > 0 && b.x < b.cols-1; n-- {
					b.x = b.nextStop(b.x)
				}
			}
		case 'Z': // cursorBackwardTab
			if b.x < b.cols {
				for n := m.p1(); n > 0 && b.x > 0; n-- { // (as above)
					b.x = b.prevStop(b.x)
				}
			}
		case 'J':
			m.eraseInDisplay(m.p(0))
		case 'K':
			m.eraseInLine(m.p(0))
		case 'L':
			m.insertLines(m.p1())
		case 'M':
			m.deleteLines(m.p1())
		case 'P': // deleteChars
			m.restrictCursor(b.cols - 1)
			deleteCells(b.row(b.y), b.x, m.p1(), m.eraseCell())
		case 'S': // scrollUp
			ybase := b.ybase()
			b.shiftLines(ybase+b.scrollTop, ybase+b.scrollBottom, min(m.p1(), b.rows), m.eraseCell())
		case 'T': // scrollDown: xterm.js fills with the default attributes
			ybase := b.ybase()
			b.shiftLines(ybase+b.scrollBottom, ybase+b.scrollTop, min(m.p1(), b.rows), nullCell)
		case 'X': // eraseChars
			m.restrictCursor(b.cols - 1)
			b.replaceCells(b.row(b.y), b.x, b.x+m.p1(), m.eraseCell())
		case 'b':
			m.repeatPreceding(m.p1())
		case 'd': // linePosAbsolute
			m.setCursor(b.x, m.p1()-1)
		case 'e': // vPositionRelative
			m.moveCursor(0, m.p1())
		case 'g': // tabClear
			switch m.p(0) {
			case 0:
				if b.x < b.cols {
					b.tabs[b.x] = false
				}
			case 3:
				for i := range b.tabs {
					b.tabs[i] = false
				}
			}
		case 'h', 'l':
			for i := 0; i < m.nparams; i++ {
				switch m.params[i] {
				case 4:
					m.insert = final == 'h'
				case 20:
					m.convertEol = final == 'h'
				}
			}
		case 'm':
			m.sgr()
		case 'r':
			m.setScrollRegion()
		case 's':
			m.saveCursor()
		case 'u':
			m.restoreCursor()
		}
	case ' ':
		switch final {
		case '@', 'A': // scrollLeft, scrollRight
			if b.y > b.scrollBottom || b.y < b.scrollTop {
				return
			}
			n := m.p1()
			for y := b.scrollTop; y <= b.scrollBottom; y++ {
				if final == '@' {
					deleteCells(b.row(y), 0, n, m.eraseCell())
				} else {
					insertCells(b.row(y), 0, n, m.eraseCell())
				}
				*b.rowWrapped(y) = false
			}
		case 'q':
			m.setCursorStyle()
		}
	case '\'':
		if final == '}' || final == '~' { // insertColumns, deleteColumns
			if b.y > b.scrollBottom || b.y < b.scrollTop {
				return
			}
			n := m.p1()
			for y := b.scrollTop; y <= b.scrollBottom; y++ {
				if final == '}' {
					insertCells(b.row(y), b.x, n, m.eraseCell())
				} else {
					deleteCells(b.row(y), b.x, n, m.eraseCell())
				}
				*b.rowWrapped(y) = false
			}
		}
	case '?':
		switch final {
		case 'J': // DECSED; selective erase is not modelled (no DECSCA)
			m.eraseInDisplay(m.p(0))
		case 'K':
			m.eraseInLine(m.p(0))
		case 'h', 'l':
			for i := 0; i < m.nparams; i++ {
				m.setPrivateMode(int(m.params[i]), final == 'h')
			}
		}
	case '!':
		if final == 'p' {
			m.softReset()
		}
	}
}

func (m *Model) eraseInDisplay(mode int) {
	b := m.active
	m.restrictCursor(b.cols)
	e := m.eraseCell()
	switch mode {
	case 0:
		y := b.y
		b.replaceCells(b.row(y), b.x, b.cols, e)
		if b.x == 0 {
			*b.rowWrapped(y) = false
		}
		for y++; y < b.rows; y++ {
			b.fill(b.row(y), e)
			*b.rowWrapped(y) = false
		}
	case 1:
		y := b.y
		b.replaceCells(b.row(y), 0, b.x+1, e)
		*b.rowWrapped(y) = false
		if b.x+1 >= b.cols && y+1 < b.count {
			// xterm.js clears the wrap flag of absolute line y+1 here (not
			// ybase+y+1); reproduce that.
			b.wrapped[b.slot(y+1)] = false
		}
		for y--; y >= 0; y-- {
			b.fill(b.row(y), e)
			*b.rowWrapped(y) = false
		}
	case 2:
		for y := b.rows - 1; y >= 0; y-- {
			b.fill(b.row(y), e)
			*b.rowWrapped(y) = false
		}
	case 3:
		if sb := b.count - b.rows; sb > 0 {
			b.start = b.ringIndex(sb)
			b.count = b.rows
		}
	}
}

func (m *Model) eraseInLine(mode int) {
	b := m.active
	m.restrictCursor(b.cols)
	e := m.eraseCell()
	switch mode {
	case 0:
		b.replaceCells(b.row(b.y), b.x, b.cols, e)
		if b.x == 0 {
			*b.rowWrapped(b.y) = false
		}
	case 1:
		b.replaceCells(b.row(b.y), 0, b.x+1, e)
	case 2:
		b.replaceCells(b.row(b.y), 0, b.cols, e)
		*b.rowWrapped(b.y) = false
	}
}

// insertLines and deleteLines are InputHandler.insertLines and deleteLines:
// n blank lines appear at the cursor's row or the scroll region's bottom,
// the lines in between moving down or up.
func (m *Model) insertLines(n int) { m.insertDeleteLines(n, true) }

func (m *Model) deleteLines(n int) { m.insertDeleteLines(n, false) }

func (m *Model) insertDeleteLines(n int, insert bool) {
	b := m.active
	m.restrictCursor(b.cols - 1)
	if b.y > b.scrollBottom || b.y < b.scrollTop {
		return
	}
	ybase := b.ybase()
	from, to := ybase+b.y, ybase+b.scrollBottom
	if insert {
		from, to = to, from
	}
	b.shiftLines(from, to, min(n, b.scrollBottom-b.y+1), m.eraseCell())
	b.x = 0
}

func (m *Model) repeatPreceding(n int) {
	if m.join == 0 {
		return
	}
	b := m.active
	w := int(m.join >> 1 & 3)
	x := b.x - w
	if x < 0 || x >= b.cols || b.y >= b.rows {
		return
	}
	var tmp [maxCombined + 4]byte
	s := m.cellString(tmp[:0], b.row(b.y)[x])
	if len(s) == 0 {
		return
	}
	// Bound the work: a repeat never needs to print more than a screenful.
	n = min(n, b.cols*(b.slots+1))
	m.printStart()
	for ; n > 0; n-- {
		for k := 0; k < len(s); {
			r, size := decodeRune(s[k:])
			m.printCP(uint32(r))
			k += size
		}
	}
	m.printEnd()
}

func decodeRune(s []byte) (rune, int) {
	cp, size, ok := decodeUTF8(s)
	if size == 0 || !ok {
		return 0xFFFD, max(size, 1)
	}
	return rune(cp), size
}

func (m *Model) setScrollRegion() {
	b := m.active
	top := m.p1()
	bottom := m.p(1)
	if m.nparams < 2 || bottom > b.rows || bottom == 0 {
		bottom = b.rows
	}
	if bottom > top {
		b.scrollTop = top - 1
		b.scrollBottom = bottom - 1
		m.setCursor(0, 0)
	}
}

func (m *Model) setCursorStyle() {
	p := 1
	if m.nparams > 0 {
		p = m.p(0)
	}
	if p == 0 {
		m.cursorStyle, m.cursorBlink = 0, 0
		return
	}
	switch p {
	case 1, 2:
		m.cursorStyle = 1
	case 3, 4:
		m.cursorStyle = 2
	case 5, 6:
		m.cursorStyle = 3
	}
	if p%2 == 1 {
		m.cursorBlink = 2
	} else {
		m.cursorBlink = 1
	}
}

func (m *Model) softReset() {
	b := m.active
	m.cursorHidden = false
	b.scrollTop = 0
	b.scrollBottom = b.rows - 1
	m.fg, m.bg, m.linkBits, m.ulStyle = 0, 0, 0, 0
	m.cellAttrs()
	// coreService.reset: modes and DEC private modes to their defaults.
	m.insert, m.appCursor, m.appKeypad, m.bracketed = false, false, false, false
	m.origin, m.reverseWrap, m.sendFocus, m.syncOutput = false, false, false, false
	m.wrap = true
	m.cursorStyle, m.cursorBlink = 0, 0
	// charsetService.reset
	m.g = [4]byte{}
	m.glevel, m.charset = 0, 0
	b.savedX = 0
	b.savedY = b.ybase()
	b.savedFg, b.savedBg = 0, 0
	b.savedCharset = 0
}

func (m *Model) setPrivateMode(n int, on bool) {
	switch n {
	case 1:
		m.appCursor = on
	case 2:
		if on {
			m.g = [4]byte{}
			m.charset = 0
		}
	case 6:
		m.origin = on
		m.setCursor(0, 0)
	case 7:
		m.wrap = on
	case 45:
		m.reverseWrap = on
	case 66:
		m.appKeypad = on
	case 9:
		m.setMouse(mouseX10, on)
	case 1000:
		m.setMouse(mouseVT200, on)
	case 1002:
		m.setMouse(mouseDrag, on)
	case 1003:
		m.setMouse(mouseAny, on)
	case 1004:
		m.sendFocus = on
	case 1006:
		if on {
			m.mouseEnc = encSGR
		} else {
			m.mouseEnc = encDefault
		}
	case 1016:
		if on {
			m.mouseEnc = encSGRPixels
		} else {
			m.mouseEnc = encDefault
		}
	case 25:
		m.cursorHidden = !on
	case 1048:
		if on {
			m.saveCursor()
		} else {
			m.restoreCursor()
		}
	case 1049, 47, 1047:
		if on {
			if n == 1049 {
				m.saveCursor()
			}
			m.activateAlt()
		} else {
			m.activateNormal()
			if n == 1049 {
				m.restoreCursor()
			}
		}
	case 2004:
		m.bracketed = on
	case 2026:
		m.syncOutput = on
	}
}

func (m *Model) setMouse(p uint8, on bool) {
	if on {
		m.mouseProto = p
	} else {
		m.mouseProto = mouseNone
	}
}

func (m *Model) activateAlt() {
	if m.active == m.alt {
		return
	}
	a := m.alt
	if a.empty {
		e := m.eraseCell()
		for i := 0; i < a.count; i++ {
			a.blank(i, e)
		}
		a.empty = false
	}
	a.x, a.y = m.normal.x, m.normal.y
	m.active = a
}

func (m *Model) activateNormal() {
	if m.active == m.normal {
		return
	}
	a := m.alt
	m.normal.x, m.normal.y = a.x, a.y
	// Buffer.clear: the alternate screen's lines go, and with them its
	// cursor, scroll region and tab stops (its saved cursor stays).
	a.empty = true
	if a.slots != a.rows { // Buffer.clear: a new line list of rows lines
		a.alloc(a.cols, a.rows, a.rows)
		a.count = a.rows
	}
	a.x, a.y = 0, 0
	a.scrollTop, a.scrollBottom = 0, a.rows-1
	a.resetTabs()
	m.active = m.normal
}

// sgr is InputHandler.charAttributes.
func (m *Model) sgr() {
	if m.nparams == 1 && m.params[0] == 0 {
		m.fg, m.bg, m.ulStyle = 0, 0, 0
		m.updateExtended()
		return
	}
	for i := 0; i < m.nparams; i++ {
		p := m.params[i]
		switch {
		case p >= 30 && p <= 37:
			m.fg = m.fg&^(cmMask|0xFF) | cmP16 | uint32(p-30)
		case p >= 40 && p <= 47:
			m.bg = m.bg&^(cmMask|0xFF) | cmP16 | uint32(p-40)
		case p >= 90 && p <= 97:
			m.fg = m.fg&^(cmMask|0xFF) | cmP16 | uint32(p-90) | 8
		case p >= 100 && p <= 107:
			m.bg = m.bg&^(cmMask|0xFF) | cmP16 | uint32(p-100) | 8
		case p == 0:
			m.fg, m.bg, m.ulStyle = 0, 0, 0
			m.updateExtended()
		case p == 1:
			m.fg |= fgBold
		case p == 3:
			m.bg |= bgItalic
		case p == 4:
			m.fg |= fgUnderline
			style := int32(1)
			if s := m.subParams(i); len(s) > 0 {
				style = s[0]
			}
			m.underline(style)
		case p == 5:
			m.fg |= fgBlink
		case p == 7:
			m.fg |= fgInverse
		case p == 8:
			m.fg |= fgInvisible
		case p == 9:
			m.fg |= fgStrikethrough
		case p == 2:
			m.bg |= bgDim
		case p == 21:
			m.underline(2)
		case p == 22:
			m.fg &^= fgBold
			m.bg &^= bgDim
		case p == 23:
			m.bg &^= bgItalic
		case p == 24:
			m.fg &^= fgUnderline
			m.underline(0)
		case p == 25:
			m.fg &^= fgBlink
		case p == 27:
			m.fg &^= fgInverse
		case p == 28:
			m.fg &^= fgInvisible
		case p == 29:
			m.fg &^= fgStrikethrough
		case p == 39:
			m.fg &^= colorBits
		case p == 49:
			m.bg &^= colorBits
		case p == 38 || p == 48 || p == 58:
			i += m.extractColor(i)
		case p == 53:
			m.bg |= bgOverline
		case p == 55:
			m.bg &^= bgOverline
		case p == 59:
			m.updateExtended()
		}
	}
	m.cellAttrs()
}

func (m *Model) underline(style int32) {
	if style == -1 || style > 5 {
		style = 1
	}
	m.ulStyle = uint8(style)
	m.fg |= fgUnderline
	if style == 0 {
		m.fg &^= fgUnderline
	}
	m.updateExtended()
}

// extractColor is InputHandler._extractColor: SGR 38, 48 and 58 in their
// ';' and ':' forms. It returns how many extra parameters it consumed.
func (m *Model) extractColor(pos int) int {
	// Fast path: the common 38;5;N and 38;2;R;G;B with no ':' forms, all
	// parameters present (what the general code below computes for them).
	if p := m.params[pos]; (p == 38 || p == 48) && pos+2 < m.nparams && m.subEnd[pos] == m.subStart[pos] && m.subEnd[pos+1] == m.subStart[pos+1] {
		var color *uint32
		if p == 38 {
			color = &m.fg
		} else {
			color = &m.bg
		}
		switch m.params[pos+1] {
		case 5:
			if m.subEnd[pos+2] == m.subStart[pos+2] {
				*color = *color&^(cmMask|0xFF) | cmP256 | uint32(m.params[pos+2]&0xFF)
				return 2
			}
		case 2:
			if pos+4 < m.nparams && m.subEnd[pos+2] == m.subStart[pos+2] && m.subEnd[pos+3] == m.subStart[pos+3] && m.subEnd[pos+4] == m.subStart[pos+4] {
				*color = *color&^rgbMask | cmRGB | uint32(m.params[pos+2]&0xFF)<<16 | uint32(m.params[pos+3]&0xFF)<<8 | uint32(m.params[pos+4]&0xFF)
				return 4
			}
		}
	}
	accu := [6]int32{0, 0, -1, 0, 0, 0}
	set := func(i int, v int32) {
		if i < len(accu) {
			accu[i] = v
		}
	}
	cSpace, advance := 0, 0
	for {
		set(advance+cSpace, m.params[pos+advance])
		if subs := m.subParams(pos + advance); len(subs) > 0 {
			for i := 0; ; {
				if accu[1] == 5 {
					cSpace = 1
				}
				set(advance+i+1+cSpace, subs[i])
				i++
				if !(i < len(subs) && i+advance+1+cSpace < len(accu)) {
					break
				}
			}
			break
		}
		if (accu[1] == 5 && advance+cSpace >= 2) || (accu[1] == 2 && advance+cSpace >= 5) {
			break
		}
		if accu[1] != 0 {
			cSpace = 1
		}
		advance++
		if !(advance+pos < m.nparams && advance+cSpace < len(accu)) {
			break
		}
	}
	for i := 2; i < len(accu); i++ {
		if accu[i] == -1 {
			accu[i] = 0
		}
	}
	update := func(color uint32) uint32 {
		switch accu[1] {
		case 2:
			color |= cmRGB
			color &^= rgbMask
			color |= uint32(accu[3]&0xFF)<<16 | uint32(accu[4]&0xFF)<<8 | uint32(accu[5]&0xFF)
		case 5:
			color &^= cmMask | 0xFF
			color |= cmP256 | uint32(accu[3]&0xFF)
		}
		return color
	}
	switch accu[0] {
	case 38:
		m.fg = update(m.fg)
	case 48:
		m.bg = update(m.bg)
	}
	return advance
}
