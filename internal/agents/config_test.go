package agents

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func validAgent() CommandAgent {
	return CommandAgent{
		ID: "summarizer",
		Operations: map[string]OperationSpec{
			"summarize": {Command: []string{"./summarize.sh"}, Timeout: time.Minute, Concurrency: 2, Env: map[string]string{"DELAY": "0"}},
		},
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*CommandAgent)
		want   string // "" = valid
	}{
		{name: "valid", modify: func(*CommandAgent) {}},
		{name: "defaults are valid", modify: func(a *CommandAgent) {
			a.Operations["summarize"] = OperationSpec{Command: []string{"true"}}
		}},
		{name: "longest id", modify: func(a *CommandAgent) { a.ID = "a" + strings.Repeat("b", 63) }},
		{name: "id with dots and dashes", modify: func(a *CommandAgent) { a.ID = "team.summarizer-v2_x" }},
		{name: "empty id", modify: func(a *CommandAgent) { a.ID = "" },
			want: `agent id "" is invalid: it must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`},
		{name: "id too long", modify: func(a *CommandAgent) { a.ID = strings.Repeat("a", 65) },
			want: `agent id "` + strings.Repeat("a", 65) + `" is invalid: it must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`},
		{name: "id starts with dash", modify: func(a *CommandAgent) { a.ID = "-x" },
			want: `agent id "-x" is invalid: it must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`},
		{name: "id with slash", modify: func(a *CommandAgent) { a.ID = "a/b" },
			want: `agent id "a/b" is invalid: it must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`},
		{name: "no operations", modify: func(a *CommandAgent) { a.Operations = nil },
			want: `agent "summarizer" declares no operations`},
		{name: "bad operation type", modify: func(a *CommandAgent) {
			a.Operations["do it"] = OperationSpec{Command: []string{"true"}}
		}, want: `agent "summarizer": operation "do it": operation type is invalid: it must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`},
		{name: "empty command", modify: func(a *CommandAgent) { a.Operations["summarize"] = OperationSpec{} },
			want: `agent "summarizer": operation "summarize": command is empty`},
		{name: "empty argv0", modify: func(a *CommandAgent) {
			a.Operations["summarize"] = OperationSpec{Command: []string{"", "x"}}
		}, want: `agent "summarizer": operation "summarize": command[0] is empty`},
		{name: "negative timeout", modify: func(a *CommandAgent) {
			a.Operations["summarize"] = OperationSpec{Command: []string{"true"}, Timeout: -time.Second}
		}, want: `agent "summarizer": operation "summarize": timeout -1s is negative`},
		{name: "negative concurrency", modify: func(a *CommandAgent) {
			a.Operations["summarize"] = OperationSpec{Command: []string{"true"}, Concurrency: -1}
		}, want: `agent "summarizer": operation "summarize": concurrency -1 is negative`},
		{name: "reserved env", modify: func(a *CommandAgent) {
			a.Operations["summarize"] = OperationSpec{Command: []string{"true"}, Env: map[string]string{"TETHER_AGENT_ID": "x"}}
		}, want: `agent "summarizer": operation "summarize": env TETHER_AGENT_ID is set by Tether and cannot be overridden`},
		{name: "bad env name", modify: func(a *CommandAgent) {
			a.Operations["summarize"] = OperationSpec{Command: []string{"true"}, Env: map[string]string{"A=B": "x"}}
		}, want: `agent "summarizer": operation "summarize": env name "A=B" is invalid`},
		{name: "every problem at once", modify: func(a *CommandAgent) {
			a.ID = ""
			a.Operations = map[string]OperationSpec{"b": {}, "a": {Command: []string{"x"}, Concurrency: -2}}
		}, want: `agent id "" is invalid: it must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$` + "\n" +
			`agent "": operation "a": concurrency -2 is negative` + "\n" +
			`agent "": operation "b": command is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validAgent()
			tt.modify(&a)
			err := a.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("Validate() = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestEffectiveDefaults(t *testing.T) {
	t.Parallel()
	var s OperationSpec
	if got := s.EffectiveTimeout(); got != 10*time.Minute {
		t.Errorf("EffectiveTimeout() = %v, want 10m", got)
	}
	if got := s.EffectiveConcurrency(); got != 4 {
		t.Errorf("EffectiveConcurrency() = %d, want 4", got)
	}
	s = OperationSpec{Timeout: time.Second, Concurrency: 9}
	if s.EffectiveTimeout() != time.Second || s.EffectiveConcurrency() != 9 {
		t.Errorf("explicit values not kept: %v %d", s.EffectiveTimeout(), s.EffectiveConcurrency())
	}
}

// agentsNode parses a tether.yaml document and returns its agents section,
// as the config package hands it over.
func agentsNode(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var file struct {
		Agents yaml.Node `yaml:"agents"`
	}
	if err := yaml.Unmarshal([]byte(doc), &file); err != nil {
		t.Fatalf("parsing YAML: %v", err)
	}
	return &file.Agents
}

// The README's example must stay a valid configuration.
func TestDecodeAgentsREADMEExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../examples/agents/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no yaml block in examples/agents/README.md")
	}
	list, err := DecodeAgents(agentsNode(t, string(m[1])))
	if err != nil {
		t.Fatalf("DecodeAgents: %v", err)
	}
	if len(list) != 1 || list[0].ID != "summarizer" {
		t.Fatalf("agents = %+v, want one agent summarizer", list)
	}
	spec := list[0].Operations["summarize"]
	if got := strings.Join(spec.Command, " "); got != "./examples/agents/summarize.sh" {
		t.Errorf("command = %q", got)
	}
	if spec.Timeout != 2*time.Minute || spec.Concurrency != 4 || spec.Env["DELAY"] != "1" {
		t.Errorf("spec = %+v, want timeout 2m, concurrency 4, DELAY=1", spec)
	}
}

func TestDecodeAgents(t *testing.T) {
	t.Parallel()
	list, err := DecodeAgents(agentsNode(t, `
agents:
  - id: a
    operations:
      run: {command: [echo, hi], dir: /tmp, timeout: 90s}
  - id: b
    operations:
      x: {command: ["true"]}
      y: {command: ["false"], concurrency: 1}
`))
	if err != nil {
		t.Fatalf("DecodeAgents: %v", err)
	}
	if len(list) != 2 || list[0].Operations["run"].Timeout != 90*time.Second || list[0].Operations["run"].Dir != "/tmp" ||
		list[1].Operations["y"].Concurrency != 1 || list[1].Operations["x"].EffectiveTimeout() != DefaultTimeout {
		t.Fatalf("decoded %+v", list)
	}

	if list, err := DecodeAgents(nil); list != nil || err != nil {
		t.Errorf("DecodeAgents(nil) = %v, %v; want nothing", list, err)
	}

	bad := []struct{ name, doc, want string }{
		{"misspelled key", "agents:\n  - id: a\n    operations:\n      run: {command: [x], timout: 1m}\n", `line 4: agents[0].operations.run: unknown key "timout" (did you mean "timeout"?)`},
		// yaml.v3 refuses bare integers for durations: 120 would be 120ns.
		{"integer timeout", "agents:\n  - id: a\n    operations:\n      run: {command: [x], timeout: 120}\n", `line 4: agents[0].operations.run.timeout: "120" is not a duration (examples: 30s, 5m, 1h30m)`},
		{"duplicate id", "agents:\n  - {id: a, operations: {r: {command: [x]}}}\n  - {id: a, operations: {r: {command: [x]}}}\n", `agents[1]: duplicate agent id "a"`},
		{"invalid agent", "agents:\n  - {id: a, operations: {r: {command: []}}}\n", `agents[0]: agent "a": operation "r": command is empty`},
	}
	for _, tt := range bad {
		_, err := DecodeAgents(agentsNode(t, tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: DecodeAgents error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}
