package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/agents"
	"github.com/tether-dev/tether/internal/config"
)

const secret = "jwt-secret: 0123456789012345678901234567890123456789\n"

// loadFile loads a configuration file with the given text and returns the
// error, with the file's path replaced by FILE.
func loadFile(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tether.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--config", file}, nil)
	if err == nil {
		if node, ok := cfg.Extra["agents"]; ok {
			_, err = agents.DecodeAgents(&node)
		}
	}
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(err.Error(), file, "FILE")
}

// Configuration errors name the line where the problem is, the key, the
// value and the expected form in the user's terms, and a misspelled key is
// an error rather than a setting silently left at its default.
func TestFileErrorsSayWhatAndWhere(t *testing.T) {
	for _, tt := range []struct{ name, text, want string }{
		{"bad indentation after comments", "# Tether\n# comment\n\naddr: \":9000\"\n" + secret + " idle-timeout: 5s\n",
			"parse config FILE: line 6: mapping values are not allowed in this context"},
		{"bad indentation after a quoted value", "# Tether\n# comment\n\naddr: \":9000\"\n" + secret + "log-level: \"info\"\n idle-timeout: 5s\n",
			"parse config FILE: line 7: did not find expected key"},
		{"unclosed list", "addr: \":9000\"\nlog-level: [debug\nidle-timeout: 5s\n",
			"parse config FILE: line 2: did not find expected ',' or ']'"},
		{"tab", "addr: \":9000\"\n\tidle-timeout: 5s\n",
			"parse config FILE: line 2: found character that cannot start any token"},
		{"bad indentation in agents", "addr: \":9000\"\n" + secret + "agents:\n  - id: x\n    operations:\n      run:\n        command: [\"true\"]\n     timeout: 5s\n",
			"parse config FILE: line 8: did not find expected key"},
		{"duration", "# comment\n" + secret + "idle-timeout: abc\n",
			`config FILE: line 3: idle-timeout: "abc" is not a duration (examples: 30s, 5m, 1h30m)`},
		{"size", secret + "max-message-size: 12XB\n",
			`config FILE: line 2: max-message-size: "12XB" is not a size (examples: 1048576, 64KiB, 1MiB)`},
		{"number", secret + "max-channels: many\n",
			`config FILE: line 2: max-channels: "many" is not a whole number`},
		{"misspelled setting", secret + "idle-timout: 5s\n",
			`config FILE: line 2: unknown setting "idle-timout" (did you mean "idle-timeout"?)`},
		{"unknown setting", secret + "colour: blue\n",
			`config FILE: line 2: unknown setting "colour" (the settings are listed in docs/configuration.md)`},
		{"set twice", secret + "ping_interval: 5s\nping-interval: 6s\n",
			"config FILE: line 3: ping-interval is already set on line 2"},
		{"mapping for a setting", secret + "allowed-origins: {a: b}\n",
			"config FILE: line 2: allowed-origins must be a single value or a list, not a mapping"},
		{"not a mapping", "- addr\n", "config FILE: line 1: the file must be a mapping of settings (key: value), not a list"},
		{"misspelled agent key", "# comment\n" + secret + "\nagents:\n  - id: x\n    operations:\n      run:\n        command: [\"true\"]\n        timout: 5s\n",
			`line 9: agents[0].operations.run: unknown key "timout" (did you mean "timeout"?)`},
		{"unknown agent key", secret + "agents:\n  - id: x\n    colour: blue\n    operations: {run: {command: [x]}}\n",
			`line 4: agents[0]: unknown key "colour" (known keys: id, operations)`},
		{"agent command not a list", secret + "agents:\n  - id: x\n    operations:\n      run:\n        command: true\n",
			`line 6: agents[0].operations.run.command must be a list, not "true"`},
		{"agent timeout", secret + "agents:\n  - id: x\n    operations:\n      run: {command: [x], timeout: 120}\n",
			`line 5: agents[0].operations.run.timeout: "120" is not a duration (examples: 30s, 5m, 1h30m)`},
		{"agent concurrency", secret + "agents:\n  - id: x\n    operations:\n      run: {command: [x], concurrency: lots}\n",
			`line 5: agents[0].operations.run.concurrency: "lots" is not a whole number`},
		{"valid", "# comment\n" + secret + "idle_timeout: 5s\nallowed-origins: [https://a.example, https://b.example]\nagents:\n  - id: x\n    operations: {run: {command: [x], timeout: 5s}}\n", ""},
	} {
		if got := loadFile(t, tt.text); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// A bad value says what it is and what was expected, from a flag or a
// variable as from the file.
func TestValueErrorsSayTheExpectedForm(t *testing.T) {
	for _, tt := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"--idle-timeout", "abc"}, nil, `flag --idle-timeout: "abc" is not a duration (examples: 30s, 5m, 1h30m)`},
		{[]string{"--rate-limit", "fast"}, nil, `flag --rate-limit: "fast" is not a number`},
		{[]string{"--dev=maybe"}, nil, `flag --dev: "maybe" is not true or false`},
		{nil, []string{"TETHER_IDLE_TIMEOUT=abc"}, `environment TETHER_IDLE_TIMEOUT: "abc" is not a duration (examples: 30s, 5m, 1h30m)`},
		{nil, []string{"TETHER_MAX_MESSAGE_SIZE=1 MB"}, `environment TETHER_MAX_MESSAGE_SIZE: "1 MB" is not a size (examples: 1048576, 64KiB, 1MiB)`},
	} {
		_, err := config.Load(append([]string{"--dev"}, tt.args...), tt.env)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%v %v: %v, want %s", tt.args, tt.env, err, tt.want)
		}
	}
	// --dev still works without a value.
	if cfg, err := config.Load([]string{"--dev"}, nil); err != nil || !cfg.Dev {
		t.Fatalf("--dev: %v", err)
	}
}

// The flags' help prints every flag with the form of its value and its
// default (zero defaults left out), without the flag package's "panic
// calling String method" for the wrapped values.
func TestHelpPrintsEveryFlag(t *testing.T) {
	fs := config.Defaults().FlagSet("serve")
	var out strings.Builder
	config.PrintDefaults(&out, fs)
	help := out.String()
	if strings.Contains(help, "panic") || strings.Contains(help, " value\n") {
		t.Fatalf("help:\n%s", help)
	}
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `( (string|duration|size|int|number|list))?$`).MatchString(help) {
			t.Errorf("help lacks -%s", f.Name)
		}
	})
	if got := strings.Count(help, "\n    \t"); got != n {
		t.Errorf("%d usage lines for %d flags:\n%s", got, n, help)
	}
	for _, want := range []string{
		"  -addr string\n    \taddress to listen on (default \":8000\")\n",
		"  -idle-timeout duration\n    \tclose a connection from which nothing (not even a pong) arrived for this long (default 1m0s)\n",
		"  -terminal-ring-size size\n    \trecent output each terminal keeps for reconnecting clients (default 1MiB)\n",
		"  -dev\n    \tdevelopment mode: generate a secret if none is configured and print a ready-to-use token\n",
		"  -drain-timeout duration\n    \ton SIGTERM, let running operations and terminals finish for up to this long, starting nothing new, before shutting down (0: no drain)\n",
		"  -allowed-origins list\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
}
