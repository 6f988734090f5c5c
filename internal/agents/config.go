// Package agents runs the operations of command agents: agents declared in
// tether.yaml whose operations are local commands. Run starts one operation's
// process, turns each line it prints on stdout into an Event and reports how
// it ended as an Outcome. The package knows nothing about storage or
// transport: the caller assigns sequence numbers, persists events and fans
// them out to watchers, and enforces each operation type's concurrency limit.
//
// # The stdout protocol
//
// The operation's input is written to the process's stdin as one line of
// compact JSON (the JSON null when there is no input), then stdin is closed.
// Each stdout line is read as follows:
//
//   - An empty or all-blank line is ignored.
//   - A JSON object with a "result" key is a result event ({"result": any
//     JSON}). A result may be sent more than once; the last one wins, so an
//     agent can report a partial result early and refine it.
//   - Otherwise a JSON object with any of "progress" (a number from 0 to
//     100), "message" (string), "step" (string) or "data" (any JSON) is a
//     progress event. Progress may be absent, for a status update without a
//     percentage.
//   - Otherwise a JSON object with a "log" key (string) is a log event.
//   - Any other line, including a JSON object with none of those keys and
//     anything that is not a JSON object, is a log event whose text is the
//     line itself.
//
// Every known key present on a line must have its documented type (null is
// not accepted except for "result" and "data"), whichever kind the line turns
// out to be; a known key with the wrong type fails the operation with
// CodeMalformedOutput, because an agent that misreports progress is broken
// and showing users invented numbers would hide it. A line longer than
// RunRequest.MaxEventBytes fails it too. Invalid UTF-8 does not: tools print
// file names and other bytes they do not control, so invalid sequences are
// replaced with U+FFFD and the line is read as usual. A trailing "\r" is
// dropped so agents written on Windows work.
package agents

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tether-dev/tether/internal/config"
)

// Defaults applied to an OperationSpec's zero fields.
const (
	// DefaultTimeout bounds an operation whose spec sets no timeout, so a
	// hung agent cannot hold a concurrency slot forever.
	DefaultTimeout = 10 * time.Minute
	// DefaultConcurrency is how many operations of one type may run at once
	// when the spec does not say.
	DefaultConcurrency = 4
)

// Environment variables that Run sets for every operation. Specs may not set
// them: the values identify the operation and must be the server's.
const (
	EnvOperationID   = "TETHER_OPERATION_ID"
	EnvAgentID       = "TETHER_AGENT_ID"
	EnvOperationType = "TETHER_OPERATION_TYPE"
)

// namePattern is what agent ids and operation type names must match. They
// appear in URLs, NATS subjects and log lines, so they are kept to a
// conservative character set and length.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CommandAgent is an agent whose operations are local commands, as declared
// in one entry of the `agents:` list of tether.yaml.
type CommandAgent struct {
	// ID names the agent in the API; see Validate for the allowed form.
	ID string `yaml:"id"`
	// Operations maps each operation type the agent supports to how to run it.
	Operations map[string]OperationSpec `yaml:"operations"`
}

// OperationSpec says how to run one operation type of a CommandAgent.
type OperationSpec struct {
	// Command is the argv to execute; no shell is involved unless Command
	// names one. A bare name is looked up in the server's PATH; a relative
	// path is resolved against Dir (or the server's working directory when
	// Dir is empty).
	Command []string `yaml:"command"`
	// Dir is the working directory; empty means the server's.
	Dir string `yaml:"dir"`
	// Env is added to the process's environment. It is the only way to pass
	// configuration to an agent: the server's own environment is not
	// inherited beyond a few harmless variables (see Run).
	Env map[string]string `yaml:"env"`
	// Timeout bounds one operation's run time; zero means DefaultTimeout.
	// In YAML it is a Go duration string such as "90s" or "2m".
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency caps how many operations of this type run at once; zero
	// means DefaultConcurrency. The caller enforces it; Run does not.
	Concurrency int `yaml:"concurrency"`
	// Interactive keeps the agent's stdin open after its input line: each
	// answer to one of its input requests is written to it as one more
	// line of JSON (see the operations package).
	Interactive bool `yaml:"interactive"`
}

