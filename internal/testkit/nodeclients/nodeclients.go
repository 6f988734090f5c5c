// Package nodeclients finds the node clients some Go tests drive (the real
// @ag-ui/client in clients/agui-verify). It imports nothing of Tether's,
// so that any package's tests may use it, internal ones included.
package nodeclients

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// AGUI returns the directory of clients/agui-verify, the real
// @ag-ui/client and @ag-ui/core run with node, from a test whose package
// is two levels below the repository's root (internal/x). It skips the
// test, saying why, when node or the client's packages are missing (make
// test installs them).
func AGUI(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../clients/agui-verify")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the @ag-ui/client tests need it")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@ag-ui", "client", "package.json")); err != nil {
		t.Skipf("%s/node_modules is missing: run npm ci in clients/agui-verify (make test does)", dir)
	}
	return dir
}
