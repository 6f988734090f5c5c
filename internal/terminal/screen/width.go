package screen

// widthTable holds the width of every BMP code point the way xterm.js's
// Unicode v6 provider (src/common/input/UnicodeV6.ts, the default in
// @xterm/headless and @xterm/xterm 6) computes it: 0, 1 or 2.
var widthTable = func() *[65536]uint8 {
	t := new([65536]uint8)
	for i := range t {
		t[i] = 1
	}
	t[0] = 0
	for i := 1; i < 32; i++ {
		t[i] = 0
	}
	for i := 0x7f; i < 0xa0; i++ {
		t[i] = 0
	}
	fill := func(v uint8, from, to int) { // [from, to)
		for i := from; i < to; i++ {
			t[i] = v
		}
	}
	fill(2, 0x1100, 0x1160)
	t[0x2329] = 2
	t[0x232a] = 2
	fill(2, 0x2e80, 0xa4d0)
	t[0x303f] = 1
	fill(2, 0xac00, 0xd7a4)
	fill(2, 0xf900, 0xfb00)
	fill(2, 0xfe10, 0xfe1a)
	fill(2, 0xfe30, 0xfe70)
	fill(2, 0xff00, 0xff61)
	fill(2, 0xffe0, 0xffe7)
	for _, r := range bmpCombining {
		fill(0, int(r[0]), int(r[1])+1)
	}
	return t
}()

// wcwidth is UnicodeV6.wcwidth, small enough to be inlined for the BMP.
func wcwidth(cp uint32) int {
	if cp < 65536 {
		return int(widthTable[cp])
	}
	return wcwidthHigh(cp)
}

// wcwidthHigh is wcwidth above the BMP.
func wcwidthHigh(cp uint32) int {
	lo, hi := 0, len(highCombining)-1
	if cp >= highCombining[0][0] && cp <= highCombining[hi][1] {
		for lo <= hi {
			mid := (lo + hi) / 2
			switch {
			case cp > highCombining[mid][1]:
				lo = mid + 1
			case cp < highCombining[mid][0]:
				hi = mid - 1
			default:
				return 0
			}
		}
	}
	if (cp >= 0x20000 && cp <= 0x2fffd) || (cp >= 0x30000 && cp <= 0x3fffd) {
		return 2
	}
	return 1
}
