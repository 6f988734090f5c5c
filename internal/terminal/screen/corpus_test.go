package screen

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recording is one program's output recorded in a real PTY (testdata/NAME-
// COLSxROWS.vt.gz, made by TestRecord; see record_test.go).
type recording struct {
	name       string
	cols, rows int
	data       []byte
}

func loadCorpus(tb testing.TB) []recording {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.vt.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	var recs []recording
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".vt.gz")
		i := strings.LastIndexByte(base, '-')
		var rec recording
		if i < 0 {
			tb.Fatalf("%s: name has no -COLSxROWS", f)
		}
		if _, err := fmt.Sscanf(base[i+1:], "%dx%d", &rec.cols, &rec.rows); err != nil {
			tb.Fatalf("%s: size: %v", f, err)
		}
		rec.name = base[:i]
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		rec.data, err = io.ReadAll(zr)
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		recs = append(recs, rec)
	}
	return recs
}
