package conn

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"
)

// frame builds a client frame header (masked) declaring n payload bytes,
// followed by body.
func frame(op byte, n uint64, body []byte) []byte {
	b := []byte{0x80 | op}
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, n)
	}
	b = append(b, 1, 2, 3, 4)
	return append(b, body...)
}

// scanSplit feeds stream to a fresh guard in pieces cut at the given
// positions and reports where it refused (as an offset in stream), or -1.
func scanSplit(max uint64, stream []byte, cuts ...int) int {
	g := &frameGuard{max: max}
	prev := 0
	for _, end := range append(cuts, len(stream)) {
		if ok, at := g.scan(stream[prev:end]); !ok {
			return prev + at
		}
		prev = end
	}
	return -1
}

// The guard follows headers across any split of the stream: 7-bit, 16-bit
// and 64-bit lengths, unmasked frames, payloads spanning reads; it refuses
// exactly at the byte that completes a length over the limit, and hands on
// nothing of that byte.
func TestGuardScanSplits(t *testing.T) {
	ok := bytes.Join([][]byte{
		frame(1, 5, []byte("hello")),
		frame(1, 300, bytes.Repeat([]byte("x"), 300)),
		frame(9, 0, nil),
		{0x81, 0x03, 'a', 'b', 'c'}, // unmasked: no mask key
		frame(2, 1000, bytes.Repeat([]byte("y"), 1000)),
	}, nil)
	crash := []byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
	tooBig16 := frame(1, 1001, nil)
	tests := []struct {
		name   string
		stream []byte
		want   int
	}{
		{"valid frames", ok, -1},
		{"top bit set", append(append([]byte{}, ok...), crash...), len(ok) + 9},
		{"2^64-1", append([]byte{0x82, 0xff}, bytes.Repeat([]byte{0xff}, 8)...), 9},
		{"16-bit over the limit", append(append([]byte{}, ok...), tooBig16...), len(ok) + 3},
		{"7-bit over a tiny limit", frame(1, 100, nil), -1},
		{"exactly the limit", frame(1, 1000, nil), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := scanSplit(1000, tc.stream); got != tc.want {
				t.Fatalf("one read: refused at %d, want %d", got, tc.want)
			}
			for cut := 1; cut < len(tc.stream); cut++ {
				if got := scanSplit(1000, tc.stream, cut); got != tc.want {
					t.Fatalf("split at %d: refused at %d, want %d", cut, got, tc.want)
				}
			}
			cuts := make([]int, 0, len(tc.stream))
			for i := 1; i < len(tc.stream); i++ {
				cuts = append(cuts, i)
			}
			if got := scanSplit(1000, tc.stream, cuts...); got != tc.want {
				t.Fatalf("byte by byte: refused at %d, want %d", got, tc.want)
			}
		})
	}
	if got := scanSplit(99, frame(1, 100, nil)); got != 1 {
		t.Fatalf("7-bit length 100 over a limit of 99: refused at %d, want 1", got)
	}
}

// BenchmarkGuardScan is the guard's cost on the read path: a stream of
// small messages (a header per 30 bytes, the worst case) and one of 64 KiB
// messages (a header per read at most).
func BenchmarkGuardScan(b *testing.B) {
	for _, size := range []int{30, 64 << 10} {
		var stream []byte
		for len(stream) < 256<<10 {
			stream = append(stream, frame(1, uint64(size), bytes.Repeat([]byte("x"), size))...)
		}
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			g := &frameGuard{max: 1 << 20}
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				// 4 KiB reads, as gws's buffered reader does.
				for i := 0; i < len(stream); i += 4096 {
					if ok, _ := g.scan(stream[i:min(i+4096, len(stream))]); !ok {
						b.Fatal("refused")
					}
				}
			}
		})
	}
}
