package bench

import (
	"bytes"
	"hash/crc32"
	"strconv"
	"testing"

	"github.com/tether-dev/tether/internal/protocol"
)

// outputFrame builds a frame as the server's milestones endpoint does.
func outputFrame(data []byte, off int64) []byte {
	b := append([]byte(`{"type":"output","data":`), protocol.AppendString(nil, data)...)
	b = append(b, `,"offset":`...)
	return append(strconv.AppendInt(b, off, 10), '}')
}

// FuzzFastOutput checks that the fast decoder, when it accepts a frame,
// agrees with encoding/json, and that it accepts every frame the server
// writes for text without control characters other than \r\n\t.
func FuzzFastOutput(f *testing.F) {
	for _, s := range []string{"", "plain", "a\r\nb\tc", `q"uote\back/slash`, "\x1b[31mred", "caf\u00e9", "\xff"} {
		f.Add([]byte(s), int64(42))
	}
	f.Fuzz(func(t *testing.T, data []byte, off int64) {
		frame := outputFrame(data, off)
		want, err := decodeTerm(frame)
		if err != nil {
			t.Fatalf("decodeTerm(%q): %v", frame, err)
		}
		got, ok := fastOutput(frame)
		if !ok {
			if !bytes.Contains(frame, []byte(`\u`)) {
				t.Fatalf("fastOutput refused %q", frame)
			}
			return
		}
		if !bytes.Equal(got.data, want.data) || got.end != want.end || got.typ != want.typ {
			t.Fatalf("%q: fast %+v, encoding/json %+v", frame, got, want)
		}
	})
}

// TestFastOutputRefuses lists frames the fast path must leave to
// encoding/json.
func TestFastOutputRefuses(t *testing.T) {
	for _, frame := range []string{
		`{"type":"replay","data":"x","offset":1,"start":0}`,
		`{"type":"output","data":"\u001b","offset":1}`,
		`{"type":"output","data":"x","offset":1,"start":0}`,
		`{"type":"output","data":"x"`,
		`{"type":"output","data":"x\`,
		`{"type":"output","encoding":"base64","data":"eA==","offset":1}`,
	} {
		if f, ok := fastOutput([]byte(frame)); ok {
			t.Errorf("fastOutput(%s) = %+v, want refused", frame, f)
		}
	}
}

// A replay is a snapshot at its offset, not output: the accountant counts
// what lay between as skipped, hashes none of the snapshot, and takes the
// output that follows from the snapshot's offset.
func TestAccountantSnapshot(t *testing.T) {
	a := newAccountant(0)
	steps := []termFrame{
		{typ: protocol.TypeOutput, data: []byte("0123456789"), end: 10},
		{typ: protocol.TypeReplay, start: true, data: []byte("\x1bc\x1b[2Jscreen"), end: 500},
		{typ: protocol.TypeReplay, data: []byte("more of the snapshot"), end: 500},
		{typ: protocol.TypeOutput, data: []byte("abc"), end: 503},
	}
	for i, f := range steps {
		if err := a.add(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	want := crc32.New(crcTable)
	want.Write([]byte("0123456789abc"))
	if a.have != 503 || a.skipped != 490 || a.h.Sum32() != want.Sum32() {
		t.Fatalf("have %d, skipped %d, crc %08x; want 503, 490, %08x", a.have, a.skipped, a.h.Sum32(), want.Sum32())
	}
	if err := a.add(termFrame{typ: protocol.TypeOutput, data: []byte("x"), end: 503}); err == nil {
		t.Fatal("output repeating offset 502 was accepted")
	}
}
