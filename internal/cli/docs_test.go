package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Commands to run are written one way everywhere: `./tether`, the binary
// that the README's `make build` leaves in the checkout (prose may still
// name a command, as in "`tether serve` reads its settings").
func TestDocsRunDotSlashTether(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../../examples/*/README.md")
	files = append(append(files, "../../README.md"), more...)
	block := regexp.MustCompile("(?s)```(?:sh|bash|shell)\n(.*?)```")
	bare := regexp.MustCompile(`(?m)(?:^|[\s($"'])tether (?:serve|token|connect|attach|bench|help)\b.*$`)
	inline := regexp.MustCompile("`tether (?:serve|token|connect|attach|bench|help) [^`]*-[^`]*`")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "../../")
		for _, m := range block.FindAllStringSubmatch(string(b), -1) {
			for _, l := range bare.FindAllString(m[1], -1) {
				t.Errorf("%s: command without ./: %s", name, strings.TrimSpace(l))
			}
		}
		for _, l := range inline.FindAllString(string(b), -1) {
			t.Errorf("%s: command without ./: %s", name, l)
		}
	}
}
