package screen

// Resize changes the terminal's size as xterm.js's Buffer.resize does: rows
// added at the bottom come from scrollback when the cursor is on the last
// line, rows removed below the cursor are dropped and those above it go to
// scrollback, and on the normal screen soft-wrapped lines are reflowed to
// the new width (except the cursor's, as xterm.js by default). The scroll
// regions reset. Resize allocates; it is a port of xterm.js's code, with
// line objects, for exactness rather than speed.
func (m *Model) Resize(cols, rows int) {
	cols, rows = clampSize(cols, rows)
	if cols == m.cols && rows == m.rows {
		return
	}
	m.normal.resize(cols, rows, m.scrollback, true)
	m.alt.resize(cols, rows, 0, false)
	m.cols, m.rows = cols, rows
}

// rline is one line during a resize, as xterm.js's BufferLine: its cells
// (as long as the line currently is) and wrap flag.
type rline struct {
	c       []cell
	wrapped bool
}

var nullCell = cell{c: nullContent}

func newRline(cols int, wrapped bool) *rline {
	l := &rline{c: make([]cell, cols), wrapped: wrapped}
	fillLine(l.c, nullCell)
	return l
}

func (l *rline) width(i int) int {
	if i < 0 || i >= len(l.c) {
		return 0
	}
	return l.c[i].width()
}

func (l *rline) hasContent(i int) bool {
	return i >= 0 && i < len(l.c) && l.c[i].hasContent()
}

// trimmedLength is BufferLine.getTrimmedLength.
func (l *rline) trimmedLength() int {
	for i := len(l.c) - 1; i >= 0; i-- {
		if l.c[i].hasContent() {
			return i + l.c[i].width()
		}
	}
	return 0
}

// copyFrom is BufferLine.copyCellsFrom, including its copying of the
// combined characters of all of src's cells from srcCol on (not only the n
// copied), which renames combined characters of other cells of l.
func (l *rline) copyFrom(src *rline, srcCol, destCol, n int, reverse bool) {
	l.copyCells(src, srcCol, destCol, n, reverse)
	for k := srcCol + n; k < len(src.c); k++ {
		d := k - srcCol + destCol
		if k >= 0 && d >= 0 && d < len(l.c) && src.c[k].c&isCombined != 0 && l.c[d].c&isCombined != 0 {
			l.c[d].c = l.c[d].c&^codeMask | src.c[k].c&codeMask
		}
	}
}

func (l *rline) copyCells(src *rline, srcCol, destCol, n int, reverse bool) {
	if reverse {
		for k := n - 1; k >= 0; k-- {
			if destCol+k >= 0 && destCol+k < len(l.c) && srcCol+k >= 0 && srcCol+k < len(src.c) {
				l.c[destCol+k] = src.c[srcCol+k]
			}
		}
		return
	}
	for k := 0; k < n; k++ {
		if destCol+k >= 0 && destCol+k < len(l.c) && srcCol+k >= 0 && srcCol+k < len(src.c) {
			l.c[destCol+k] = src.c[srcCol+k]
		}
	}
}

func (l *rline) setCell(i int, c cell) {
	if i >= 0 && i < len(l.c) {
		l.c[i] = c
	}
}

// resizeTo is BufferLine.resize.
func (l *rline) resizeTo(cols int) {
	if cols <= len(l.c) {
		l.c = l.c[:cols:cols]
		return
	}
	n := make([]cell, cols)
	copy(n, l.c)
	fillLine(n[len(l.c):], nullCell)
	l.c = n
}

// resizeState is what Buffer.resize works on.
type resizeState struct {
	lines     []*rline
	maxLength int
	ybase, y  int
	savedY    int
	oldCols   int
}

