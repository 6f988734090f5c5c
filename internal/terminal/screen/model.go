package screen

import (
	"bytes"
	"unicode/utf8"
)

// Parser states, those of xterm.js's EscapeSequenceParser (Paul Williams'
// DEC VT500 parser).
const (
	stGround uint8 = iota
	stEscape
	stEscInter
	stCSIEntry
	stCSIParam
	stCSIInter
	stCSIIgnore
	stSosPmApc
	stOSC
	stDCSEntry
	stDCSParam
	stDCSIgnore
	stDCSInter
	stDCSPass
)

const (
	maxParams    = 32 // as xterm.js's Params
	maxSubParams = 32
	maxParamVal  = 0x7FFFFFFF
	// MaxTitle bounds the window title kept (bytes of UTF-8). xterm.js keeps
	// up to 10 MB; longer titles are cut here.
	MaxTitle = 4096
	// maxCombined bounds the bytes of one cell's character with its combining
	// marks; further marks on that cell are dropped.
	maxCombined = 64
	// maxCombEntries bounds the combined characters a model holds (at most
	// 64 bytes each): cells beyond it get no more combining marks.
	maxCombEntries = 1 << 16
	maxCols        = 4096
	maxRows        = 4096
	// MaxScrollback bounds the scrollback lines a Model keeps.
	MaxScrollback = 100000
)

// Mouse protocols and encodings (xterm.js CoreMouseService).
const (
	mouseNone uint8 = iota
	mouseX10
	mouseVT200
	mouseDrag
	mouseAny
)

const (
	encDefault uint8 = iota
	encSGR
	encSGRPixels
)

// Model is a terminal screen: it is fed everything a program prints (Write)
// and can serialize its state as escape sequences (Snapshot). It follows
// xterm.js 6 (@xterm/headless) exactly where it can; see the package doc.
// A Model is not safe for concurrent use.
type Model struct {
	cols, rows int
	scrollback int

	normal, alt *buffer
	active      *buffer

	// Parser.
	state    uint8
	utf8buf  [4]byte
	utf8n    int
	collect  uint32
	params   [maxParams]int32
	subStart [maxParams]uint8 // index of the first sub-parameter of each param
	subEnd   [maxParams]uint8
	nparams  int
	subs     [maxSubParams]int32
	nsubs    int
	digitSub bool
	rejectD  bool
	rejectS  bool
	oscID    int // -1: none yet
	oscState uint8
	oscBuf   []byte // bounded by MaxTitle
	oscOver  bool
	join     uint8 // xterm.js precedingJoinState: width<<1 | shouldJoin

	// Current attributes: fg and bg as xterm.js's (bg with HAS_EXTENDED),
	// the underline style, and what printed cells get of them (cbg, clink).
	fg, bg     uint32
	ulStyle    uint8
	cbg, clink uint32

	// Modes.
	insert       bool
	appCursor    bool
	appKeypad    bool
	bracketed    bool
	origin       bool
	wrap         bool
	reverseWrap  bool
	sendFocus    bool
	syncOutput   bool
	cursorHidden bool
	mouseProto   uint8
	mouseEnc     uint8
	cursorStyle  uint8 // 0 unset, 1 block, 2 underline, 3 bar
	cursorBlink  uint8 // 0 unset, 1 steady, 2 blinking
	convertEol   bool

	// Character sets: designation final bytes (0 is the default US set).
	g       [4]byte
	glevel  uint8
	charset byte // the active set (normally g[glevel]; DECRC may change it alone)

	title    string
	titleSet bool

	// OSC 8 hyperlinks: cells carry a link number (content bits 24-31)
	// indexing links; linkBits is the current one, shifted in place.
	links    []string // "params;uri", index 0 unused
	linkBits uint32

	comb      []string          // combined characters, indexed from cell content
	combIndex map[string]uint32 // comb's entries by value
	combLive  int               // entries alive after the last compaction
	// combCache remembers recent joins (a cell's content and a combining
	// mark, and the combined character they made) so that the same
	// combined characters printed again need no string building and map
	// lookup. Emptied when comb's indexes change (combGen counts it).
	combCache [16]combJoin
	combGen   uint32
}

// combJoin is one entry of Model.combCache: key is the cell's content (code
// point or combined index) above the mark's code point.
type combJoin struct {
	key uint64
	idx uint32
}

// New returns a Model of a terminal cols wide and rows high keeping up to
// scrollback lines of history, in the power-on state. Sizes are clamped to
// at least 2x1 (xterm.js's minimum) and at most 4096x4096 and MaxScrollback.
func New(cols, rows, scrollback int) *Model {
	cols, rows = clampSize(cols, rows)
	scrollback = max(0, min(scrollback, MaxScrollback))
	m := &Model{cols: cols, rows: rows, scrollback: scrollback}
	m.normal = newBuffer(cols, rows, scrollback)
	m.alt = newBuffer(cols, rows, 0)
	m.alt.empty = true
	m.active = m.normal
	m.oscBuf = make([]byte, 0, 256)
	m.resetState()
	return m
}

func clampSize(cols, rows int) (int, int) {
	return max(2, min(cols, maxCols)), max(1, min(rows, maxRows))
}

// Size returns the terminal's size in cells.
func (m *Model) Size() (cols, rows int) { return m.cols, m.rows }

