package agui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Op is one RFC 6902 operation.
type Op struct {
	// Op is add, remove, replace, move, copy or test.
	Op string
	// Path and From are RFC 6901 JSON Pointers ("" is the whole document;
	// "~1" is "/" and "~0" is "~" inside a token).
	Path string
	From string
	// Value is the value of add, replace and test, decoded JSON.
	Value any

	path, from []string
}

// Patch is an RFC 6902 JSON Patch document: operations applied in order.
type Patch []Op

// ParsePatch reads a JSON Patch document and checks its structure: an
// array of objects, each with a known op, a valid path, a from for move and
// copy, and a value for add, replace and test (members an operation does
// not define are ignored, as RFC 6902 section 4 requires).
func ParsePatch(data []byte) (Patch, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	return toPatch(v)
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("more JSON after the value")
	}
	return v, nil
}

func toPatch(v any) (Patch, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("a JSON Patch must be an array")
	}
	p := make(Patch, 0, len(arr))
	for i, e := range arr {
		obj, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("operation %d must be a JSON object", i)
		}
		var op Op
		op.Op, _ = obj["op"].(string)
		switch op.Op {
		case "add", "remove", "replace", "move", "copy", "test":
		default:
			return nil, fmt.Errorf("operation %d: op must be add, remove, replace, move, copy or test", i)
		}
		path, ok := obj["path"].(string)
		if !ok {
			return nil, fmt.Errorf("operation %d: path must be a string", i)
		}
		toks, err := parsePointer(path)
		if err != nil {
			return nil, fmt.Errorf("operation %d: path: %v", i, err)
		}
		op.Path, op.path = path, toks
		switch op.Op {
		case "move", "copy":
			from, ok := obj["from"].(string)
			if !ok {
				return nil, fmt.Errorf("operation %d: from must be a string", i)
			}
			if op.from, err = parsePointer(from); err != nil {
				return nil, fmt.Errorf("operation %d: from: %v", i, err)
			}
			op.From = from
		case "add", "replace", "test":
			val, ok := obj["value"]
			if !ok {
				return nil, fmt.Errorf("operation %d: value is required", i)
			}
			op.Value = val
		}
		p = append(p, op)
	}
	return p, nil
}

