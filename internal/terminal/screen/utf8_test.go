package screen

import "testing"

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