// Title returns the window title last set with OSC 0 or OSC 2.
func (m *Model) Title() string { return m.title }

func (m *Model) resetState() {
	m.fg, m.bg, m.ulStyle = 0, 0, 0
	m.insert, m.appCursor, m.appKeypad, m.bracketed = false, false, false, false
	m.origin, m.reverseWrap, m.sendFocus, m.syncOutput = false, false, false, false
	m.wrap = true
	m.cursorStyle, m.cursorBlink = 0, 0
	m.mouseProto, m.mouseEnc = mouseNone, encDefault
	m.g = [4]byte{}
	m.glevel, m.charset = 0, 0
	m.convertEol = false
	m.linkBits = 0
	m.cellAttrs()
}

// fullReset is RIS as @xterm/headless does it: a new terminal of the same
// size, except that the title and cursor visibility survive.
func (m *Model) fullReset() {
	m.normal = newBuffer(m.cols, m.rows, m.scrollback)
	m.alt = newBuffer(m.cols, m.rows, 0)
	m.alt.empty = true
	m.active = m.normal
	m.resetState()
	m.comb = m.comb[:0]
	clear(m.combIndex)
	m.combLive = 0
	m.combCache = [len(m.combCache)]combJoin{}
	m.combGen++
	m.links = m.links[:0]
}

func (m *Model) eraseCell() cell { return cell{nullContent, 0, m.bg & colorBits} }

// Write feeds the model bytes the program printed. It never fails; malformed
// input is handled as xterm.js handles it. Steady-state writes do not
// allocate.
func (m *Model) Write(p []byte) (int, error) {
	n := len(p)
	i := 0
	if m.utf8n > 0 {
		i = m.finishUTF8(p)
	}
	for i < n {
		b := p[i]
		if m.state == stGround && (b >= 0x20 && b < 0x7f || b >= 0xC2) {
			i = m.printRun(p, i)
			continue
		}
		if m.state == stGround && b < 0x20 {
			// The commonest controls, without the general dispatch.
			switch b {
			case '\n':
				m.join = 0
				m.lineFeed()
				i++
				continue
			case '\r':
				m.join = 0
				m.active.x = 0
				i++
				continue
			}
		}
		if b == 0x1B && m.state == stGround {
			if j := m.fastCSI(p, i); j > i {
				i = j
				continue
			}
		}
		if b < 0x80 {
			m.handle(uint32(b))
			i++
			continue
		}
		cp, size, ok := decodeUTF8(p[i:])
		if size == 0 { // incomplete at the end
			m.utf8n = copy(m.utf8buf[:], p[i:])
			return n, nil
		}
		i += size
		if ok {
			m.handle(cp)
		}
	}
	return n, nil
}

// finishUTF8 completes a character split across writes and returns how many
// bytes of p it used.
func (m *Model) finishUTF8(p []byte) int {
	var tmp [8]byte
	k := copy(tmp[:], m.utf8buf[:m.utf8n])
	used := copy(tmp[k:], p[:min(len(p), 4-k)])
	cp, size, ok := decodeUTF8(tmp[:k+used])
	if size == 0 {
		m.utf8n = k + used
		copy(m.utf8buf[:], tmp[:k+used])
		return len(p)
	}
	m.utf8n = 0
	if ok {
		if m.state == stGround && cp >= 0xA0 {
			m.printStart()
			m.printCP(cp)
			m.printEnd()
		} else {
			m.handle(cp)
		}
	}
	if size <= k { // the pending bytes alone were rejected; p starts afresh
		return 0
	}
	return size - k
}

// decodeUTF8 decodes one character the way xterm.js's Utf8ToUtf32 does:
// invalid bytes are skipped (ok false, size the bytes skipped), and size 0
// means p ends inside a character.
func decodeUTF8(p []byte) (cp uint32, size int, ok bool) {
	b1 := p[0]
	if b1 < 0x80 {
		return uint32(b1), 1, true
	}
	// Complete, valid sequences, nearly all there are, with no loop; the
	// rest (invalid, overlong, cut) take decodeUTF8Slow.
	switch {
	case b1 >= 0xC2 && b1 < 0xE0 && len(p) >= 2 && p[1]&0xC0 == 0x80:
		return uint32(b1&0x1F)<<6 | uint32(p[1]&0x3F), 2, true
	case b1&0xF0 == 0xE0 && len(p) >= 3 && p[1]&0xC0 == 0x80 && p[2]&0xC0 == 0x80:
		cp = uint32(b1&0x0F)<<12 | uint32(p[1]&0x3F)<<6 | uint32(p[2]&0x3F)
		if cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) && cp != 0xFEFF {
			return cp, 3, true
		}
	case b1&0xF8 == 0xF0 && len(p) >= 4 && p[1]&0xC0 == 0x80 && p[2]&0xC0 == 0x80 && p[3]&0xC0 == 0x80:
		cp = uint32(b1&0x07)<<18 | uint32(p[1]&0x3F)<<12 | uint32(p[2]&0x3F)<<6 | uint32(p[3]&0x3F)
		if cp >= 0x10000 && cp <= 0x10FFFF {
			return cp, 4, true
		}
	}
	return decodeUTF8Slow(p)
}

