package terminal

import (
	"encoding/binary"
	"strconv"
)

// This file holds the small VT state machine that runs over everything the
// program prints. It does not render anything: it only answers two questions
// for the replay logic, "is this offset a safe place to start a replay?" (the
// parser is in ground state and not inside a UTF-8 character) and "which
// terminal modes are on here?". The state names follow Paul Williams' DEC
// VT500 parser (vt100.net/emu/dec_ansi_parser), with UTF-8 decoded first and
// C1 code points treated the way xterm.js (the likely front end) treats them.

// modeSet is a bit set of the terminal modes a replay must restore because
// they change how the terminal renders output or what it sends as input.
// The zero value is the power-on state, so a fresh parser needs no setup and
// a prefix only has to mention bits that are set.
type modeSet uint32

const (
	modeAltScreen1049  modeSet = 1 << iota // ?1049: alternate screen, cursor saved
	modeAltScreen1047                      // ?1047: alternate screen
	modeAltScreen47                        // ?47: alternate screen (old form)
	modeAppCursor                          // ?1: application cursor keys (DECCKM)
	modeCursorHidden                       // ?25 reset: the cursor is hidden (inverted so zero is the default)
	modeMouseX10                           // ?9: X10 mouse reporting
	modeMouseNormal                        // ?1000: mouse press/release reporting
	modeMouseButton                        // ?1002: mouse button-motion reporting
	modeMouseAny                           // ?1003: mouse any-motion reporting
	modeFocus                              // ?1004: focus in/out reporting
	modeMouseUTF8                          // ?1005: UTF-8 mouse coordinates
	modeMouseSGR                           // ?1006: SGR mouse coordinates
	modeMouseURXVT                         // ?1015: urxvt mouse coordinates
	modeBracketedPaste                     // ?2004: bracketed paste
	modeKeypadApp                          // ESC = / ESC >: application keypad (DECKPAM)
)

// privateModes lists the DEC private modes that are tracked, in the order a
// prefix restores them. Alternate screen comes first: switching screens is
// the only one of these that changes what later output draws on.
var privateModes = [...]struct {
	num      uint16
	bit      modeSet
	inverted bool // the bit is set when the mode is reset (?25 defaults to on)
}{
	{1049, modeAltScreen1049, false},
	{1047, modeAltScreen1047, false},
	{47, modeAltScreen47, false},
	{1, modeAppCursor, false},
	{25, modeCursorHidden, true},
	{9, modeMouseX10, false},
	{1000, modeMouseNormal, false},
	{1002, modeMouseButton, false},
	{1003, modeMouseAny, false},
	{1004, modeFocus, false},
	{1005, modeMouseUTF8, false},
	{1006, modeMouseSGR, false},
	{1015, modeMouseURXVT, false},
	{2004, modeBracketedPaste, false},
}

// setPrivate applies CSI ? num h (on) or CSI ? num l (off).
func (m *modeSet) setPrivate(num uint16, on bool) {
	for _, pm := range privateModes {
		if pm.num != num {
			continue
		}
		if on != pm.inverted {
			*m |= pm.bit
		} else {
			*m &^= pm.bit
		}
		return
	}
}

// prefix returns the escape sequences that take a terminal in its power-on
// state to modes m, or nil when m is the default.
func (m modeSet) prefix() []byte {
	if m == 0 {
		return nil
	}
	var b []byte
	for _, pm := range privateModes {
		if m&pm.bit == 0 {
			continue
		}
		b = append(b, "\x1b[?"...)
		b = strconv.AppendUint(b, uint64(pm.num), 10)
		if pm.inverted {
			b = append(b, 'l')
		} else {
			b = append(b, 'h')
		}
	}
	if m&modeKeypadApp != 0 {
		b = append(b, "\x1b="...)
	}
	return b
}

// Parser states.
const (
	stGround    uint8 = iota
	stEscape          // after ESC
	stEscInter        // ESC followed by intermediates (e.g. ESC ( 0)
	stCSI             // CSI: private marker and parameters
	stCSIInter        // CSI intermediates
	stCSIIgnore       // malformed CSI, skipped up to its final byte
	stOSC             // OSC string: ends with BEL, ST, CAN or SUB
	stString          // DCS, SOS, PM, APC: end with ST, CAN or SUB
)

const maxParams = 16

// vtParser tracks where in the escape-sequence grammar the output stream is
// and which modes it has set. Its zero value is a terminal at power-on.
type vtParser struct {
	state   uint8
	need    uint8 // UTF-8 continuation bytes still expected
	c2      bool  // the pending UTF-8 lead byte is 0xC2 (a C1 control may follow)
	private byte  // CSI private marker ('?', '>', ...) or 0
	inter   byte  // first CSI intermediate byte or 0
	ninter  uint8 // number of CSI intermediate bytes
	started bool  // a CSI parameter byte has been seen, so a private marker is no longer valid
	nparams uint8
	cur     uint32 // parameter being accumulated
	params  [maxParams]uint16
	modes   modeSet
}

// safe reports whether the next byte starts a fresh character outside any
// escape sequence, i.e. whether a replay may start here.
func (p *vtParser) safe() bool { return p.state == stGround && p.need == 0 }

