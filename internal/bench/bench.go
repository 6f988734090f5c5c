// Package bench implements `tether bench`: end-to-end load and speed
// scenarios against a running server or one started in-process, each
// measured against a baseline (a bare PTY, a bare gws server) in the same
// run, interleaved with the server's rounds so that both see the same
// machine. Results are printed as a table and optionally written as JSON.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Options are the flags of `tether bench`.
type Options struct {
	// Server and Token address a running server (Token: an admin token).
	Server string
	Token  string
	// Self starts a node in this process instead.
	Self bool
	// Rounds is how many times baseline then server run.
	Rounds int
	// JSON names the file the results are written to ("": none).
	JSON string
	// Size is terminal-throughput's output in bytes.
	Size int64
	// Count is terminal-echo's keystrokes per round.
	Count int
	// Conns is messages' concurrent or connections' idle connections.
	Conns int
	// Subs is fanout's subscribers.
	Subs int
	// Procs is how many worker processes hold the clients (-1: default).
	Procs int
	// Kind is what messages sends: ping or message.
	Kind string
	// Duration is the length of a messages round.
	Duration time.Duration
	// Messages is how many messages (or progress events) fanout publishes
	// per round, Interval the pause between them.
	Messages int
	Interval time.Duration
	// Framing lists the terminal framings to run (json, binary).
	Framing string
	// Timeout bounds the whole run.
	Timeout time.Duration
	// CPUProfile, with --self, profiles the whole process during the
	// first server round (baselines are excluded).
	CPUProfile string
	// OpWatchers is fanout's watchers of one operation (0: skip).
	OpWatchers int
	// OpEvents is how many operation events resume misses (0: skip).
	OpEvents int
	// Missed is how many bytes of terminal output resume misses.
	Missed int64
	// StreamRate, StreamDeltas and StreamWatchers configure stream: deltas
	// per second, deltas per round, watchers.
	StreamRate, StreamDeltas, StreamWatchers int
	// Versus is a second running server (another build, say) that
	// terminal-echo types on in alternation with the target, keystroke by
	// keystroke, with VersusToken: two builds compared in one run, under
	// the same conditions, resolve differences that separate runs on a
	// noisy machine cannot.
	Versus, VersusToken string
}

// Scenarios lists the scenario names in the order `all` runs them.
var Scenarios = []string{"terminal-throughput", "terminal-echo", "messages", "fanout", "connections", "resume", "stream"}

const benchUsage = `Usage: tether bench SCENARIO [flags]

Scenarios: terminal-throughput, terminal-echo, messages, fanout, connections,
resume, stream, all. Each runs its baseline and the server interleaved for --rounds
rounds and reports the median, the spread (min-max) and the ratio.

Target: --self (a node started in this process) or --server URL --token T
(an admin token; with the agent role for the operation scenarios).
`