// decodeUTF8Slow is decodeUTF8 for a sequence that is not complete and valid.
func decodeUTF8Slow(p []byte) (cp uint32, size int, ok bool) {
	b1 := p[0]
	cont := func(i int) int { // 1 continuation, 0 missing, -1 not a continuation
		if i >= len(p) {
			return 0
		}
		if p[i]&0xC0 != 0x80 {
			return -1
		}
		return 1
	}
	switch {
	case b1&0xE0 == 0xC0:
		switch cont(1) {
		case 0:
			return 0, 0, false
		case -1:
			return 0, 1, false
		}
		cp = uint32(b1&0x1F)<<6 | uint32(p[1]&0x3F)
		if cp < 0x80 {
			return 0, 1, false
		}
		return cp, 2, true
	case b1&0xF0 == 0xE0:
		for i := 1; i < 3; i++ {
			switch cont(i) {
			case 0:
				return 0, 0, false
			case -1:
				return 0, i, false
			}
		}
		cp = uint32(b1&0x0F)<<12 | uint32(p[1]&0x3F)<<6 | uint32(p[2]&0x3F)
		if cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFEFF {
			return 0, 3, false
		}
		return cp, 3, true
	case b1&0xF8 == 0xF0:
		for i := 1; i < 4; i++ {
			switch cont(i) {
			case 0:
				return 0, 0, false
			case -1:
				return 0, i, false
			}
		}
		cp = uint32(b1&0x07)<<18 | uint32(p[1]&0x3F)<<12 | uint32(p[2]&0x3F)<<6 | uint32(p[3]&0x3F)
		if cp < 0x10000 || cp > 0x10FFFF {
			return 0, 4, false
		}
		return cp, 4, true
	}
	return 0, 1, false
}

// printRun prints the run of printable characters starting at p[i] and
// returns the index after it. A control character or escape ending the run is
// left for the caller.
func (m *Model) printRun(p []byte, i int) int {
	started := false
	b := m.active
	n := len(p)
	// row is the cursor's row while no line has moved since it was looked
	// up (nil: look it up again), so that a run of wide characters does not
	// look its row up for each.
	var row []cell
	for i < n {
		c := p[i]
		if c >= 0x20 && c < 0x7f {
			if !started {
				m.printStart()
				started = true
			}
			if m.charset != 0 || m.insert {
				m.printCP(uint32(c))
				row = nil
				i++
				continue
			}
			// Fast path: plain ASCII into the current row.
			row = b.row(b.y)
			x := b.x
			fg, bg, lk := m.fg, m.cbg, m.clink
			cols := b.cols
			for i < n {
				if x >= cols {
					if c = p[i]; c < 0x20 || c >= 0x7f {
						break
					}
					b.x = x
					m.wrapForPrint(1, 0)
					x = b.x
					row = b.row(b.y)
					if x >= cols { // no wraparound: overwrite the last column
						row[cols-1] = cell{uint32(c) | 1<<widthShift | lk, fg, bg}
						x = cols
						i++
						continue
					}
				}
				// Copy the run that fits on the row, in a loop the
				// compiler can check bounds for once.
				src := p[i:min(n, i+cols-x)]
				dst := row[x:cols]
				dst = dst[:len(src)]
				k := 0
				for ; k < len(src); k++ {
					c := src[k]
					if c < 0x20 || c >= 0x7f {
						break
					}
					dst[k] = cell{uint32(c) | 1<<widthShift | lk, fg, bg}
				}
				x += k
				i += k
				if k < len(src) {
					break
				}
			}
			b.x = x
			m.join = 1 << 1
			continue
		}
		if c < 0x80 {
			break
		}
		cp, size, ok := decodeUTF8(p[i:])
		if size == 0 {
			m.utf8n = copy(m.utf8buf[:], p[i:])
			if started {
				m.printEnd()
			}
			return n
		}
		if !ok {
			i += size
			continue
		}
		if cp < 0xA0 { // a C1 control ends the run
			if started {
				m.printEnd()
			}
			m.handle(cp)
			return i + size
		}
		if !started {
			m.printStart()
			started = true
		}
		i += size
		// Fast path: a character of width 1 or 2 that fits on the row, not
		// inserted: what printCP does for it (character sets map only
		// ASCII).
		if w := wcwidth(cp); w != 0 && !m.insert && b.x+w <= b.cols {
			if row == nil {
				row = b.row(b.y)
			}
			x := b.x
			row[x] = cell{cp | uint32(w)<<widthShift | m.clink, m.fg, m.cbg}
			if w == 2 {
				row[x+1] = cell{m.clink, m.fg, m.cbg}
			}
			b.x = x + w
			m.join = uint8(w << 1)
			continue
		}
		m.printCP(cp)
		row = nil
	}
	if started {
		m.printEnd()
	}
	return i
}

// printStart and printEnd are the wide-character repairs xterm.js does at the
// start and end of every print call.
func (m *Model) printStart() {
	b := m.active
	if b.x > 0 && b.x <= b.cols {
		row := b.row(b.y)
		if row[b.x-1].width() == 2 {
			row[b.x-1] = cell{nullContent | m.clink, m.fg, m.cbg}
		}
	}
}

func (m *Model) printEnd() {
	b := m.active
	if b.x < b.cols {
		row := b.row(b.y)
		if c := row[b.x]; c.width() == 0 && !c.hasContent() {
			row[b.x] = cell{nullContent | m.clink, m.fg, m.cbg}
		}
	}
}

