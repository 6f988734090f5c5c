package httpapi

import (
	"fmt"
	"slices"
	"strings"
)

// StatusFilter parses the status parameter of a list endpoint
// (GET /api/operations?status=…): empty matches every status; otherwise a
// comma-separated list of statuses among known, or of the names of groups
// that stand for several (an operation's "live" is running and
// waiting_input). An unknown name is an error naming those accepted, for
// a 400 bad_request: a typo must not read as "nothing matches".
func StatusFilter(v string, known []string, groups map[string][]string) (func(status string) bool, error) {
	if v == "" {
		return func(string) bool { return true }, nil
	}
	var want []string
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		switch g, isGroup := groups[name]; {
		case isGroup:
			want = append(want, g...)
		case slices.Contains(known, name):
			want = append(want, name)
		default:
			accepted := slices.Clone(known)
			for g := range groups {
				accepted = append(accepted, g)
			}
			slices.Sort(accepted[len(known):])
			return nil, fmt.Errorf("unknown status %q: one of %s", name, strings.Join(accepted, ", "))
		}
	}
	return func(status string) bool { return slices.Contains(want, status) }, nil
}
