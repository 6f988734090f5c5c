package screen

import (
	"fmt"
	"testing"
)

// TestDecodeUTF8FastPaths checks decodeUTF8's fast paths against the general
// decoder for every sequence of up to three bytes and for four-byte ones
// around every lead byte.
func TestDecodeUTF8FastPaths(t *testing.T) {
	check := func(p []byte) {
		cp, size, ok := decodeUTF8(p)
		cp2, size2, ok2 := decodeUTF8Slow(p)
		if p[0] < 0x80 {
			cp2, size2, ok2 = uint32(p[0]), 1, true
		}
		if cp != cp2 || size != size2 || ok != ok2 {
			t.Fatalf("% x: got %#x %d %v, want %#x %d %v", p, cp, size, ok, cp2, size2, ok2)
		}
	}
	var b [4]byte
	for i := 0; i < 1<<24; i++ {
		b[0], b[1], b[2] = byte(i>>16), byte(i>>8), byte(i)
		check(b[:1])
		check(b[:2])
		check(b[:3])
	}
	for lead := 0xF0; lead < 0x100; lead++ {
		for i := 0; i < 1<<16; i++ {
			b[0], b[1], b[2], b[3] = byte(lead), byte(i>>8), byte(i), byte(0x80|i>>4&0x3F)
			check(b[:])
		}
	}
}

// TestCombiningCompaction prints many distinct combined characters, so that
// the combined-character table is compacted (renumbered) several times
// while the join cache holds entries, and checks every cell's characters.
func TestCombiningCompaction(t *testing.T) {
	const cols, rows = 80, 24
	m := New(cols, rows, 0)
	want := make([]string, cols*rows)
	gens := m.combGen
	for k := 0; k < 20000; k++ {
		pos := k * 7 % (cols * rows)
		// The first join, x and one of two marks, is in the join cache
		// all along; the combined characters it makes are not kept by
		// compactions, as no cell holds them.
		s := "x" + string(rune(0x301+k%2)) + string(rune(0x300+k/2%112)) + string(rune(0x300+k/224%112))
		fmt.Fprintf(m, "\x1b[%d;%dH%s", pos/cols+1, pos%cols+1, s)
		want[pos] = s
	}
	if m.combGen-gens < 2 {
		t.Fatalf("the table was compacted %d times, want several", m.combGen-gens)
	}
	for pos, w := range want {
		if w == "" {
			continue
		}
		if got := string(m.cellString(nil, m.active.row(pos / cols)[pos%cols])); got != w {
			t.Fatalf("cell %d,%d holds %q, want %q", pos%cols, pos/cols, got, w)
		}
	}
}

// TestHugeTabCount checks that CHT and CBT with the largest count end at
// the last and first column at once (each tab was a loop iteration: 2^31 of
// them took seconds, found by FuzzModel as a hang).
func TestHugeTabCount(t *testing.T) {
	m := New(20, 2, 0)
	m.Write([]byte("\x1b[2147483647I"))
	if x := m.active.x; x != 19 {
		t.Fatalf("after CHT: column %d, want 19", x)
	}
	m.Write([]byte("\x1b[99999999999Z"))
	if x := m.active.x; x != 0 {
		t.Fatalf("after CBT: column %d, want 0", x)
	}
}