// wrapForPrint handles a character of width w that does not fit on the row
// (xterm.js print, "goto next line if ch would overflow").
func (m *Model) wrapForPrint(w, oldWidth int) {
	b := m.active
	cols := b.cols
	if !m.wrap {
		b.x = cols - 1
		return
	}
	oldRow := b.row(b.y)
	oldCol := b.x - oldWidth
	b.x = oldWidth
	b.y++
	if b.y == b.scrollBottom+1 {
		b.y--
		b.scroll(m.eraseCell(), true)
	} else {
		if b.y >= b.rows {
			b.y = b.rows - 1
		}
		*b.rowWrapped(b.y) = true
	}
	row := b.row(b.y)
	if oldWidth > 0 && oldCol >= 0 && oldCol+oldWidth <= cols {
		copy(row[:oldWidth], oldRow[oldCol:oldCol+oldWidth])
	}
	for oldCol = max(oldCol, 0); oldCol < cols; oldCol++ {
		oldRow[oldCol] = cell{nullContent | m.clink, m.fg, m.cbg}
	}
}

// printCP prints one code point (xterm.js InputHandler.print's loop body).
func (m *Model) printCP(cp uint32) {
	b := m.active
	if cp < 127 && m.charset != 0 {
		if t := charsetTables[m.charset]; t != nil && cp >= 32 {
			if r := t[cp-32]; r != 0 {
				cp = uint32(r)
			}
		}
	}
	w := wcwidth(cp)
	join := false
	oldWidth := 0
	if w == 0 && m.join != 0 {
		if pw := int(m.join >> 1 & 3); pw != 0 {
			join = true
			oldWidth = pw
			w = max(w, pw)
		}
	}
	m.join = uint8(w<<1) | b2u8(join)
	cols := b.cols
	if b.x+w-oldWidth > cols {
		if m.wrap {
			m.wrapForPrint(w, oldWidth)
		} else {
			b.x = cols - 1
			if w == 2 {
				return
			}
		}
	}
	row := b.row(b.y)
	if join && b.x > 0 {
		off := 1
		if b.x-1 < cols && row[b.x-1].width() == 0 {
			off = 2
		}
		if k := b.x - off; k >= 0 && k < cols {
			m.addCodepoint(&row[k], cp, w)
		}
		for d := w - oldWidth; d > 0; d-- {
			if b.x < cols {
				row[b.x] = cell{m.clink, m.fg, m.cbg}
			}
			b.x++
		}
		return
	}
	if m.insert {
		insertCells(row, b.x, w-oldWidth, cell{nullContent | m.clink, m.fg, m.cbg})
		if row[cols-1].width() == 2 {
			row[cols-1] = cell{nullContent | m.clink, m.fg, m.cbg}
		}
	}
	if b.x < cols {
		row[b.x] = cell{cp | uint32(w)<<widthShift | m.clink, m.fg, m.cbg}
	}
	if b.x < 2*cols {
		b.x++
	}
	for ; w > 1; w-- {
		if b.x < cols {
			row[b.x] = cell{m.clink, m.fg, m.cbg}
		}
		b.x++
	}
}

