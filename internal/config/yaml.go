package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Sections are the YAML file's top-level keys that are not settings but
// structured sections, kept in Config.Extra for the package that owns each
// to decode with DecodeSection. Any other key that is not a setting is an
// error: a misspelled "idle-timout:" must not quietly leave the default.
var Sections = []string{"agents"}

// parseFile parses a configuration file into its top-level mapping,
// refusing unknown and repeated keys. It returns the key and value nodes
// of each entry, by the canonical (dashed) name.
func parseFile(path string, raw []byte, known func(name string) bool) (keys, values map[string]*yaml.Node, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse config %s: %w", path, syntaxError(raw, err))
	}
	keys, values = map[string]*yaml.Node{}, map[string]*yaml.Node{}
	if len(doc.Content) == 0 {
		return keys, values, nil // an empty file
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("config %s: line %d: the file must be a mapping of settings (key: value), not %s", path, top.Line, kindName(top))
	}
	var errs []error
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		name := strings.ReplaceAll(k.Value, "_", "-")
		switch {
		case name == "config":
			errs = append(errs, fmt.Errorf("line %d: config: a configuration file cannot name another one", k.Line))
		case !known(name) && !slices.Contains(Sections, name):
			errs = append(errs, fmt.Errorf("line %d: unknown setting %q%s", k.Line, k.Value, suggest(name)))
		case keys[name] != nil:
			errs = append(errs, fmt.Errorf("line %d: %s is already set on line %d", k.Line, k.Value, keys[name].Line))
		default:
			keys[name], values[name] = k, v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	return keys, values, nil
}

// suggest is ` (did you mean "x"?)` for the known setting or section
// closest to a misspelled name, or a pointer to the documentation.
func suggest(name string) string {
	best, bestD := "", 3 // at most two edits away
	for _, s := range append(Names(), Sections...) {
		if s == "config" {
			continue
		}
		if d := editDistance(name, s); d < bestD {
			best, bestD = s, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (the settings are listed in docs/configuration.md)"
}

// Names lists the flag names of every scalar setting.
func Names() []string {
	var out []string
	for _, s := range Settings() {
		out = append(out, s.Name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parserProblems are the problems that yaml.v3's parser (not its scanner)
// reports. For these it names the line before the one it means: it counts
// lines from 0 and, unlike for scanner errors, does not add 1.
var parserProblems = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxError names the line where a YAML syntax error is. yaml.v3 names
// the line where the enclosing block or list began, counted from 0 (so
// "line 2" for a problem at line 9); the first line whose prefix of the
// file fails with the same problem is where the problem shows.
func syntaxError(raw []byte, err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	problem := m[2]
	lines := strings.SplitAfter(string(raw), "\n")
	for n := 1; n <= len(lines); n++ {
		var doc yaml.Node
		perr := yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &doc)
		if perr != nil {
			if pm := yamlLine.FindStringSubmatch(perr.Error()); pm != nil && pm[2] == problem {
				return fmt.Errorf("line %d: %s", n, problem)
			}
		}
	}
	// Not found by prefixes: correct yaml.v3's count where it is off.
	if m[1] != "" && slices.Contains(parserProblems, problem) {
		var line int
		fmt.Sscan(m[1], &line)
		return fmt.Errorf("line %d: %s", line+1, problem)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// DecodeSection decodes a section of the configuration file (such as
// Extra["agents"]) into out, strictly: a key that no field of out's type
// declares is an error, as is a value of the wrong form. Every problem is
// reported at once, with its line in the file, the path of the key from
// name (e.g. agents[0].operations.run.timeout) and the expected form in
// words rather than Go types.
func DecodeSection(node *yaml.Node, name string, out any) error {
	t := reflect.TypeOf(out)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("DecodeSection: out must be a pointer, not %T", out)
	}
	if errs := check(node, t.Elem(), name); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := node.Decode(out); err != nil {
		return fmt.Errorf("line %d: %s: %w", node.Line, name, err)
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// check walks node against the type it decodes into and lists what does
// not fit.
func check(node *yaml.Node, t reflect.Type, path string) []error {
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil // an empty value leaves the zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	wrong := func(want string) []error {
		return []error{fmt.Errorf("line %d: %s must be %s, not %s", node.Line, path, want, kindName(node))}
	}
	switch {
	case t == durationType:
		if node.Kind != yaml.ScalarNode {
			return wrong(wantDuration)
		}
		if _, err := time.ParseDuration(node.Value); err != nil || node.Tag != "!!str" {
			return []error{fmt.Errorf("line %d: %s: %w", node.Line, path, &valueError{value: node.Value, want: wantDuration})}
		}
		return nil
	case t.Kind() == reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return wrong("a mapping (key: value)")
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("line %d: %s: unknown key %q (%s)", k.Line, path, k.Value, knownKeys(k.Value, fields)))
				continue
			}
			errs = append(errs, check(v, ft, path+"."+k.Value)...)
		}
		return errs
	case t.Kind() == reflect.Map:
		if node.Kind != yaml.MappingNode {
			return wrong("a mapping (key: value)")
		}
		var errs []error
		for i := 0; i+1 < len(node.Content); i += 2 {
			errs = append(errs, check(node.Content[i+1], t.Elem(), path+"."+node.Content[i].Value)...)
		}
		return errs
	case t.Kind() == reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return wrong("a list")
		}
		var errs []error
		for i, item := range node.Content {
			errs = append(errs, check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	case t.Kind() == reflect.Interface:
		return nil
	}
	if node.Kind != yaml.ScalarNode {
		return wrong("a single value")
	}
	if err := node.Decode(reflect.New(t).Interface()); err != nil {
		want := wantFloat
		switch t.Kind() {
		case reflect.Bool:
			want = wantBool
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = wantInt
		case reflect.String:
			want = "text"
		}
		return []error{fmt.Errorf("line %d: %s: %w", node.Line, path, &valueError{value: node.Value, want: want})}
	}
	return nil
}

// knownKeys suggests the key closest to a misspelled one, or lists them.
func knownKeys(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 3 // at most two edits away
	for n := range fields {
		names = append(names, n)
		if d := editDistance(key, n); d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	slices.Sort(names)
	return "known keys: " + strings.Join(names, ", ")
}

// yamlFields maps the YAML keys of struct t to their fields' types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// kindName says what a node is, in words.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "empty"
}
