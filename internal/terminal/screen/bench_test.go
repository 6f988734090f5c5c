package screen

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// plainText returns about n bytes of 80-column lines of plain text.
func plainText(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		line := fmt.Sprintf("%06d the quick brown fox jumps over the lazy dog, again and again and again and again", i)
		b = append(b, line[:78]...)
		b = append(b, "\r\n"...)
	}
	return b
}

// sgrText returns about n bytes of 70-column lines coloured in runs of ten
// characters (256 colours, true colour, bold), like coloured ls or compiler
// output.
func sgrText(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		for j := 0; j < 7; j++ {
			switch j % 3 {
			case 0:
				b = fmt.Appendf(b, "\x1b[38;5;%dm", (i+j)%256)
			case 1:
				b = fmt.Appendf(b, "\x1b[1;38;2;%d;%d;%dm", i%256, j*30, 200)
			default:
				b = append(b, "\x1b[0;32;44m"...)
			}
			b = fmt.Appendf(b, "%09d ", i*7+j)
		}
		b = append(b, "\x1b[0m\r\n"...)
	}
	return b
}

func benchWrite(b *testing.B, cols, rows int, data []byte) {
	m := New(cols, rows, 1000)
	m.Write(data) // warm up: scrollback full, tables built
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	n := 0
	for b.Loop() {
		m.Write(data)
		n++
	}
	// MB/s by CPU time: the figure that matters on a shared, busy machine,
	// where wall-clock MB/s mostly measures the other processes.
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(n*len(data))/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkPlain(b *testing.B) { benchWrite(b, 80, 24, plainText(1<<20)) }

func BenchmarkSGR(b *testing.B) { benchWrite(b, 80, 24, sgrText(1<<20)) }

// BenchmarkRecorded feeds each recorded program's output (testdata)
// repeatedly.
func BenchmarkRecorded(b *testing.B) {
	for _, rec := range loadCorpus(b) {
		b.Run(rec.name, func(b *testing.B) { benchWrite(b, rec.cols, rec.rows, rec.data) })
	}
}

func BenchmarkSnapshot(b *testing.B) {
	for _, rec := range loadCorpus(b) {
		b.Run(rec.name, func(b *testing.B) {
			m := New(rec.cols, rec.rows, 1000)
			m.Write(rec.data)
			buf := m.Snapshot(nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				buf = m.Snapshot(buf[:0])
			}
			b.ReportMetric(float64(len(buf)), "bytes/snapshot")
		})
	}
}

// TestWriteDoesNotAllocate checks the steady state: once the scrollback is
// full, writing plain text, coloured text and the recorded full-screen
// programs allocates nothing.
func TestWriteDoesNotAllocate(t *testing.T) {
	inputs := map[string]struct {
		cols, rows int
		data       []byte
	}{
		"plain": {80, 24, plainText(64 << 10)},
		"sgr":   {80, 24, sgrText(64 << 10)},
	}
	for _, rec := range loadCorpus(t) {
		switch rec.name {
		case "vim", "htop", "top", "less", "man", "tmux", "bash", "colours", "unicode":
			inputs[rec.name] = struct {
				cols, rows int
				data       []byte
			}{rec.cols, rec.rows, rec.data}
		}
	}
	for name, in := range inputs {
		m := New(in.cols, in.rows, 100)
		m.Write(in.data)
		m.Write(in.data)
		if a := testing.AllocsPerRun(5, func() { m.Write(in.data) }); a != 0 {
			t.Errorf("%s: %v allocations per Write, want 0", name, a)
		}
	}
}
