package operations

import (
	_ "embed"
	"time"

	"github.com/tether-dev/tether/internal/agents"
)

// DemoAgentID is the id of the built-in demo agent.
const DemoAgentID = "demo"

//go:embed demo.sh
var demoScript string

// DemoAgent is the command agent that --dev provides when no agents are
// configured, so that the README tour and the web console work out of the
// box: operation type "run" prints a few progress steps over about two
// seconds, a log line and a result echoing its input.
func DemoAgent() agents.CommandAgent {
	return agents.CommandAgent{
		ID: DemoAgentID,
		Operations: map[string]agents.OperationSpec{
			"run": {Command: []string{"sh", "-c", demoScript, "demo"}, Timeout: time.Minute, Concurrency: 16},
		},
	}
}
