// Package screen is a terminal screen model: it is fed every byte a program
// prints and can, at any point, serialize the exact screen as escape
// sequences, so that a client that attaches late, or falls behind, can be
// shown the current screen instead of a replay of everything.
//
// # Design
//
// A Model follows xterm.js 6 (@xterm/headless, the terminal of the console)
// rather than a specification: where xterm.js has a quirk, the model has the
// same quirk, because the snapshot must make xterm.js show what xterm.js
// would show after the whole stream. The parser is xterm.js's
// EscapeSequenceParser (Paul Williams' DEC VT500 state machine, C1 controls
// as xterm.js handles them, UTF-8 decoded as its Utf8ToUtf32 does: invalid
// bytes are dropped), and each sequence does what InputHandler does.
//
// Cells are stored as xterm.js stores them: three 32-bit words (content with
// width, foreground, background) in xterm.js's bit layout, so attributes
// need no translation. Each screen is one flat slice of lines; a ring of line
// indexes makes scrolling move no cells, and the normal screen's ring holds
// the scrollback above the visible rows. Characters with combining marks
// live in a side table the cells index, compacted when it grows. Steady-state
// writes do not allocate: only the first use of a combining mark, a new
// title, RIS, and Resize do.
//
// Snapshot writes RIS, the title, every scrollback and screen line of the
// normal screen from the top (so that lines scroll into the client's
// history), the alternate screen after switching to it if it is active, then
// each screen's tab stops, saved cursor (DECSC) and scroll region, the
// modes, character sets, attributes and the cursor. Soft-wrapped lines are
// reproduced by wrapping (xterm.js reflows them on resize); the cursor in
// the pending-wrap position by reprinting the last glyph; blanks that carry
// attributes by the same wide-character repairs that made them. Feeding a
// snapshot to a new Model gives back the same snapshot (FuzzModel).
//
// # What is supported
//
// Printable UTF-8 with xterm.js's Unicode 6 widths (wide East Asian
// characters, zero-width combining marks joined to the previous cell); C0
// controls (BS, HT, LF, VT, FF, CR, SO, SI) and C1 (IND, NEL, HTS, CSI, OSC,
// DCS, SOS, PM, APC, ST); ESC 7 8 D E H M = > c n o | } ~, charset
// designations for G0-G3 (all xterm.js sets), ESC % @/G, DECALN; CSI ICH CUU
// CUD CUF CUB CNL CPL CHA CUP CHT ED EL IL DL DCH SU SD ECH CBT HPA HPR REP
// VPA VPR HVP TBC SM RM (IRM, LNM) SGR (all xterm.js attributes, 16, 256 and
// true colour in ';' and ':' forms, underline styles) DECSTBM SCOSC SCORC
// DECSCUSR DECSTR, SL SR DECIC DECDC, DECSET/DECRST 1 2 6 7 9 25 45 47 66
// 1000 1002 1003 1004 1006 1016 1047 1048 1049 2004 2026; OSC 0 and 2 (the
// title, up to MaxTitle bytes). Other OSC, DCS and the string controls are
// parsed and ignored without buffering. Requests (DSR, DA, DECRQM, DECRQSS)
// are ignored: the model never answers.
//
// Resize follows xterm.js's Buffer.resize for rows and columns, but does not
// reflow soft-wrapped lines of the normal screen as xterm.js does when the
// width changes.
//
// # Known differences from xterm.js
//
// The oracle test (oracle_test.go with oracle/oracle.js, a headless xterm.js)
// compares, cell by cell and with cursor, modes, buffers, scroll region,
// character sets, saved cursor and title, what xterm.js shows after a stream
// and after the model's snapshot of it. The recorded programs in testdata
// (vim, htop, top, less, man, bash, tmux, colours, CJK and emoji) match at
// every cut point tried. Random streams match in about 98% of cases; the
// rest, and the other known gaps:
//
//   - OSC 8 hyperlinks are ignored; xterm.js shows linked cells underlined
//     (dashed), so they differ. SGR 58 (underline colour) is ignored.
//   - Cells whose stored width is not the width of their characters, which
//     xterm.js makes in rare sequences (a zero-width character joined across
//     a wide one's placeholder, a resize cutting a wide character), are sent
//     as blanks.
//   - A one-row terminal cannot get a wrapped line from a snapshot without
//     losing the last cell of the line above; a blank with attributes at a
//     wrap point is approximated by its background.
//   - Resize does not reflow. A saved cursor is restored to the same place
//     but xterm.js's savedY bookkeeping (an absolute line) is not kept.
//   - DECSCA/DECSED/DECSEL protection, the title stack and window operations
//     (disabled by default in xterm.js) are not modelled.
//
// # Memory
//
// A cell is 12 bytes; each line also costs 5 bytes (wrap flag, ring index).
// A Model of cols x rows with scrollback lines holds
// 12 x cols x (2 x rows + scrollback) bytes of cells, allocated by New and
// Resize and never grown: 80x24 with 1,000 lines of scrollback is about
// 1.0 MB, 200x50 with 1,000 lines about 2.6 MB. The combined-character table
// is bounded by 65,536 entries of at most 64 bytes (only reached by streams
// of combining marks), the title by MaxTitle.
//
// # Speed
//
// go test -bench . ./internal/terminal/screen/ on the 2-core development
// machine, under a load average of 20-26 from other work, by CPU time
// (cpu-MB/s; wall-clock MB/s there was 5-7 times lower): plain 80-column
// text about 300 MB/s, SGR-heavy 70-column coloured lines 120-150 MB/s, the
// recorded vim session 125-135 MB/s; 0 allocations per Write. For
// comparison the issue measured charmbracelet/x/vt at 1.3 MB/s and
// hinshun/vt10x at 12.6 MB/s on coloured lines.
package screen