func (b *buffer) resize(newCols, newRows, scrollback int, reflow bool) {
	oldCols, oldRows := b.cols, b.rows
	newSlots := newRows + scrollback
	if b.empty {
		// An unused alternate screen has no lines in xterm.js, and its
		// resize skips the trimming of its line list's capacity: after the
		// rows shrink, it keeps lines that scroll off as scrollback until
		// it is next left (CircularList capacity max(old, new)).
		b.alloc(newCols, newRows, max(b.slots, newSlots))
		b.count = newRows
		b.scrollTop, b.scrollBottom = 0, newRows-1
		b.resizeTabs(newCols)
		return
	}
	st := &resizeState{maxLength: b.slots, ybase: b.ybase(), y: b.y, savedY: b.savedY, oldCols: oldCols}
	st.lines = make([]*rline, b.count)
	for i := range st.lines {
		l := &rline{c: make([]cell, oldCols), wrapped: b.wrapped[b.slot(i)]}
		copy(l.c, b.line(i))
		st.lines[i] = l
	}
	if newSlots > st.maxLength {
		st.maxLength = newSlots
	}
	if oldCols < newCols {
		for _, l := range st.lines {
			l.resizeTo(newCols)
		}
	}
	addToY := 0
	if oldRows < newRows {
		for y := oldRows; y < newRows; y++ {
			if len(st.lines) < newRows+st.ybase {
				if st.ybase > 0 && len(st.lines) <= st.ybase+st.y+addToY+1 {
					st.ybase--
					addToY++
				} else {
					st.lines = append(st.lines, newRline(newCols, false))
				}
			}
		}
	} else {
		for y := oldRows; y > newRows; y-- {
			if len(st.lines) > newRows+st.ybase {
				if len(st.lines) > st.ybase+st.y+1 {
					st.lines = st.lines[:len(st.lines)-1]
				} else {
					st.ybase++
				}
			}
		}
	}
	if newSlots < st.maxLength {
		if trim := len(st.lines) - newSlots; trim > 0 {
			st.lines = st.lines[trim:]
			st.ybase = max(st.ybase-trim, 0)
			st.savedY = max(st.savedY-trim, 0)
		}
		st.maxLength = newSlots
	}
	b.x = min(b.x, newCols-1)
	st.y = min(st.y, newRows-1) + addToY
	b.savedX = min(b.savedX, newCols-1)
	b.scrollTop, b.scrollBottom = 0, newRows-1

	if reflow && oldCols != newCols {
		if newCols > oldCols {
			st.reflowLarger(newCols, newRows)
		} else {
			st.reflowSmaller(newCols, newRows)
		}
	}
	if oldCols > newCols {
		for _, l := range st.lines {
			l.resizeTo(newCols)
		}
	}

	// Back into ring storage. The model keeps exactly ybase+rows lines;
	// xterm.js may keep a few more below the screen after a reflow, which
	// are dropped here.
	lines := st.lines
	if len(lines) > st.ybase+newRows {
		lines = lines[:st.ybase+newRows]
	}
	for len(lines) < st.ybase+newRows {
		lines = append(lines, newRline(newCols, false))
	}
	if len(lines) > newSlots {
		lines = lines[len(lines)-newSlots:]
	}
	b.alloc(newCols, newRows, newSlots)
	for i, l := range lines {
		copy(b.cells[i*newCols:(i+1)*newCols], l.c)
		b.wrapped[i] = l.wrapped
	}
	b.count = len(lines)
	b.y = min(max(st.y, 0), newRows-1)
	b.savedY = st.savedY
	b.resizeTabs(newCols)
}

// wrappedTrimmedLength is getWrappedLineTrimmedLength.
func wrappedTrimmedLength(lines []*rline, i, cols int) int {
	if i == len(lines)-1 {
		return lines[i].trimmedLength()
	}
	endsInNull := !lines[i].hasContent(cols-1) && lines[i].width(cols-1) == 1
	followingWide := lines[i+1].width(0) == 2
	if endsInNull && followingWide {
		return cols - 1
	}
	return cols
}