// parsePointer splits an RFC 6901 pointer into unescaped tokens.
func parsePointer(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] != '/' {
		return nil, errors.New("a JSON Pointer must be empty or start with /")
	}
	parts := strings.Split(s[1:], "/")
	for i, t := range parts {
		if !strings.Contains(t, "~") {
			continue
		}
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, errors.New("~ must be followed by 0 or 1")
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// DocLimits bounds a JSON document: MaxBytes its compact encoding, MaxDepth
// its nesting (a scalar is depth 0, [] or {} depth 1). Zero means no bound.
type DocLimits struct {
	MaxBytes int
	MaxDepth int
}

// ErrDocTooLarge is returned (wrapped) when a result exceeds DocLimits.
var ErrDocTooLarge = errors.New("the document exceeds its size or depth limit")

// ApplyPatch applies p to doc and returns the result. It is atomic: doc is
// never changed (containers on the paths of the operations are copied, the
// rest is shared, so doc and the result must be treated as immutable), and
// on any error nothing of the patch applies. The result is checked against
// lim. Values are decoded JSON: map[string]any, []any, string, json.Number
// or float64, bool, nil.
func ApplyPatch(doc any, p Patch, lim DocLimits) (any, error) {
	for i, op := range p {
		var err error
		doc, err = applyOp(doc, op)
		if err != nil {
			return nil, fmt.Errorf("operation %d (%s %s): %w", i, op.Op, op.Path, err)
		}
	}
	if lim.MaxBytes > 0 || lim.MaxDepth > 0 {
		if err := checkDoc(doc, lim); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func checkDoc(doc any, lim DocLimits) error {
	maxBytes := lim.MaxBytes
	if maxBytes <= 0 {
		maxBytes = int(^uint(0) >> 1)
	}
	maxDepth := lim.MaxDepth
	if maxDepth <= 0 {
		maxDepth = int(^uint(0) >> 1)
	}
	n, ok := measure(doc, 0, maxDepth, maxBytes)
	if !ok {
		return fmt.Errorf("%w (%d bytes, depth %d)", ErrDocTooLarge, lim.MaxBytes, lim.MaxDepth)
	}
	_ = n
	return nil
}

// measure returns the compact JSON size of v, or false once it passes
// budget bytes or maxDepth levels (so it stops early on a huge value).
func measure(v any, depth, maxDepth, budget int) (int, bool) {
	switch x := v.(type) {
	case nil:
		return 4, budget >= 4
	case bool:
		if x {
			return 4, budget >= 4
		}
		return 5, budget >= 5
	case json.Number:
		return len(x), budget >= len(x)
	case float64:
		b, _ := json.Marshal(x)
		return len(b), budget >= len(b)
	case string:
		n := stringSize(x)
		return n, budget >= n
	case []any:
		if depth+1 > maxDepth {
			return 0, false
		}
		n := 2
		for i, e := range x {
			if i > 0 {
				n++
			}
			m, ok := measure(e, depth+1, maxDepth, budget-n)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, budget >= n
	case map[string]any:
		if depth+1 > maxDepth {
			return 0, false
		}
		n := 2
		i := 0
		for k, e := range x {
			if i > 0 {
				n++
			}
			i++
			n += stringSize(k) + 1
			m, ok := measure(e, depth+1, maxDepth, budget-n)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, budget >= n
	}
	return 0, false
}

// stringSize is the length of s encoded as a JSON string by encoding/json.
func stringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}

func applyOp(doc any, op Op) (any, error) {
	switch op.Op {
	case "add":
		return add(doc, op.path, op.Value)
	case "remove":
		return remove(doc, op.path)
	case "replace":
		if _, err := get(doc, op.path); err != nil {
			return nil, err
		}
		if len(op.path) == 0 {
			return op.Value, nil
		}
		return update(doc, op.path, func(c any, key string) (any, error) {
			switch x := c.(type) {
			case map[string]any:
				m := copyMap(x)
				m[key] = op.Value
				return m, nil
			case []any:
				i, _ := index(key, len(x), false)
				a := append([]any(nil), x...)
				a[i] = op.Value
				return a, nil
			}
			return nil, errors.New("unreachable")
		})
	case "move":
		if op.From == op.Path {
			_, err := get(doc, op.from)
			return doc, err
		}
		if isPrefix(op.from, op.path) {
			return nil, errors.New("from is a proper prefix of path: a value cannot move into itself")
		}
		v, err := get(doc, op.from)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		if doc, err = remove(doc, op.from); err != nil {
			return nil, err
		}
		return add(doc, op.path, v)
	case "copy":
		v, err := get(doc, op.from)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		return add(doc, op.path, v)
	case "test":
		v, err := get(doc, op.path)
		if err != nil {
			return nil, err
		}
		if !Equal(v, op.Value) {
			return nil, errors.New("test failed: the value differs")
		}
		return doc, nil
	}
	return nil, fmt.Errorf("unknown op %q", op.Op)
}

func isPrefix(prefix, path []string) bool {
	if len(prefix) >= len(path) {
		return false
	}
	for i := range prefix {
		if prefix[i] != path[i] {
			return false
		}
	}
	return true
}

// get returns the value at toks.
func get(doc any, toks []string) (any, error) {
	cur := doc
	for _, t := range toks {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[t]
			if !ok {
				return nil, fmt.Errorf("no member %q", t)
			}
			cur = v
		case []any:
			i, err := index(t, len(x), false)
			if err != nil {
				return nil, err
			}
			cur = x[i]
		default:
			return nil, fmt.Errorf("cannot step into a scalar with %q", t)
		}
	}
	return cur, nil
}

// update returns a copy of doc in which the container at toks[:len-1] is
// replaced by leaf(container, last token); containers on the way are
// copied, nothing is changed in place.
func update(doc any, toks []string, leaf func(c any, key string) (any, error)) (any, error) {
	if len(toks) == 1 {
		switch doc.(type) {
		case map[string]any, []any:
			return leaf(doc, toks[0])
		}
		return nil, fmt.Errorf("cannot step into a scalar with %q", toks[0])
	}
	t := toks[0]
	switch x := doc.(type) {
	case map[string]any:
		child, ok := x[t]
		if !ok {
			return nil, fmt.Errorf("no member %q", t)
		}
		nc, err := update(child, toks[1:], leaf)
		if err != nil {
			return nil, err
		}
		m := copyMap(x)
		m[t] = nc
		return m, nil
	case []any:
		i, err := index(t, len(x), false)
		if err != nil {
			return nil, err
		}
		nc, err := update(x[i], toks[1:], leaf)
		if err != nil {
			return nil, err
		}
		a := append([]any(nil), x...)
		a[i] = nc
		return a, nil
	}
	return nil, fmt.Errorf("cannot step into a scalar with %q", t)
}

func add(doc any, toks []string, v any) (any, error) {
	if len(toks) == 0 {
		return v, nil
	}
	return update(doc, toks, func(c any, key string) (any, error) {
		switch x := c.(type) {
		case map[string]any:
			m := copyMap(x)
			m[key] = v
			return m, nil
		case []any:
			i, err := index(key, len(x), true)
			if err != nil {
				return nil, err
			}
			a := make([]any, 0, len(x)+1)
			a = append(a, x[:i]...)
			a = append(a, v)
			return append(a, x[i:]...), nil
		}
		return nil, errors.New("unreachable")
	})
}

func remove(doc any, toks []string) (any, error) {
	if len(toks) == 0 {
		return nil, errors.New("cannot remove the whole document")
	}
	return update(doc, toks, func(c any, key string) (any, error) {
		switch x := c.(type) {
		case map[string]any:
			if _, ok := x[key]; !ok {
				return nil, fmt.Errorf("no member %q", key)
			}
			m := copyMap(x)
			delete(m, key)
			return m, nil
		case []any:
			i, err := index(key, len(x), false)
			if err != nil {
				return nil, err
			}
			a := make([]any, 0, len(x)-1)
			a = append(a, x[:i]...)
			return append(a, x[i+1:]...), nil
		}
		return nil, errors.New("unreachable")
	})
}

// index reads an array index token: digits without leading zeros, below n
// (or equal to n, or "-", when inserting).
func index(t string, n int, insert bool) (int, error) {
	if t == "-" {
		if insert {
			return n, nil
		}
		return 0, errors.New(`"-" names no existing element`)
	}
	if t == "" || (len(t) > 1 && t[0] == '0') {
		return 0, fmt.Errorf("%q is not an array index", t)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return 0, fmt.Errorf("%q is not an array index", t)
		}
	}
	i, err := strconv.Atoi(t)
	if err != nil || i > n || (i == n && !insert) {
		return 0, fmt.Errorf("index %s is out of range (length %d)", t, n)
	}
	return i, nil
}

func copyMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Equal reports whether two decoded JSON values are equal as RFC 6902's
// test defines it: numbers by value (1 equals 1.0), strings by code
// points, arrays element by element, objects by members regardless of
// order.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number, float64:
		fa, ok1 := number(a)
		fb, ok2 := number(b)
		return ok1 && ok2 && fa == fb
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !Equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	case float64:
		return x, true
	}
	return 0, false
}

