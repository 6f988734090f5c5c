package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/testkit"
)

// TestMain doubles as the worker process: the connections scenario
// re-executes this binary with WorkerEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(WorkerEnv) != "" {
		os.Exit(RunWorker())
	}
	goleak.VerifyTestMain(m)
}

// TestScenarios runs every scenario against an in-process node with tiny
// parameters, so that the tool cannot rot: each must produce its figures
// for the baseline and the server, and the JSON file must hold them.
func TestScenarios(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args := []string{"all", "--self", "--rounds", "1", "--size", "256KiB", "--count", "20",
		"--conns", "20", "--procs", "1", "--duration", "200ms", "--subs", "20", "--messages", "3",
		"--interval", "5ms", "--op-watchers", "5", "--op-events", "50", "--missed", "64KiB",
		"--timeout", "25s", "--stream-rate", "2000", "--stream-deltas", "300", "--stream-watchers", "4", "--json", out}
	start := time.Now()
	if err := Main(args, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("ran in %v:\n%s", time.Since(start), stdout.String())
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Results []Result }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("JSON output: %v", err)
	}
	want := []string{"terminal-throughput/json", "terminal-throughput/binary", "terminal-echo/json", "terminal-echo/binary",
		"messages/ping", "fanout/channel", "fanout/operation", "connections", "resume/terminal", "resume/operation", "stream"}
	got := map[string]Result{}
	for _, r := range doc.Results {
		got[r.Name] = r
	}
	for _, name := range want {
		r, ok := got[name]
		if !ok {
			t.Errorf("no result for %s", name)
			continue
		}
		if r.Rounds != 1 || len(r.Metrics) == 0 {
			t.Errorf("%s: %d rounds, %d metrics", name, r.Rounds, len(r.Metrics))
			continue
		}
		if m := r.Metrics[0]; m.Baseline == nil || m.Server == nil || m.Ratio == nil {
			t.Errorf("%s: first metric %s lacks a baseline, a server figure or a ratio", name, m.Name)
		}
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("table lacks %s", name)
		}
	}
	// The echo floor is the bare PTY and the bare WebSocket keystroke by
	// keystroke, so its median is at least the median of either.
	for _, name := range []string{"terminal-echo/json", "terminal-echo/binary"} {
		base := map[string]float64{}
		for _, m := range got[name].Metrics {
			if m.Baseline != nil {
				base[m.Name] = m.Baseline.Median
			}
		}
		if base["ws_p50"] <= 0 || base["floor_p50"] < base["ws_p50"] || base["floor_p50"] < base["p50"] {
			t.Errorf("%s: floor p50 %.1f µs, bare WebSocket p50 %.1f µs, bare PTY p50 %.1f µs", name, base["floor_p50"], base["ws_p50"], base["p50"])
		}
	}
}

// TestVersus types on a second server in alternation with the first and
// reports it beside the target's own figures.
func TestVersus(t *testing.T) {
	other := testkit.Start(t, nil, nil)
	var stdout, stderr bytes.Buffer
	// --server also runs the bare echo server in a worker process (this
	// test binary, re-executed).
	tok := testkit.Token(t, "bench", "admin")
	args := []string{"terminal-echo", "--server", other.HTTP, "--token", tok, "--rounds", "1", "--count", "20",
		"--framing", "binary", "--versus", other.HTTP, "--versus-token", tok, "--timeout", "25s"}
	if err := Main(args, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"terminal-echo/binary  floor_p50 (µs)", "terminal-echo/binary  versus_p50 (µs)", "terminal-echo/binary  versus_p99 (µs)", "versus: the same keystrokes on " + other.HTTP} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"nope", "--self"},
		{"messages"},
		{"messages", "--self", "--server", "http://127.0.0.1:1", "--token", "x"},
		{"terminal-throughput", "--self", "--size", "lots"},
		{"terminal-echo", "--self", "--versus", "http://127.0.0.1:1"},
		{"messages", "--self", "--versus", "http://127.0.0.1:1", "--versus-token", "x"},
	} {
		var out bytes.Buffer
		if err := Main(args, &out, &out); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"100MB": 100e6, "4MiB": 4 << 20, "512KiB": 512 << 10, "1000": 1000, "1.5KB": 1500} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]float64{50: 5, 99: 10, 10: 1, 0: 1} {
		if got := percentile(v, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
}
