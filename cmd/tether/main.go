// Command tether is a real-time gateway for AI-agent platforms: messaging,
// agent operations and terminals over authenticated WebSockets.
//
// Run `tether help` for the commands.
package main

import (
	"os"

	"github.com/tether-dev/tether/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