// step advances the parser by one byte. It is the slow path; feed skips over
// plain text without calling it.
func (p *vtParser) step(b byte) {
	if p.need > 0 {
		if b&0xC0 == 0x80 {
			p.need--
			if p.need == 0 {
				if p.c2 && b < 0xA0 {
					p.c1(b)
				} else {
					p.nonASCII()
				}
			}
			return
		}
		// A truncated sequence: the terminal shows U+FFFD for it and then
		// reads b as the start of something new.
		p.need = 0
		p.nonASCII()
	}
	if b < 0x80 {
		p.ascii(b)
		return
	}
	p.c2 = false
	switch {
	case b >= 0xC2 && b <= 0xDF:
		p.need = 1
		p.c2 = b == 0xC2
	case b >= 0xE0 && b <= 0xEF:
		p.need = 2
	case b >= 0xF0 && b <= 0xF4:
		p.need = 3
	default: // stray continuation byte or a byte that never starts UTF-8: one U+FFFD
		p.nonASCII()
	}
}

// nonASCII handles a decoded printable code point >= U+00A0 (or U+FFFD).
// Inside escape and control sequences xterm.js treats it as an error and
// returns to ground; inside strings it is part of the string.
func (p *vtParser) nonASCII() {
	switch p.state {
	case stEscape, stEscInter, stCSI, stCSIInter, stCSIIgnore:
		p.state = stGround
	}
}

// c1 handles a C1 control (U+0080..U+009F) arriving UTF-8 encoded, which
// xterm.js honours from any state.
func (p *vtParser) c1(b byte) {
	switch b {
	case 0x9B: // CSI
		p.csiReset()
		p.state = stCSI
	case 0x9D: // OSC
		p.state = stOSC
	case 0x90, 0x98, 0x9E, 0x9F: // DCS, SOS, PM, APC
		p.state = stString
	default: // ST and the other C1 controls end whatever was in progress
		p.state = stGround
	}
}

func (p *vtParser) csiReset() {
	p.private, p.inter, p.ninter, p.started, p.nparams, p.cur = 0, 0, 0, false, 0, 0
}

// pushParam ends the parameter being accumulated.
func (p *vtParser) pushParam() {
	if p.nparams < maxParams {
		p.params[p.nparams] = uint16(min(p.cur, 0xFFFF))
		p.nparams++
	}
	p.cur = 0
}

func (p *vtParser) ascii(b byte) {
	// "Anywhere" transitions: CAN and SUB abort any sequence, ESC starts a new
	// one (inside a string that is how ST = ESC \ begins).
	switch b {
	case 0x18, 0x1A:
		p.state = stGround
		return
	case 0x1B:
		p.state = stEscape
		return
	}
	switch p.state {
	case stGround:
	case stEscape:
		switch {
		case b < 0x20 || b == 0x7F: // C0 controls are executed, DEL ignored
		case b < 0x30:
			p.state = stEscInter
		case b == '[':
			p.csiReset()
			p.state = stCSI
		case b == ']':
			p.state = stOSC
		case b == 'P', b == 'X', b == '^', b == '_':
			p.state = stString
		default:
			p.escDispatch(b)
			p.state = stGround
		}
	case stEscInter:
		if b >= 0x30 && b < 0x7F { // final byte: charset designations etc., not tracked
			p.state = stGround
		}
	case stCSI:
		switch {
		case b < 0x20 || b == 0x7F:
		case b >= '0' && b <= '9':
			p.started = true
			if p.cur < 1<<20 {
				p.cur = p.cur*10 + uint32(b-'0')
			}
		case b == ';' || b == ':':
			p.started = true
			p.pushParam()
		case b >= 0x3C && b <= 0x3F: // private marker, only valid first
			if p.started || p.private != 0 {
				p.state = stCSIIgnore
			} else {
				p.private = b
			}
		case b < 0x30:
			p.inter = b
			p.ninter = 1
			p.state = stCSIInter
		default:
			p.csiDispatch(b)
			p.state = stGround
		}
	case stCSIInter:
		switch {
		case b < 0x20 || b == 0x7F:
		case b < 0x30:
			p.ninter++
		case b < 0x40:
			p.state = stCSIIgnore
		default:
			p.csiDispatch(b)
			p.state = stGround
		}
	case stCSIIgnore:
		if b >= 0x40 && b < 0x7F {
			p.state = stGround
		}
	case stOSC:
		if b == 0x07 { // BEL is xterm's alternative OSC terminator
			p.state = stGround
		}
	case stString:
	}
}

func (p *vtParser) escDispatch(b byte) {
	switch b {
	case '=':
		p.modes |= modeKeypadApp
	case '>':
		p.modes &^= modeKeypadApp
	case 'c': // RIS: full reset
		p.modes = 0
	}
}

func (p *vtParser) csiDispatch(final byte) {
	if p.started {
		p.pushParam()
	}
	switch {
	case p.private == '?' && p.ninter == 0 && (final == 'h' || final == 'l'):
		for _, n := range p.params[:p.nparams] {
			p.modes.setPrivate(n, final == 'h')
		}
	case p.private == 0 && p.ninter == 1 && p.inter == '!' && final == 'p':
		// DECSTR soft reset: of the tracked modes it shows the cursor and
		// resets cursor keys and keypad.
		p.modes &^= modeCursorHidden | modeAppCursor | modeKeypadApp
	}
}

// plainRun returns the length of the longest prefix of b made of bytes that
// cannot change the parser's state while it is in ground state: ASCII other
// than ESC. (CAN and SUB would return to ground, which it already is.) Eight
// bytes are tested at a time because terminal output is mostly plain text.
func plainRun(b []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
		escs  = 0x1B1B1B1B1B1B1B1B
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		x := w ^ escs // a zero byte in x is an ESC in w
		if (w|((x-ones)&^x))&highs != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c >= 0x80 || c == 0x1B {
			break
		}
	}
	return i
}