// EffectiveTimeout is Timeout with the default applied.
func (s OperationSpec) EffectiveTimeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// EffectiveConcurrency is Concurrency with the default applied.
func (s OperationSpec) EffectiveConcurrency() int {
	if s.Concurrency <= 0 {
		return DefaultConcurrency
	}
	return s.Concurrency
}

// Validate reports every problem with the agent's declaration at once, so an
// operator fixes a config file in one pass. The agent id and every operation
// type must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$; there must be at least
// one operation; each needs a non-empty command; timeout and concurrency may
// not be negative; env names must be valid and may not be one of the
// TETHER_* variables Run sets. Dir is not checked for existence: it may be
// created after the config is loaded, and Run reports CodeStartFailed if it
// is missing.
func (a CommandAgent) Validate() error {
	var errs []error
	if !namePattern.MatchString(a.ID) {
		errs = append(errs, fmt.Errorf("agent id %q is invalid: it must match %s", a.ID, namePattern))
	}
	if len(a.Operations) == 0 {
		errs = append(errs, fmt.Errorf("agent %q declares no operations", a.ID))
	}
	// Sorted so the joined error reads the same on every load.
	for _, typ := range slices.Sorted(maps.Keys(a.Operations)) {
		spec := a.Operations[typ]
		for _, err := range spec.problems(typ) {
			errs = append(errs, fmt.Errorf("agent %q: operation %q: %w", a.ID, typ, err))
		}
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with one operation type's declaration.
func (s OperationSpec) problems(typ string) []error {
	var errs []error
	if !namePattern.MatchString(typ) {
		errs = append(errs, fmt.Errorf("operation type is invalid: it must match %s", namePattern))
	}
	switch {
	case len(s.Command) == 0:
		errs = append(errs, errors.New("command is empty"))
	case s.Command[0] == "":
		errs = append(errs, errors.New("command[0] is empty"))
	}
	for i, arg := range s.Command {
		if strings.IndexByte(arg, 0) >= 0 {
			errs = append(errs, fmt.Errorf("command[%d] contains a NUL byte", i))
		}
	}
	if strings.IndexByte(s.Dir, 0) >= 0 {
		errs = append(errs, errors.New("dir contains a NUL byte"))
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", s.Timeout))
	}
	if s.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative", s.Concurrency))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			errs = append(errs, fmt.Errorf("env name %q is invalid", k))
		case k == EnvOperationID || k == EnvAgentID || k == EnvOperationType:
			errs = append(errs, fmt.Errorf("env %s is set by Tether and cannot be overridden", k))
		}
		if strings.IndexByte(s.Env[k], 0) >= 0 {
			errs = append(errs, fmt.Errorf("env %s contains a NUL byte", k))
		}
	}
	return errs
}

// ValidateAgents validates each agent and also rejects duplicate ids, which
// would make operations ambiguous.
func ValidateAgents(list []CommandAgent) error {
	var errs []error
	seen := make(map[string]bool, len(list))
	for i, a := range list {
		if err := a.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("agents[%d]: %w", i, err))
		}
		if seen[a.ID] {
			errs = append(errs, fmt.Errorf("agents[%d]: duplicate agent id %q", i, a.ID))
		}
		seen[a.ID] = true
	}
	return errors.Join(errs...)
}

// DecodeAgents decodes the `agents:` section of tether.yaml and validates it.
// Unknown keys are errors rather than silently ignored, because a misspelled
// "timout:" would otherwise quietly run with the default.
func DecodeAgents(node *yaml.Node) ([]CommandAgent, error) {
	if node == nil {
		return nil, nil
	}
	// Strict, with the lines of the file and messages in its terms.
	var list []CommandAgent
	if err := config.DecodeSection(node, "agents", &list); err != nil {
		return nil, err
	}
	if err := ValidateAgents(list); err != nil {
		return nil, err
	}
	return list, nil
}
