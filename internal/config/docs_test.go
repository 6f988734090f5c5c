package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/config"
)

// Every setting is documented in docs/configuration.md, with its flag and
// environment variable: the page must not fall behind the code.
func TestEverySettingDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		row := "| `--" + s.Name + "` | `" + s.Env + "` |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/configuration.md has no row for --%s (%s)", s.Name, s.Env)
		}
	}
}