// Main runs `tether bench` with args (after "bench").
func Main(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == workerArg {
		return runWorker(context.Background(), os.Stdin, stdout)
	}
	fs := flag.NewFlagSet("tether bench", flag.ContinueOnError)
	fs.SetOutput(stdout) // -h prints here, as the other commands do
	o := &Options{}
	fs.StringVar(&o.Server, "server", "", "base URL of a running server (http://host:port); several, comma-separated, spread the clients over nodes of one cluster")
	fs.StringVar(&o.Token, "token", "", "admin token for --server")
	fs.BoolVar(&o.Self, "self", false, "start a node in this process on 127.0.0.1:0")
	fs.IntVar(&o.Rounds, "rounds", 5, "rounds of baseline then server")
	fs.StringVar(&o.JSON, "json", "", "write the results as JSON to this file")
	sizeFlag := fs.String("size", "100MB", "terminal-throughput: bytes of base64 to cat (e.g. 100MB, 4MiB)")
	fs.IntVar(&o.Count, "count", 2000, "terminal-echo: keystrokes per round")
	fs.IntVar(&o.Conns, "conns", 0, "messages: concurrent connections (default 50); connections: idle connections (default 15000)")
	fs.IntVar(&o.Subs, "subs", 1000, "fanout: subscribers")
	fs.IntVar(&o.Procs, "procs", -1, "client worker processes (connections: default ceil(conns/8000); fanout: default 0 (in-process) up to 4000 subscribers, else ceil(subs/5000))")
	fs.StringVar(&o.Kind, "kind", "ping", "messages: ping or message")
	fs.DurationVar(&o.Duration, "duration", 3*time.Second, "messages: length of each round")
	fs.IntVar(&o.Messages, "messages", 20, "fanout: messages published per round")
	fs.DurationVar(&o.Interval, "interval", 50*time.Millisecond, "fanout: pause between publishes")
	fs.StringVar(&o.Framing, "framing", "json,binary", "terminal scenarios: output framings to run")
	fs.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "bound on the whole run")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "with --self: CPU profile of the server's rounds")
	fs.IntVar(&o.OpWatchers, "op-watchers", 100, "fanout: watchers of one operation's progress (0: skip)")
	fs.IntVar(&o.StreamRate, "stream-rate", 2000, "stream: AG-UI text deltas the agent sends per second")
	fs.IntVar(&o.StreamDeltas, "stream-deltas", 10000, "stream: deltas per round")
	fs.IntVar(&o.StreamWatchers, "stream-watchers", 100, "stream: watchers of the operation (half WebSocket, half SSE)")
	fs.IntVar(&o.OpEvents, "op-events", 10000, "resume: operation events missed")
	missed := fs.String("missed", "1MiB", "resume: terminal output missed")
	fs.StringVar(&o.Versus, "versus", "", "terminal-echo: a second running server (http://host:port), typed on in alternation with the target")
	fs.StringVar(&o.VersusToken, "versus-token", "", "admin token for --versus")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	var scenario string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenario, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if scenario == "" && fs.NArg() > 0 {
		scenario = fs.Arg(0)
	}
	if scenario == "" {
		fs.Usage()
		return errors.New("no scenario given")
	}
	var err error
	if o.Size, err = parseSize(*sizeFlag); err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	if o.Missed, err = parseSize(*missed); err != nil {
		return fmt.Errorf("--missed: %w", err)
	}
	if o.Rounds < 1 {
		return errors.New("--rounds must be at least 1")
	}
	if o.Self == (o.Server != "") {
		return errors.New("give either --self or --server (with --token)")
	}
	if o.Server != "" && o.Token == "" {
		return errors.New("--server needs --token (an admin token)")
	}
	if o.Versus != "" && (o.VersusToken == "" || scenario != "terminal-echo") {
		return errors.New("--versus is for terminal-echo, with --versus-token (an admin token)")
	}
	names := []string{scenario}
	if scenario == "all" {
		names = Scenarios
	}
	for _, n := range names {
		if !slices.Contains(Scenarios, n) {
			return fmt.Errorf("unknown scenario %q (one of %s, all)", n, strings.Join(Scenarios, ", "))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	results, err := Run(ctx, o, names, stderr)
	if len(results) > 0 {
		PrintTable(stdout, results)
		if o.JSON != "" {
			if werr := writeJSON(o.JSON, results); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	return err
}

// Run runs the named scenarios against the target o describes, logging
// progress to logw, and returns what it measured (also when one fails).
func Run(ctx context.Context, o *Options, names []string, logw io.Writer) ([]Result, error) {
	t, err := openTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	defer t.close()
	// Worker processes' stderr is copied here too, concurrently.
	e := &env{opts: o, t: t, logw: &lockedWriter{w: logw}}
	if o.Versus != "" {
		vs, err := openTarget(ctx, &Options{Server: o.Versus, Token: o.VersusToken})
		if err != nil {
			return nil, fmt.Errorf("--versus: %w", err)
		}
		defer vs.close()
		e.vs = vs
	}
	if o.CPUProfile != "" {
		if !o.Self {
			return nil, errors.New("--cpuprofile needs --self (profile a remote server through its --pprof endpoint)")
		}
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		e.profile = f
	}
	var out []Result
	var errs []error
	for _, n := range names {
		rs, err := scenarioFuncs[n](ctx, e)
		out = append(out, rs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return out, errors.Join(errs...)
}

var scenarioFuncs = map[string]func(context.Context, *env) ([]Result, error){
	"terminal-throughput": terminalThroughput,
	"terminal-echo":       terminalEcho,
	"messages":            messages,
	"fanout":              fanout,
	"connections":         connections,
	"resume":              resume,
	"stream":              streamScenario,
}

// env is what every scenario runs with.
type env struct {
	opts    *Options
	t       *target
	vs      *target // --versus, or nil
	logw    io.Writer
	profile *os.File
	// profiling is true while the CPU profile runs (between server rounds
	// it is stopped, so only the server's rounds are in it).
	profiling bool
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.logw, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Result is the figures of one scenario (or one variant of it).
type Result struct {
	Name    string         `json:"name"`
	Params  map[string]any `json:"params,omitempty"`
	Rounds  int            `json:"rounds"`
	Metrics []Metric       `json:"metrics"`
	Notes   []string       `json:"notes,omitempty"`
}

// Metric is one measured quantity, for the baseline and the server.
type Metric struct {
	Name     string `json:"name"`
	Unit     string `json:"unit"`
	Baseline *Stats `json:"baseline,omitempty"`
	Server   *Stats `json:"server,omitempty"`
	// Ratio is the server's median over the baseline's, when both exist.
	Ratio *float64 `json:"ratio,omitempty"`
}

// Stats summarises one metric over the rounds.
type Stats struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

func newStats(v []float64) *Stats {
	if len(v) == 0 {
		return nil
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &Stats{Median: med, Min: s[0], Max: s[len(s)-1], Values: v}
}

// sample is the figures of one round, by metric name.
type sample map[string]float64

// spec names a metric and its unit, in the order the table shows them.
type spec struct{ name, unit string }

// roundFunc runs one round of a baseline or of the server.
type roundFunc func(ctx context.Context, round int) (sample, error)

// rounds runs baseline then server for every round and summarises them.
// A nil baseline runs the server alone.
func (e *env) rounds(ctx context.Context, name string, params map[string]any, specs []spec, base, srv roundFunc) (Result, error) {
	res := Result{Name: name, Params: params}
	bv, sv := map[string][]float64{}, map[string][]float64{}
	record := func(dst map[string][]float64, s sample) {
		for k, v := range s {
			dst[k] = append(dst[k], v)
		}
	}
	var err error
	for r := 0; r < e.opts.Rounds && err == nil; r++ {
		if base != nil {
			var s sample
			if s, err = base(ctx, r); err != nil {
				err = fmt.Errorf("%s baseline round %d: %w", name, r+1, err)
				break
			}
			record(bv, s)
			e.logf("%s round %d baseline %s", name, r+1, brief(specs, s))
		}
		e.startProfile()
		s, serr := srv(ctx, r)
		e.stopProfile()
		if serr != nil {
			err = fmt.Errorf("%s server round %d: %w", name, r+1, serr)
			break
		}
		record(sv, s)
		e.logf("%s round %d tether   %s", name, r+1, brief(specs, s))
		res.Rounds++
	}
	for _, sp := range specs {
		m := Metric{Name: sp.name, Unit: sp.unit, Baseline: newStats(bv[sp.name]), Server: newStats(sv[sp.name])}
		if m.Baseline != nil && m.Server != nil && m.Baseline.Median != 0 {
			r := m.Server.Median / m.Baseline.Median
			m.Ratio = &r
		}
		if m.Baseline != nil || m.Server != nil {
			res.Metrics = append(res.Metrics, m)
		}
	}
	return res, err
}

func (e *env) startProfile() {
	if e.profile == nil || e.profiling {
		return
	}
	// StartCPUProfile writes a whole profile per start; keep the first
	// server round only rather than concatenating several into one file.
	if fi, err := e.profile.Stat(); err == nil && fi.Size() > 0 {
		return
	}
	if err := pprof.StartCPUProfile(e.profile); err == nil {
		e.profiling = true
	}
}

func (e *env) stopProfile() {
	if e.profiling {
		pprof.StopCPUProfile()
		e.profiling = false
	}
}

func brief(specs []spec, s sample) string {
	var b strings.Builder
	for _, sp := range specs {
		if v, ok := s[sp.name]; ok {
			fmt.Fprintf(&b, "%s=%s%s ", sp.name, num(v), sp.unit)
		}
	}
	return b.String()
}

// PrintTable writes results as an aligned table.
func PrintTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmetric\tbaseline median [min-max]\ttether median [min-max]\tratio")
	for _, r := range results {
		for _, m := range r.Metrics {
			ratio := "-"
			if m.Ratio != nil {
				ratio = fmt.Sprintf("%.2f", *m.Ratio)
			}
			fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\n", r.Name, m.Name, m.Unit, statStr(m.Baseline), statStr(m.Server), ratio)
		}
	}
	tw.Flush()
	for _, r := range results {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "%s: %s\n", r.Name, n)
		}
	}
}

func statStr(s *Stats) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%s [%s-%s]", num(s.Median), num(s.Min), num(s.Max))
}

// num prints a figure with three significant digits or so.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func writeJSON(path string, results []Result) error {
	b, err := json.MarshalIndent(map[string]any{"time": time.Now().UTC(), "results": results}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// parseSize reads sizes such as 100MB (10^6), 4MiB (2^20), 512KiB or 1000.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	var n float64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(n * float64(mult)), nil
}

// percentile returns the p-th percentile (0-100) of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
