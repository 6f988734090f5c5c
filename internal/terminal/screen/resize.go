package screen

// Resize changes the terminal's size as xterm.js's Buffer.resize does
// (without reflow: see the package doc): rows added at the bottom come from
// scrollback when the cursor is on the last line, rows removed below the
// cursor are dropped and those above it go to scrollback, lines are cut or
// extended on the right, and the scroll regions reset. Resize allocates.
func (m *Model) Resize(cols, rows int) {
	cols, rows = clampSize(cols, rows)
	if cols == m.cols && rows == m.rows {
		return
	}
	m.normal.resize(cols, rows, m.scrollback)
	m.alt.resize(cols, rows, 0)
	m.cols, m.rows = cols, rows
}

func (b *buffer) resize(newCols, newRows, scrollback int) {
	oldCols := b.cols
	newSlots := newRows + scrollback
	if b.empty {
		// An unused alternate screen has no lines in xterm.js.
		b.alloc(newCols, newRows, newSlots)
		b.count = newRows
		b.scrollTop, b.scrollBottom = 0, newRows-1
		b.resizeTabs(newCols)
		return
	}
	// Work on a list of line slots (logical order), as xterm.js's
	// CircularList, then copy into fresh storage.
	lines := make([]int, b.count)
	for i := range lines {
		lines[i] = b.slot(i)
	}
	const blankLine = -1
	rows := b.rows
	ybase := b.count - b.rows
	addToY := 0
	if rows < newRows {
		for y := rows; y < newRows; y++ {
			if len(lines) < newRows+ybase {
				if ybase > 0 && len(lines) <= ybase+b.y+addToY+1 {
					ybase--
					addToY++
				} else {
					lines = append(lines, blankLine)
				}
			}
		}
	} else {
		for y := rows; y > newRows; y-- {
			if len(lines) > newRows+ybase {
				if len(lines) > ybase+b.y+1 {
					lines = lines[:len(lines)-1]
				} else {
					ybase++
				}
			}
		}
	}
	if trim := len(lines) - newSlots; trim > 0 {
		lines = lines[trim:]
		ybase = max(ybase-trim, 0)
		b.savedY = max(b.savedY-trim, 0)
	}
	b.x = min(b.x, newCols-1)
	b.y = min(b.y, newRows-1) + addToY
	b.savedX = min(b.savedX, newCols-1)
	b.scrollTop, b.scrollBottom = 0, newRows-1

	oldCells, oldWrapped := b.cells, b.wrapped
	b.alloc(newCols, newRows, newSlots)
	n := min(oldCols, newCols)
	for i, s := range lines {
		if s == blankLine {
			continue
		}
		copy(b.cells[i*newCols:i*newCols+n], oldCells[s*oldCols:s*oldCols+n])
		b.wrapped[i] = oldWrapped[s]
	}
	b.count = len(lines)
	if b.count < newRows { // cannot happen with the invariant count = ybase+rows; stay safe
		b.count = newRows
	}
	b.resizeTabs(newCols)
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