// State is an operation's current AG-UI state: the last STATE_SNAPSHOT
// with every STATE_DELTA after it applied. It is not safe for concurrent
// use; the operation's event pipeline owns it.
//
// Check an event before storing it and Apply it after: Check computes the
// result of a STATE_DELTA without changing the state and keeps it, so Apply
// of the same event does not compute it twice.
type State struct {
	doc any
	lim DocLimits

	pendingEv  *Event
	pendingDoc any
}

// NewState returns a state holding initial (decoded JSON; nil is JSON
// null). An operation started from a RunAgentInput starts from its state,
// else from {} as @ag-ui/client's agent does, so that a first STATE_DELTA
// adding members applies the same way at Tether and in the client.
func NewState(initial any, lim DocLimits) *State {
	return &State{doc: initial, lim: lim}
}

// Doc returns the current state. It must not be changed.
func (s *State) Doc() any { return s.doc }

// Check returns nil when ev can be applied: any non-state event, a
// STATE_SNAPSHOT within the limits, a STATE_DELTA that applies to the
// current state with a result within the limits. Refusals: state_patch_failed
// (the detail names the failing operation), limit_exceeded.
func (s *State) Check(ev *Event) error {
	switch ev.Type {
	case StateSnapshot:
		if err := checkDoc(ev.Snapshot, s.lim); err != nil {
			return errorf(CodeLimitExceeded, "STATE_SNAPSHOT: %v", err)
		}
		s.pendingEv, s.pendingDoc = ev, ev.Snapshot
	case StateDelta:
		next, err := ApplyPatch(s.doc, ev.Patch, s.lim)
		if errors.Is(err, ErrDocTooLarge) {
			return errorf(CodeLimitExceeded, "STATE_DELTA: the state would exceed its limit: %v", err)
		}
		if err != nil {
			return errorf(CodeStatePatchFailed, "STATE_DELTA: %v", err)
		}
		s.pendingEv, s.pendingDoc = ev, next
	}
	return nil
}

// Apply applies a stored event (ignoring all but the state events). For
// an event that Check did not pass (Tether's own, or history being
// replayed) a failing delta leaves the state unchanged.
func (s *State) Apply(ev *Event) {
	if ev.Type != StateSnapshot && ev.Type != StateDelta {
		return
	}
	if s.pendingEv == ev {
		s.doc = s.pendingDoc
		s.pendingEv, s.pendingDoc = nil, nil
		return
	}
	switch ev.Type {
	case StateSnapshot:
		s.doc = ev.Snapshot
	case StateDelta:
		if next, err := ApplyPatch(s.doc, ev.Patch, DocLimits{}); err == nil {
			s.doc = next
		}
	}
}

// Snapshot returns a STATE_SNAPSHOT event of the current state: what a
// watcher starting after the history was dropped gets first.
func (s *State) Snapshot() *Event {
	return mustMake(StateSnapshot, KV{"snapshot", s.doc})
}