// reflowLarger is Buffer._reflowLarger with BufferReflow's helpers.
func (st *resizeState) reflowLarger(newCols, newRows int) {
	oldCols := st.oldCols
	lines := st.lines
	cursorY := st.ybase + st.y
	var toRemove []int
	for y := 0; y < len(lines)-1; y++ {
		i := y + 1
		if !lines[i].wrapped {
			continue
		}
		wrapped := []*rline{lines[y]}
		for i < len(lines) && lines[i].wrapped {
			wrapped = append(wrapped, lines[i])
			i++
		}
		if cursorY >= y && cursorY < i {
			y += len(wrapped) - 1
			continue
		}
		destLine := 0
		destCol := wrappedTrimmedLength(wrapped, destLine, oldCols)
		srcLine := 1
		srcCol := 0
		for srcLine < len(wrapped) {
			srcTrimmed := wrappedTrimmedLength(wrapped, srcLine, oldCols)
			n := min(srcTrimmed-srcCol, newCols-destCol)
			wrapped[destLine].copyFrom(wrapped[srcLine], srcCol, destCol, n, false)
			destCol += n
			if destCol == newCols {
				destLine++
				destCol = 0
			}
			srcCol += n
			if srcCol == srcTrimmed {
				srcLine++
				srcCol = 0
			}
			if destCol == 0 && destLine != 0 {
				if wrapped[destLine-1].width(newCols-1) == 2 {
					wrapped[destLine].copyFrom(wrapped[destLine-1], newCols-1, destCol, 1, false)
					destCol++
					wrapped[destLine-1].setCell(newCols-1, nullCell)
				}
			}
		}
		// A wide character in the last column (left by an earlier reflow)
		// counts two cells past the edge, which can run the copy past the
		// group's last line: xterm.js then throws here and leaves the resize
		// half done. The model keeps the lines as copied.
		if destLine < len(wrapped) {
			replaceCells(wrapped[destLine].c, destCol, newCols, nullCell)
		}
		count := 0
		for k := len(wrapped) - 1; k > 0; k-- {
			if k > destLine || wrapped[k].trimmedLength() == 0 {
				count++
			} else {
				break
			}
		}
		if count > 0 {
			toRemove = append(toRemove, y+len(wrapped)-count, count)
		}
		y += len(wrapped) - 1
	}
	if len(toRemove) == 0 {
		return
	}
	// reflowLargerCreateNewLayout and ApplyNewLayout.
	kept := lines[:0:0]
	removed := 0
	next := 0
	for i := 0; i < len(lines); i++ {
		if next < len(toRemove) && toRemove[next] == i {
			n := toRemove[next+1]
			i += n - 1
			removed += n
			next += 2
			continue
		}
		kept = append(kept, lines[i])
	}
	st.lines = kept
	// _reflowLargerAdjustViewport.
	for n := removed; n > 0; n-- {
		if st.ybase == 0 {
			if st.y > 0 {
				st.y--
			}
			if len(st.lines) < newRows {
				st.lines = append(st.lines, newRline(newCols, false))
			}
		} else {
			st.ybase--
		}
	}
	st.savedY = max(st.savedY-removed, 0)
}

// newLineLengths is reflowSmallerGetNewLineLengths.
func newLineLengths(wrapped []*rline, oldCols, newCols int) []int {
	var out []int
	needed := 0
	for i := range wrapped {
		needed += wrappedTrimmedLength(wrapped, i, oldCols)
	}
	srcCol, srcLine, available := 0, 0, 0
	for available < needed {
		if needed-available < newCols {
			out = append(out, needed-available)
			break
		}
		srcCol += newCols
		oldTrimmed := wrappedTrimmedLength(wrapped, srcLine, oldCols)
		if srcCol > oldTrimmed {
			srcCol -= oldTrimmed
			srcLine++
		}
		endsWide := srcLine < len(wrapped) && wrapped[srcLine].width(srcCol-1) == 2
		if endsWide {
			srcCol--
		}
		n := newCols
		if endsWide {
			n--
		}
		out = append(out, n)
		available += n
	}
	return out
}

type insertion struct {
	start int
	lines []*rline
}

