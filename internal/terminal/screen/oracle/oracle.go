// Package oracle runs the reference terminal the tests judge screens by: a
// headless xterm.js (@xterm/headless, the terminal the web console uses)
// driven by oracle.js in this directory.
//
// A Case gives two ways of reaching a screen, A and B. The oracle feeds each
// to fresh xterm.js terminals and reports every difference in what they then
// show: cells (characters, width, colours, attributes), wrap flags, cursor,
// active buffer, scroll region, modes, character sets, saved cursor, title,
// and the normal buffer's scrollback. The screen package uses it to compare
// an output stream with the model's snapshot of it; terminal tests use it to
// compare what a client attached from the start and a late client received.
//
// It needs Node.js and `npm ci` in this directory (make test does it); Run
// returns ErrUnavailable without them, and tests skip.
package oracle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Op is one step a terminal client takes: exactly one of Reset (a fresh
// terminal of cols x rows, as for a replay with start), Resize, or Data
// (bytes written).
type Op struct {
	Reset  []int  `json:"reset,omitempty"`
	Resize []int  `json:"resize,omitempty"`
	Data   []byte `json:"data_b64,omitempty"`
}

// Case is one comparison. Either A and B are given (each starts with a
// Reset), or the older form: Stream, optionally resized to NewCols x NewRows
// after its first ResizeAt bytes, against Snapshot written to a fresh
// terminal of the final size.
type Case struct {
	Name       string `json:"name"`
	Cols       int    `json:"cols"`
	Rows       int    `json:"rows"`
	Scrollback int    `json:"scrollback"`
	Stream     []byte `json:"stream_b64,omitempty"`
	Snapshot   []byte `json:"snapshot_b64,omitempty"`
	ResizeAt   int    `json:"resize_at,omitempty"`
	NewCols    int    `json:"new_cols,omitempty"`
	NewRows    int    `json:"new_rows,omitempty"`
	A          []Op   `json:"a,omitempty"`
	B          []Op   `json:"b,omitempty"`
}

// Result is the oracle's verdict on one case.
type Result struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Diffs lists up to 20 differences, each naming what differs and both
	// values ("stream" is A's, "snapshot" B's).
	Diffs []string `json:"diffs"`
	// XtermError is set when xterm.js itself threw on the case.
	XtermError string `json:"xterm_error"`
}

// ErrUnavailable is returned by Run when Node.js or the oracle's packages
// are missing.
var ErrUnavailable = errors.New("the xterm.js oracle needs Node.js and `npm ci` in internal/terminal/screen/oracle")

// dir is this package's source directory, where oracle.js and its
// node_modules are: tests of other packages run in their own directories.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// RunTest is Run for tests: it gives the oracle up to timeout, skips the
// test when Node.js or the oracle's packages are missing, and fails it on
// any other error.
func RunTest(t testing.TB, timeout time.Duration, cases []Case) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := Run(ctx, cases)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Run feeds cases to the oracle and returns one Result per case, in order.
func Run(ctx context.Context, cases []Case) ([]Result, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, ErrUnavailable
	}
	d := dir()
	if _, err := os.Stat(filepath.Join(d, "node_modules", "@xterm", "headless")); err != nil {
		return nil, ErrUnavailable
	}
	in, err := json.Marshal(cases)
	if err != nil {
		return nil, fmt.Errorf("encode oracle cases: %w", err)
	}
	cmd := exec.CommandContext(ctx, node, "oracle.js")
	cmd.Dir = d
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("oracle: %w\n%s", err, stderr.String())
	}
	var res []Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("oracle output %q: %w", sc.Text(), err)
		}
		res = append(res, r)
	}
	if len(res) != len(cases) {
		return nil, fmt.Errorf("oracle answered %d of %d cases\n%s", len(res), len(cases), stderr.String())
	}
	return res, nil
}
