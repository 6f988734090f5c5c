package httpapi_test

import (
	"fmt"
	"testing"

	"github.com/tether-dev/tether/internal/httpapi"
)

func TestStatusFilter(t *testing.T) {
	known := []string{"running", "waiting_input", "completed"}
	groups := map[string][]string{"live": {"running", "waiting_input"}, "ended": {"completed"}}
	for _, tc := range []struct {
		v, err string
		match  []string // of running, waiting_input, completed, other
	}{
		{v: "", match: []string{"running", "waiting_input", "completed", "other"}},
		{v: "running", match: []string{"running"}},
		{v: "running, completed", match: []string{"running", "completed"}},
		{v: "live", match: []string{"running", "waiting_input"}},
		{v: "ended,waiting_input", match: []string{"waiting_input", "completed"}},
		{v: "runing", err: `unknown status "runing": one of running, waiting_input, completed, ended, live`},
		{v: "running,", err: `unknown status "": one of running, waiting_input, completed, ended, live`},
	} {
		match, err := httpapi.StatusFilter(tc.v, known, groups)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err %v, want %q", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.v, err)
			continue
		}
		var got []string
		for _, s := range []string{"running", "waiting_input", "completed", "other"} {
			if match(s) {
				got = append(got, s)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.match) {
			t.Errorf("%q matches %v, want %v", tc.v, got, tc.match)
		}
	}
}