func b2u8(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// addCodepoint is BufferLine.addCodepointToCell.
func (m *Model) addCodepoint(c *cell, cp uint32, w int) {
	content := c.c
	if content&contentMask == 0 {
		content = content&linkMask | cp | 1<<widthShift
	} else if idx, ok := m.combine(content, cp); ok {
		content = content&^codeMask | isCombined | idx
	}
	if w != 0 {
		content = content&^(3<<widthShift) | uint32(w)<<widthShift
	}
	c.c = content
}

// combine returns the index in comb of the characters of content (a code
// point or a combined character) followed by the mark cp; false when the
// mark is dropped (too long a character, or the table full).
func (m *Model) combine(content, cp uint32) (uint32, bool) {
	key := uint64(content&contentMask)<<32 | uint64(cp)
	e := &m.combCache[(content*31+cp)%uint32(len(m.combCache))]
	if e.key == key { // key is never 0: content is not empty
		return e.idx, true
	}
	var buf [maxCombined + 8]byte
	var b []byte
	if content&isCombined != 0 {
		s := m.comb[content&codeMask]
		if len(s)+utf8.RuneLen(rune(cp)) > maxCombined {
			return 0, false
		}
		b = utf8.AppendRune(append(buf[:0], s...), rune(cp))
	} else {
		b = utf8.AppendRune(utf8.AppendRune(buf[:0], rune(content&codeMask)), rune(cp))
	}
	gen := m.combGen
	idx, ok := m.newComb(b)
	if ok && gen == m.combGen { // else a compaction renumbered content's index
		*e = combJoin{key, idx}
	}
	return idx, ok
}

// newComb stores a combined character and returns its index, or false when
// the table is full (the combining mark is then dropped).
// The same character reuses its entry (cells may share one), so a program
// printing the same combined characters over and over does not allocate.
func (m *Model) newComb(b []byte) (uint32, bool) {
	if idx, ok := m.combIndex[string(b)]; ok {
		return idx, true
	}
	if len(m.comb) >= 2*m.combLive+1024 || len(m.comb) >= maxCombEntries {
		m.compactComb()
		if len(m.comb) >= maxCombEntries {
			return 0, false
		}
	}
	s := string(b)
	m.comb = append(m.comb, s)
	idx := uint32(len(m.comb) - 1)
	if m.combIndex == nil {
		m.combIndex = make(map[string]uint32)
	}
	m.combIndex[s] = idx
	return idx, true
}

// compactComb drops combined characters no cell refers to any more, so the
// table stays bounded by the number of cells.
func (m *Model) compactComb() {
	old := m.comb
	fresh := make([]string, 0, len(old)/2+16)
	remap := make(map[uint32]uint32)
	visit := func(cells []cell) {
		for i := range cells {
			c := cells[i].c
			if c&isCombined == 0 {
				continue
			}
			idx := c & codeMask
			ni, ok := remap[idx]
			if !ok {
				ni = uint32(len(fresh))
				if int(idx) < len(old) {
					fresh = append(fresh, old[idx])
				} else {
					fresh = append(fresh, "")
				}
				remap[idx] = ni
			}
			cells[i].c = c&^codeMask | ni
		}
	}
	visit(m.normal.cells)
	visit(m.alt.cells)
	m.comb = fresh
	m.combLive = len(fresh)
	m.combCache = [len(m.combCache)]combJoin{}
	m.combGen++
	clear(m.combIndex)
	for i, s := range fresh {
		m.combIndex[s] = uint32(i)
	}
}

// cellString appends the characters of c to dst.
func (m *Model) cellString(dst []byte, c cell) []byte {
	if c.c&isCombined != 0 {
		if idx := int(c.c & codeMask); idx < len(m.comb) {
			return append(dst, m.comb[idx]...)
		}
		return dst
	}
	if cp := c.c & codeMask; cp != 0 {
		return utf8.AppendRune(dst, rune(cp))
	}
	return dst
}

// handle runs one code point through the parser outside the print fast path.
func (m *Model) handle(cp uint32) {
	// "Anywhere" transitions.
	switch {
	case cp == 0x18 || cp == 0x1A:
		switch m.state {
		case stOSC:
			m.oscEnd(false)
		case stDCSPass:
		}
		m.join = 0
		m.state = stGround
		return
	case cp == 0x1B:
		switch m.state {
		case stOSC:
			m.oscEnd(true)
		case stDCSPass:
		}
		if m.state == stOSC || m.state == stDCSPass {
			m.join = 0
		}
		m.clear()
		m.state = stEscape
		return
	case cp >= 0x80 && cp < 0xA0:
		switch cp {
		case 0x9C:
			if m.state == stOSC {
				m.oscEnd(true)
				m.join = 0
			} else if m.state == stDCSPass {
				m.join = 0
			}
			m.state = stGround
		case 0x9D:
			m.oscStart()
			m.state = stOSC
		case 0x98, 0x9E, 0x9F:
			m.state = stSosPmApc
		case 0x9B:
			m.clear()
			m.state = stCSIEntry
		case 0x90:
			m.clear()
			m.state = stDCSEntry
		default:
			m.execute(cp)
			m.state = stGround
		}
		return
	}
	nonASCII := cp >= 0xA0
	switch m.state {
	case stGround:
		switch {
		case nonASCII || (cp >= 0x20 && cp < 0x7f):
			m.printStart()
			m.printCP(cp)
			m.printEnd()
		case cp < 0x20:
			m.execute(cp)
		}
	case stEscape:
		switch {
		case nonASCII:
			m.state = stGround
		case cp < 0x20:
			m.execute(cp)
		case cp == 0x7f:
		case cp < 0x30:
			m.collect = m.collect<<8 | cp
			m.state = stEscInter
		case cp == 'P':
			m.clear()
			m.state = stDCSEntry
		case cp == '[':
			m.clear()
			m.state = stCSIEntry
		case cp == ']':
			m.oscStart()
			m.state = stOSC
		case cp == 'X' || cp == '^' || cp == '_':
			m.state = stSosPmApc
		default:
			m.state = stGround
			m.escDispatch(byte(cp))
			m.join = 0
		}
	case stEscInter:
		switch {
		case nonASCII:
			m.state = stGround
		case cp < 0x20:
			m.execute(cp)
		case cp == 0x7f:
		case cp < 0x30:
			m.collect = m.collect<<8 | cp
		default:
			m.state = stGround
			m.escDispatch(byte(cp))
			m.join = 0
		}
	case stCSIEntry, stCSIParam:
		switch {
		case nonASCII:
			m.state = stGround
		case cp < 0x20:
			m.execute(cp)
		case cp == 0x7f:
		case cp >= 0x30 && cp <= 0x3b:
			m.param(cp)
			m.state = stCSIParam
		case cp >= 0x3c && cp <= 0x3f:
			if m.state == stCSIEntry {
				m.collect = m.collect<<8 | cp
				m.state = stCSIParam
			} else {
				m.state = stCSIIgnore
			}
		case cp < 0x30:
			m.collect = m.collect<<8 | cp
			m.state = stCSIInter
		default:
			m.state = stGround
			m.csiDispatch(byte(cp))
			m.join = 0
		}
	case stCSIInter:
		switch {
		case nonASCII:
			m.state = stGround
		case cp < 0x20:
			m.execute(cp)
		case cp == 0x7f:
		case cp < 0x30:
			m.collect = m.collect<<8 | cp
		case cp < 0x40:
			m.state = stCSIIgnore
		default:
			m.state = stGround
			m.csiDispatch(byte(cp))
			m.join = 0
		}
	case stCSIIgnore:
		switch {
		case nonASCII:
		case cp < 0x20:
			m.execute(cp)
		case cp >= 0x40 && cp < 0x7f:
			m.state = stGround
		}
	case stSosPmApc:
		if nonASCII {
			m.state = stGround
		}
	case stOSC:
		switch {
		case cp == 0x07:
			m.oscEnd(true)
			m.join = 0
			m.state = stGround
		case cp < 0x20:
		default:
			m.oscPut(cp)
		}
	case stDCSEntry, stDCSParam, stDCSInter:
		switch {
		case nonASCII:
			m.state = stGround
		case cp < 0x20 || cp == 0x7f:
		case m.state == stDCSEntry && cp >= 0x3c && cp <= 0x3f:
			m.state = stDCSParam
		case cp >= 0x3c && cp <= 0x3f:
			m.state = stDCSIgnore
		case cp < 0x30:
			m.state = stDCSInter
		case cp < 0x40:
			if m.state == stDCSInter {
				m.state = stDCSIgnore
			} else {
				m.state = stDCSParam
			}
		default:
			m.state = stDCSPass
		}
	case stDCSIgnore, stDCSPass:
		// Consumed; only the anywhere transitions end these.
	}
}

func (m *Model) clear() {
	m.collect = 0
	m.nparams = 1
	m.params[0] = 0
	m.subStart[0], m.subEnd[0] = 0, 0
	m.nsubs = 0
	m.digitSub, m.rejectD, m.rejectS = false, false, false
}

// param feeds a parameter byte (digit, ';' or ':') into xterm.js's Params.
func (m *Model) param(cp uint32) {
	switch cp {
	case ';':
		m.digitSub = false
		if m.nparams >= maxParams {
			m.rejectD = true
			return
		}
		m.subStart[m.nparams] = uint8(m.nsubs)
		m.subEnd[m.nparams] = uint8(m.nsubs)
		m.params[m.nparams] = 0
		m.nparams++
	case ':':
		m.digitSub = true
		if m.nparams == 0 {
			return
		}
		if m.rejectD || m.nsubs >= maxSubParams {
			m.rejectS = true
			return
		}
		m.subs[m.nsubs] = -1
		m.nsubs++
		m.subEnd[m.nparams-1]++
	default:
		d := int64(cp - '0')
		if m.rejectD || (m.digitSub && m.rejectS) {
			return
		}
		var v *int32
		if m.digitSub {
			if m.nsubs == 0 {
				return
			}
			v = &m.subs[m.nsubs-1]
		} else {
			if m.nparams == 0 {
				return
			}
			v = &m.params[m.nparams-1]
		}
		if *v == -1 {
			*v = int32(d)
		} else {
			*v = int32(min(int64(*v)*10+d, maxParamVal))
		}
	}
}

// p returns parameter i, or 0 when absent.
func (m *Model) p(i int) int {
	if i < m.nparams {
		return int(m.params[i])
	}
	return 0
}

// p1 returns parameter 0 defaulting to 1 (xterm.js's `params[0] || 1`).
func (m *Model) p1() int {
	if v := m.p(0); v != 0 {
		return v
	}
	return 1
}

func (m *Model) subParams(i int) []int32 {
	if i >= m.nparams {
		return nil
	}
	return m.subs[m.subStart[i]:m.subEnd[i]]
}

func (m *Model) oscStart() {
	m.oscState = 1 // id
	m.oscID = -1
	m.oscBuf = m.oscBuf[:0]
	m.oscOver = false
}

func (m *Model) oscPut(cp uint32) {
	switch m.oscState {
	case 1:
		if cp == ';' {
			m.oscState = 2
			return
		}
		if cp < '0' || cp > '9' {
			m.oscState = 3 // abort
			return
		}
		if m.oscID == -1 {
			m.oscID = 0
		}
		if m.oscID < 1e6 {
			m.oscID = m.oscID*10 + int(cp-'0')
		}
	case 2:
		if m.oscID != 0 && m.oscID != 2 && m.oscID != 8 {
			return
		}
		if len(m.oscBuf)+4 > MaxTitle {
			m.oscOver = true
			return
		}
		m.oscBuf = utf8.AppendRune(m.oscBuf, rune(cp))
	}
}

func (m *Model) oscEnd(success bool) {
	st := m.oscState
	m.oscState = 0
	if st == 0 || st == 3 || !success {
		return
	}
	if m.oscID == 8 {
		if !m.oscOver {
			m.hyperlink(m.oscBuf)
		}
		return
	}
	if m.oscID == 0 || m.oscID == 2 {
		if m.title != string(m.oscBuf) {
			m.title = string(m.oscBuf)
		}
		m.titleSet = true
	}
}

// execute runs a C0 or C1 control.
func (m *Model) execute(cp uint32) {
	m.join = 0
	b := m.active
	switch cp {
	case 0x0A, 0x0B, 0x0C:
		m.lineFeed()
	case 0x0D:
		b.x = 0
	case 0x08:
		m.backspace()
	case 0x09:
		if b.x < b.cols {
			b.x = b.nextStop(b.x)
		}
	case 0x0E:
		m.setGLevel(1)
	case 0x0F:
		m.setGLevel(0)
	case 0x84: // IND
		m.index()
	case 0x85: // NEL
		b.x = 0
		m.index()
	case 0x88: // HTS
		if b.x < b.cols {
			b.tabs[b.x] = true
		}
	}
}

func (m *Model) lineFeed() {
	b := m.active
	if m.convertEol {
		b.x = 0
	}
	b.y++
	if b.y == b.scrollBottom+1 {
		b.y--
		b.scroll(m.eraseCell(), false)
	} else if b.y >= b.rows {
		b.y = b.rows - 1
	} else {
		*b.rowWrapped(b.y) = false
	}
	if b.x >= b.cols {
		b.x--
	}
}

func (m *Model) backspace() {
	b := m.active
	if !m.reverseWrap {
		m.restrictCursor(b.cols - 1)
		if b.x > 0 {
			b.x--
		}
		return
	}
	m.restrictCursor(b.cols)
	if b.x > 0 {
		b.x--
	} else if b.y > b.scrollTop && b.y <= b.scrollBottom && *b.rowWrapped(b.y) {
		*b.rowWrapped(b.y) = false
		b.y--
		b.x = b.cols - 1
		if c := b.row(b.y)[b.x]; c.width() != 0 && !c.hasContent() {
			b.x--
		}
	}
	m.restrictCursor(b.cols - 1)
}

func (m *Model) restrictCursor(maxCol int) {
	b := m.active
	b.x = min(maxCol, max(0, b.x))
	if m.origin {
		b.y = min(b.scrollBottom, max(b.scrollTop, b.y))
	} else {
		b.y = min(b.rows-1, max(0, b.y))
	}
}

func (m *Model) setCursor(x, y int) {
	b := m.active
	if m.origin {
		b.x, b.y = x, b.scrollTop+y
	} else {
		b.x, b.y = x, y
	}
	m.restrictCursor(b.cols - 1)
}

func (m *Model) moveCursor(dx, dy int) {
	b := m.active
	m.restrictCursor(b.cols - 1)
	m.setCursor(b.x+dx, b.y+dy)
}

func (m *Model) index() {
	b := m.active
	m.restrictCursor(b.cols - 1)
	b.y++
	if b.y == b.scrollBottom+1 {
		b.y--
		b.scroll(m.eraseCell(), false)
	} else if b.y >= b.rows {
		b.y = b.rows - 1
	}
	m.restrictCursor(b.cols - 1)
}

func (m *Model) reverseIndex() {
	b := m.active
	m.restrictCursor(b.cols - 1)
	if b.y == b.scrollTop {
		ybase := b.ybase()
		b.shiftLines(ybase+b.scrollBottom, ybase+b.scrollTop, 1, m.eraseCell())
	} else {
		b.y--
		m.restrictCursor(b.cols - 1)
	}
}

func (m *Model) setGLevel(l uint8) {
	m.glevel = l
	m.charset = m.g[l]
}

func (m *Model) setGCharset(g uint8, cs byte) {
	m.g[g] = cs
	if m.glevel == g {
		m.charset = cs
	}
}

func (m *Model) saveCursor() {
	b := m.active
	b.savedX = b.x
	b.savedY = b.ybase() + b.y
	b.savedFg, b.savedBg = m.fg, m.bg
	b.savedCharset = m.charset
}

func (m *Model) restoreCursor() {
	b := m.active
	b.x = b.savedX
	b.y = max(b.savedY-b.ybase(), 0)
	m.fg, m.bg = b.savedFg, b.savedBg
	m.cellAttrs()
	m.charset = b.savedCharset
	m.restrictCursor(b.cols - 1)
}

func (m *Model) escDispatch(final byte) {
	b := m.active
	switch m.collect {
	case 0:
		switch final {
		case '7':
			m.saveCursor()
		case '8':
			m.restoreCursor()
		case 'D':
			m.index()
		case 'E':
			b.x = 0
			m.index()
		case 'H':
			if b.x < b.cols {
				b.tabs[b.x] = true
			}
		case 'M':
			m.reverseIndex()
		case '=':
			m.appKeypad = true
		case '>':
			m.appKeypad = false
		case 'c':
			m.fullReset()
		case 'n', '}':
			m.setGLevel(2)
		case 'o', '|':
			m.setGLevel(3)
		case '~':
			m.setGLevel(1)
		}
	case '%':
		if final == '@' || final == 'G' {
			m.setGLevel(0)
			m.setGCharset(0, 0)
		}
	case '(', ')', '*', '+', '-', '.':
		if final == 'B' {
			m.setGCharset(glevelOf(byte(m.collect)), 0)
		} else if _, ok := charsetTables[final]; ok {
			m.setGCharset(glevelOf(byte(m.collect)), final)
		}
	case '#':
		if final == '8' {
			m.screenAlignment()
		}
	}
}

func glevelOf(c byte) uint8 {
	switch c {
	case '(':
		return 0
	case ')', '-':
		return 1
	case '*', '.':
		return 2
	}
	return 3
}

func (m *Model) screenAlignment() {
	b := m.active
	m.setCursor(0, 0)
	e := cell{'E' | 1<<widthShift, m.fg, m.bg &^ bgHasExt}
	// xterm.js fills rows lines from the cursor's, indexing its circular
	// line list past the end, which wraps to the oldest lines when the list
	// is full (with origin mode on, say): do the same.
	ybase := b.ybase()
	for k := 0; k < b.rows; k++ {
		idx := ybase + b.y + k
		j := idx % b.slots
		if idx < b.count || (idx >= b.slots && j < b.count) {
			b.fill(b.line(j), e)
			b.wrapped[b.slot(j)] = false
		}
	}
	m.setCursor(0, 0)
}

// fastCSI parses a whole well-formed CSI sequence (ESC [ ... final) at p[i]
// in one go, the common case, and returns the index after it; it returns i
// when the sequence is not complete in p or not plain (controls or errors
// inside), leaving it to the byte-by-byte parser.
func (m *Model) fastCSI(p []byte, i int) int {
	n := len(p)
	j := i + 1
	if j >= n || p[j] != '[' {
		return i
	}
	j++
	m.clear()
	if j < n && p[j] >= 0x3c && p[j] <= 0x3f {
		m.collect = uint32(p[j])
		j++
	}
	for j < n {
		c := p[j]
		switch {
		case c >= '0' && c <= '9':
			if !m.digitSub && !m.rejectD {
				// Accumulate the digits of a plain parameter at once.
				v := int64(m.params[m.nparams-1])
				for ; j < n && p[j] >= '0' && p[j] <= '9'; j++ {
					v = min(v*10+int64(p[j]-'0'), maxParamVal)
				}
				m.params[m.nparams-1] = int32(v)
				continue
			}
			m.param(uint32(c))
		case c == ';' || c == ':':
			m.param(uint32(c))
		case c >= 0x20 && c < 0x30:
			m.collect = m.collect<<8 | uint32(c)
			for j++; j < n && p[j] >= 0x20 && p[j] < 0x30; j++ {
				m.collect = m.collect<<8 | uint32(p[j])
			}
			if j >= n || p[j] < 0x40 || p[j] >= 0x7f {
				return i
			}
			m.csiDispatch(p[j])
			m.join = 0
			return j + 1
		case c >= 0x40 && c < 0x7f:
			m.csiDispatch(c)
			m.join = 0
			return j + 1
		default:
			return i
		}
		j++
	}
	return i
}

// hyperlink is InputHandler.setHyperlink for OSC 8 ; params ; uri.
func (m *Model) hyperlink(data []byte) {
	i := bytes.IndexByte(data, ';')
	if i < 0 {
		return
	}
	params, uri := data[:i], data[i+1:]
	if len(uri) == 0 {
		if len(bytes.TrimSpace(params)) == 0 {
			m.linkBits = 0
			m.updateExtended()
		}
		return
	}
	m.linkBits = uint32(m.linkID(data)) << linkShift
	m.updateExtended()
}

// updateExtended is AttributeData.updateExtended: the current attributes
// carry their underline style and hyperlink into the cells printed only
// while bg has HAS_EXTENDED, which is recomputed here, while DECRC restores
// it with bg. (xterm.js shows a linked cell underlined.)
func (m *Model) updateExtended() {
	if m.ulStyle == 0 && m.linkBits == 0 {
		m.bg &^= bgHasExt
	} else {
		m.bg |= bgHasExt
	}
	m.cellAttrs()
}

// cellAttrs computes the attributes printed cells get from the current ones.
func (m *Model) cellAttrs() {
	m.cbg = m.bg &^ bgHasExt
	m.clink = 0
	if m.bg&bgHasExt != 0 {
		m.cbg = withULStyle(m.cbg, uint32(m.ulStyle))
		m.clink = m.linkBits
	}
}

// linkID returns the number of link "params;uri", adding it when new; 0 when
// the table is full even after dropping links no cell uses.
func (m *Model) linkID(link []byte) int {
	if len(m.links) == 0 {
		m.links = append(m.links, "")
	}
	for i := 1; i < len(m.links); i++ {
		if m.links[i] == string(link) {
			return i
		}
	}
	if len(m.links) > maxLinks {
		m.compactLinks()
		if len(m.links) > maxLinks {
			return 0
		}
	}
	m.links = append(m.links, string(link))
	return len(m.links) - 1
}

// compactLinks drops the links no cell (and not the current attributes)
// refers to and renumbers the rest.
func (m *Model) compactLinks() {
	var used [maxLinks + 1]bool
	used[m.linkBits>>linkShift] = true
	for _, b := range []*buffer{m.normal, m.alt} {
		for i := range b.cells {
			used[b.cells[i].c>>linkShift] = true
		}
	}
	var remap [maxLinks + 1]uint32
	fresh := []string{""}
	for i := 1; i < len(m.links); i++ {
		if used[i] {
			remap[i] = uint32(len(fresh))
			fresh = append(fresh, m.links[i])
		}
	}
	for _, b := range []*buffer{m.normal, m.alt} {
		for i := range b.cells {
			c := &b.cells[i]
			c.c = c.c&^linkMask | remap[c.c>>linkShift]<<linkShift
		}
	}
	m.linkBits = remap[m.linkBits>>linkShift] << linkShift
	m.links = fresh
	m.cellAttrs()
}
