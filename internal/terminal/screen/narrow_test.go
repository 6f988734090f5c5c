package screen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// narrowCase is a terminal of a few cells a side fed wide characters,
// attributes and escapes, with frequent resizes: where snapshots are
// hardest to make fixed points and reflow indexes past its lines. FuzzModel
// finds such cases only rarely (a resize every 50 writes, sizes up to
// 100x40), so TestNarrowFixedPoints generates them directly.
type narrowCase struct {
	cols, rows, scrollback int
	steps                  []narrowStep
}

type narrowStep struct {
	data       []byte
	cols, rows int // a resize when cols > 0
}

func genNarrow(seed uint64) narrowCase {
	r := rand.New(rand.NewPCG(seed, 77))
	k := narrowCase{cols: 2 + r.IntN(6), rows: 2 + r.IntN(5), scrollback: []int{0, 3, 50}[r.IntN(3)]}
	data := genStreamTexts(r, 20+r.IntN(200), []string{"漢", "字か", "a", " ", "😀", "e\u0301", "ｆ"})
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(64))
		k.steps = append(k.steps, narrowStep{data: data[:n]})
		data = data[n:]
		if r.IntN(6) == 0 {
			k.steps = append(k.steps, narrowStep{cols: 2 + r.IntN(8), rows: 2 + r.IntN(6)})
		}
	}
	return k
}

// run returns "" when the case neither panics nor makes a snapshot that is
// not a fixed point, else what went wrong ("panic: ..." or "unstable: ...").
func (k narrowCase) run() (res string) {
	defer func() {
		if e := recover(); e != nil {
			res = fmt.Sprint("panic: ", e)
		}
	}()
	m := New(k.cols, k.rows, k.scrollback)
	for _, s := range k.steps {
		if s.cols > 0 {
			m.Resize(s.cols, s.rows)
		} else {
			m.Write(s.data)
		}
	}
	s1 := m.Snapshot(nil)
	c, r := m.Size()
	m2 := New(c, r, k.scrollback)
	m2.Write(s1)
	if s2 := m2.Snapshot(nil); !bytes.Equal(s1, s2) {
		return fmt.Sprintf("unstable:\nfirst  %q\nsecond %q", s1, s2)
	}
	return ""
}

func (k narrowCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "New(%d, %d, %d)", k.cols, k.rows, k.scrollback)
	for _, s := range k.steps {
		if s.cols > 0 {
			fmt.Fprintf(&b, "; Resize(%d, %d)", s.cols, s.rows)
		} else {
			fmt.Fprintf(&b, "; Write(%q)", s.data)
		}
	}
	return b.String()
}

// shrink removes steps, bytes and size while the failure stays of its kind,
// so that a failure reads as a few writes.
func (k narrowCase) shrink(kind string) narrowCase {
	fails := func(k narrowCase) bool { return strings.HasPrefix(k.run(), kind) }
	try := func(t narrowCase) bool {
		if fails(t) {
			k = t
			return true
		}
		return false
	}
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(k.steps); i++ {
			t := k
			t.steps = append(append([]narrowStep(nil), k.steps[:i]...), k.steps[i+1:]...)
			if try(t) {
				i--
				changed = true
			}
		}
		for i := range k.steps {
			for size := len(k.steps[i].data); size >= 1; size /= 2 {
				for j := 0; j+size <= len(k.steps[i].data); j++ {
					d := k.steps[i].data
					t := k
					t.steps = append([]narrowStep(nil), k.steps...)
					t.steps[i].data = append(append([]byte(nil), d[:j]...), d[j+size:]...)
					if try(t) {
						j--
						changed = true
					}
				}
			}
		}
		for _, f := range []func(*narrowCase){func(t *narrowCase) { t.scrollback = 0 }, func(t *narrowCase) { t.cols-- }, func(t *narrowCase) { t.rows-- }} {
			t := k
			f(&t)
			if (t.cols != k.cols || t.rows != k.rows || t.scrollback != k.scrollback) && t.cols >= 2 && t.rows >= 2 && try(t) {
				changed = true
			}
		}
	}
	return k
}

// TestNarrowFixedPoints runs generated narrow cases: those that found bugs
// and a few thousand more. NARROW_SECONDS=N searches further, from seed
// NARROW_FROM, for N seconds, and reports the first failure shrunk.
func TestNarrowFixedPoints(t *testing.T) {
	found := []uint64{38, 47, 1075, 1444, 2605, 2656, 7049, 20065, 26362, 30895, 58276, 127049, 184052, 197847}
	for _, seed := range found {
		if res := genNarrow(seed).run(); res != "" {
			t.Errorf("seed %d: %s", seed, res)
		}
	}
	from, _ := strconv.ParseUint(os.Getenv("NARROW_FROM"), 10, 64)
	secs, _ := strconv.Atoi(os.Getenv("NARROW_SECONDS"))
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	seed := from
	defer func() { t.Logf("seeds %d to %d", from, seed) }()
	for ; seed < from+2000 || time.Now().Before(deadline); seed++ {
		k := genNarrow(seed)
		res := k.run()
		if res == "" {
			continue
		}
		kind, _, _ := strings.Cut(res, ":")
		k = k.shrink(kind)
		t.Fatalf("seed %d: %s\nshrunk: %s\n%s", seed, res, k, k.run())
	}
}
