package terminal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/protocol"
)

type castHeader struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp"`
	Env       map[string]string `json:"env"`
}

type castEvent struct {
	At   float64
	Kind string
	Data string
}

// readCast parses an asciicast v2 file strictly: every line must be JSON.
func readCast(t *testing.T, path string) (castHeader, []castEvent) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		t.Fatalf("recording does not end with a complete line: %q", tail(raw))
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	var hdr castHeader
	var evs []castEvent
	for i := 0; sc.Scan(); i++ {
		line := sc.Bytes()
		if !utf8.Valid(line) {
			t.Fatalf("line %d is not UTF-8", i)
		}
		if i == 0 {
			if err := json.Unmarshal(line, &hdr); err != nil {
				t.Fatalf("header %q: %v", line, err)
			}
			continue
		}
		var ev []any
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if len(ev) != 3 {
			t.Fatalf("line %d has %d elements", i, len(ev))
		}
		at, ok1 := ev[0].(float64)
		kind, ok2 := ev[1].(string)
		data, ok3 := ev[2].(string)
		if !ok1 || !ok2 || !ok3 {
			t.Fatalf("line %d malformed: %q", i, line)
		}
		if n := len(evs); n > 0 && at < evs[n-1].At {
			t.Fatalf("line %d goes back in time", i)
		}
		evs = append(evs, castEvent{at, kind, data})
	}
	if hdr.Version != 2 {
		t.Fatalf("header %+v", hdr)
	}
	return hdr, evs
}

func outputOf(evs []castEvent) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Kind == "o" {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

func TestRecordingSession(t *testing.T) {
	dir := t.TempDir()
	content := "héllo wörld € 🙂 \x1b[31mred\x1b[0m \"quoted\" back\\slash\ttab\r\n" + strings.Repeat("ünïcødé ", 5000) + "\r\n"
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "session.cast")
	s := startSession(t, Options{
		Argv:          shell(`stty raw -echo && printf READY && read x && cat "$1"`, in),
		Cols:          90,
		Rows:          20,
		RecordingPath: path,
	})
	col := newCollector(t, attach(t, s, 0), 0)
	readUntil(t, col, contains("READY"), 10*time.Second)
	if err := s.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	got := readToEOF(t, col, 10*time.Second)
	if string(got) != "READY"+content {
		t.Fatalf("client got %q", tail(got))
	}
	waitDone(t, s, 10*time.Second)

	hdr, evs := readCast(t, path)
	if hdr.Width != 90 || hdr.Height != 20 || hdr.Env["TERM"] != "xterm-256color" ||
		hdr.Timestamp < time.Now().Add(-time.Minute).Unix() {
		t.Fatalf("header %+v", hdr)
	}
	if out := outputOf(evs); out != string(got) {
		t.Fatalf("recorded output differs from what the client saw (%d vs %d bytes)", len(out), len(got))
	}
	var resized bool
	for _, e := range evs {
		resized = resized || e.Kind == "r" && e.Data == "100x30"
		if strings.ContainsRune(e.Data, utf8.RuneError) {
			t.Fatalf("replacement character in %q", e.Data)
		}
	}
	if !resized {
		t.Fatal("no resize event")
	}
	if st := s.Stats(); st.RecordingTruncated || st.RecordingBytes != fileSize(t, path) {
		t.Fatalf("stats %+v, file %d", st, fileSize(t, path))
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func newTestRecorder(t *testing.T, max int64) (*recorder, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.cast")
	r, err := newRecorder(path, max, 80, 24, "xterm-256color", time.Now(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go r.run()
	return r, path
}

func TestRecordingCarriesSplitUTF8(t *testing.T) {
	r, path := newTestRecorder(t, 0)
	text := "a€b🙂c\xe2\x82" // ends mid-character: its bytes become U+FFFD at the end
	// Split at every byte so each multi-byte character straddles events.
	for i := range len(text) {
		r.output([]byte{text[i]})
	}
	r.close()
	_, evs := readCast(t, path)
	if got := outputOf(evs); got != "a€b🙂c\uFFFD\uFFFD" {
		t.Fatalf("got %q", got)
	}
	for _, e := range evs[:len(evs)-1] {
		if strings.ContainsRune(e.Data, utf8.RuneError) {
			t.Fatalf("event %q split a character", e.Data)
		}
	}
}

func TestRecordingSizeCap(t *testing.T) {
	const max = 1000
	r, path := newTestRecorder(t, max)
	for i := range 200 {
		r.output([]byte(strings.Repeat("x", i%13+1) + "\r\n"))
	}
	r.resize(100, 30)
	r.close()
	if size := fileSize(t, path); size > max || size < max-100 {
		t.Fatalf("file is %d bytes, cap %d", size, max)
	}
	_, evs := readCast(t, path)
	if len(evs) == 0 || !r.truncated.Load() {
		t.Fatalf("%d events, truncated %v", len(evs), r.truncated.Load())
	}
	for _, e := range evs {
		if e.Kind == "r" {
			t.Fatal("event written after the cap")
		}
	}
}

func TestRecordingJSONEscaping(t *testing.T) {
	var in []byte
	for c := range 256 {
		in = append(in, byte(c))
	}
	got := protocol.AppendString(nil, in)
	var s string
	if err := json.Unmarshal(got, &s); err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	want := strings.ToValidUTF8(string(in[:128]), "\uFFFD") + strings.Repeat("\uFFFD", 128)
	if s != want {
		t.Fatalf("got %q, want %q", s, want)
	}
}