// reflowSmaller is Buffer._reflowSmaller.
func (st *resizeState) reflowSmaller(newCols, newRows int) {
	oldCols := st.oldCols
	var toInsert []insertion
	countToInsert := 0
	for y := len(st.lines) - 1; y >= 0; y-- {
		if y >= len(st.lines) {
			continue
		}
		next := st.lines[y]
		if !next.wrapped && next.trimmedLength() <= newCols {
			continue
		}
		wrapped := []*rline{next}
		for next.wrapped && y > 0 {
			y--
			next = st.lines[y]
			wrapped = append([]*rline{next}, wrapped...)
		}
		abs := st.ybase + st.y
		if abs >= y && abs < y+len(wrapped) {
			continue
		}
		lastLen := wrapped[len(wrapped)-1].trimmedLength()
		dest := newLineLengths(wrapped, oldCols, newCols)
		linesToAdd := len(dest) - len(wrapped)
		var trimmed int
		if st.ybase == 0 && st.y != len(st.lines)-1 {
			trimmed = max(0, st.y-st.maxLength+linesToAdd)
		} else {
			trimmed = max(0, len(st.lines)-st.maxLength+linesToAdd)
		}
		var added []*rline
		for i := 0; i < linesToAdd; i++ {
			added = append(added, newRline(newCols, true))
		}
		if len(added) > 0 {
			toInsert = append(toInsert, insertion{start: y + len(wrapped) + countToInsert, lines: added})
			countToInsert += len(added)
		}
		wrapped = append(wrapped, added...)
		// A group with no content (a wrapped first line, its predecessor
		// scrolled away) has no new lengths: xterm.js reads undefined for
		// destCol, and its copy loop stops at once (destLine < 0 below).
		destLine := len(dest) - 1
		destCol := 0
		if destLine >= 0 {
			destCol = dest[destLine]
		}
		if destCol == 0 {
			destLine--
			if destLine >= 0 {
				destCol = dest[destLine]
			}
		}
		srcLine := len(wrapped) - linesToAdd - 1
		srcCol := lastLen
		for srcLine >= 0 {
			n := min(srcCol, destCol)
			if destLine < 0 || destLine >= len(wrapped) {
				break
			}
			wrapped[destLine].copyFrom(wrapped[srcLine], srcCol-n, destCol-n, n, true)
			destCol -= n
			if destCol == 0 {
				destLine--
				if destLine >= 0 {
					destCol = dest[destLine]
				}
			}
			srcCol -= n
			if srcCol == 0 {
				srcLine--
				srcCol = wrappedTrimmedLength(wrapped, max(srcLine, 0), oldCols)
			}
		}
		for i := range wrapped {
			if i < len(dest) && dest[i] < newCols {
				wrapped[i].setCell(dest[i], nullCell)
			}
		}
		for adj := linesToAdd - trimmed; adj > 0; adj-- {
			if st.ybase == 0 {
				if st.y < newRows-1 {
					st.y++
					st.lines = st.lines[:len(st.lines)-1]
				} else {
					st.ybase++
				}
			} else if st.ybase < min(st.maxLength, len(st.lines)+countToInsert)-newRows {
				st.ybase++
			}
		}
		st.savedY = min(st.savedY+linesToAdd, st.ybase+newRows-1)
	}
	if len(toInsert) == 0 {
		return
	}
	orig := st.lines
	origLen := len(orig)
	newLen := min(st.maxLength, origLen+countToInsert)
	out := make([]*rline, newLen)
	origIdx := origLen - 1
	ni := 0
	inserted := 0
	for i := min(st.maxLength-1, origLen+countToInsert-1); i >= 0; i-- {
		if ni < len(toInsert) && toInsert[ni].start > origIdx+inserted {
			nl := toInsert[ni].lines
			for k := len(nl) - 1; k >= 0; k-- {
				if i >= 0 {
					out[i] = nl[k]
				}
				i--
			}
			i++
			inserted += len(nl)
			ni++
		} else {
			if origIdx >= 0 {
				out[i] = orig[origIdx]
			}
			origIdx--
		}
	}
	for i, l := range out {
		if l == nil {
			out[i] = newRline(oldCols, false)
		}
	}
	st.lines = out
}

// resizeTabs is BufferSet.setupTabStops(newCols): the stops kept, then one
// every 8 columns from the last stop before the new width.
func (b *buffer) resizeTabs(newCols int) {
	old := b.tabs
	b.tabs = make([]bool, newCols)
	copy(b.tabs, old)
	i := newCols
	if i >= len(old) || !old[i] {
		i--
		for i > 0 && (i >= len(old) || !old[i]) {
			i--
		}
		i = max(i, 0)
	}
	for ; i < newCols; i += 8 {
		b.tabs[i] = true
	}
}
