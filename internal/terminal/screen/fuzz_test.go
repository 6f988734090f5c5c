package screen

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// FuzzModel feeds arbitrary bytes (in arbitrary pieces, with resizes) to a
// model and checks that it never panics, that its memory stays what New
// allocated, and that its snapshot is a fixed point: a fresh model fed the
// snapshot produces the same snapshot.
func FuzzModel(f *testing.F) {
	f.Add([]byte("\x05\x03\x02hello\r\nworld\x1b[1;31mred\x1b[0m\x1b[?1049h\x1b[2J\x1b[Halt"), uint64(1))
	f.Add([]byte("\x10\x06\x00漢字かな😀e\u0301\x1b[4h\x1b[3Dx\x1b[?7l0123456789abcdef\x1b]2;t\a"), uint64(2))
	f.Add([]byte("\x03\x02\x05\x1b[2;3r\x1b[?6h\x1b[5Bab\x1bM\x1bD\x1b7\x1b(0qqq\x1b8\x0e\x1b[L\x1b[M"), uint64(3))
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 9))
		f.Add(append([]byte{byte(r.IntN(40)), byte(r.IntN(12)), byte(r.IntN(3))}, genStream(r, 100)...), seed)
	}
	for _, rec := range loadCorpus(f) {
		f.Add(append([]byte{byte(rec.cols - 2), byte(rec.rows - 1), 1}, rec.data[:min(len(rec.data), 4096)]...), uint64(len(rec.data)))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		if len(data) < 3 {
			return
		}
		// One-row terminals are left out: a snapshot cannot mark a line wrapped
		// there without losing the last cell of the line above (see doc.go).
		cols, rows := 2+int(data[0])%100, 2+int(data[1])%40
		sb := []int{0, 3, 50}[int(data[2])%3]
		data = data[3:]
		m := New(cols, rows, sb)
		r := rand.New(rand.NewPCG(seed, 1))
		for len(data) > 0 {
			k := min(len(data), 1+r.IntN(64))
			m.Write(data[:k])
			data = data[k:]
			if r.IntN(50) == 0 {
				m.Resize(2+r.IntN(100), 2+r.IntN(40))
			}
		}
		checkBounded(t, m)
		s1 := m.Snapshot(nil)
		c, rw := m.Size()
		m2 := New(c, rw, sb)
		m2.Write(s1)
		if s2 := m2.Snapshot(nil); !bytes.Equal(s1, s2) {
			t.Fatalf("snapshot is not stable:\nfirst  %q\nsecond %q", s1, s2)
		}
	})
}

// checkBounded verifies the model holds no more memory than its size says.
func checkBounded(t *testing.T, m *Model) {
	t.Helper()
	for _, b := range []*buffer{m.normal, m.alt} {
		if len(b.cells) != b.slots*b.cols || b.cols != m.cols || b.rows != m.rows {
			t.Fatalf("buffer %dx%d with %d slots holds %d cells", b.cols, b.rows, b.slots, len(b.cells))
		}
		if b.count < b.rows || b.count > b.slots {
			t.Fatalf("buffer holds %d lines, rows %d, capacity %d", b.count, b.rows, b.slots)
		}
		if b.x < 0 || b.x > 2*b.cols || b.y < 0 || b.y >= b.rows {
			t.Fatalf("cursor %d,%d outside %dx%d", b.x, b.y, b.cols, b.rows)
		}
	}
	cells := len(m.normal.cells) + len(m.alt.cells)
	if len(m.comb) > maxCombEntries {
		t.Fatalf("%d combined characters for %d cells", len(m.comb), cells)
	}
	if len(m.title) > MaxTitle {
		t.Fatalf("title of %d bytes", len(m.title))
	}
}

// FuzzWrite checks only that arbitrary output, resizes and snapshots never
// panic and that the model stays bounded; FuzzModel also demands that
// snapshots be fixed points, and stops at the first that is not.
func FuzzWrite(f *testing.F) {
	f.Add([]byte("\x05\x03\x02hello\x1b[?1049h\x1b[2J"), uint64(1))
	for seed := uint64(1); seed <= 10; seed++ {
		r := rand.New(rand.NewPCG(seed, 5))
		f.Add(append([]byte{byte(r.IntN(40)), byte(r.IntN(12)), byte(r.IntN(3))}, genStream(r, 200)...), seed)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		if len(data) < 3 {
			return
		}
		sb := []int{0, 3, 50}[int(data[2])%3]
		m := New(2+int(data[0])%100, 1+int(data[1])%40, sb)
		data = data[3:]
		r := rand.New(rand.NewPCG(seed, 1))
		for len(data) > 0 {
			k := min(len(data), 1+r.IntN(64))
			m.Write(data[:k])
			data = data[k:]
			if r.IntN(30) == 0 {
				m.Resize(1+r.IntN(100), r.IntN(40))
			}
		}
		checkBounded(t, m)
		c, rw := m.Size()
		m2 := New(c, rw, sb)
		m2.Write(m.Snapshot(nil))
		checkBounded(t, m2)
	})
}
