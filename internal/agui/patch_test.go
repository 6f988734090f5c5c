package agui

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func encode(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The examples of RFC 6902 Appendix A. want "" means the patch must fail.
var rfc6902 = []struct {
	name, doc, patch, want string
}{
	{"A.1 add object member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`},
	{"A.2 add array element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`},
	{"A.3 remove object member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`},
	{"A.4 remove array element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`},
	{"A.5 replace", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`},
	{"A.6 move value", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`, `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`},
	{"A.7 move array element", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`},
	{"A.8 test success", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`},
	{"A.9 test error", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, ``},
	{"A.10 add nested member", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"child":{"grandchild":{}},"foo":"bar"}`},
	{"A.11 ignore unrecognized elements", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`, `{"baz":"qux","foo":"bar"}`},
	{"A.12 add to nonexistent target", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, ``},
	{"A.14 ~ escape ordering", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`, `{"/":9,"~1":10}`},
	{"A.15 comparing strings and numbers", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":"10"}]`, ``},
	{"A.16 add array value", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`},
	// Beyond the appendix.
	{"~1 escape", `{"a/b":1}`, `[{"op":"replace","path":"/a~1b","value":2}]`, `{"a/b":2}`},
	{"replace root", `{"a":1}`, `[{"op":"replace","path":"","value":[1]}]`, `[1]`},
	{"add root", `{"a":1}`, `[{"op":"add","path":"","value":{"b":2}}]`, `{"b":2}`},
	{"copy", `{"a":{"b":[1]}}`, `[{"op":"copy","from":"/a/b","path":"/c"}]`, `{"a":{"b":[1]},"c":[1]}`},
	{"move into itself", `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":"/a/c"}]`, ``},
	{"move to same place", `{"a":1}`, `[{"op":"move","from":"/a","path":"/a"}]`, `{"a":1}`},
	{"remove missing", `{"a":1}`, `[{"op":"remove","path":"/b"}]`, ``},
	{"replace missing", `{"a":1}`, `[{"op":"replace","path":"/b","value":1}]`, ``},
	{"index out of range", `[1,2]`, `[{"op":"add","path":"/3","value":0}]`, ``},
	{"index at length appends", `[1,2]`, `[{"op":"add","path":"/2","value":0}]`, `[1,2,0]`},
	{"leading zero index", `[1,2]`, `[{"op":"replace","path":"/01","value":0}]`, ``},
	{"dash on remove", `[1,2]`, `[{"op":"remove","path":"/-"}]`, ``},
	{"test numbers by value", `{"a":1}`, `[{"op":"test","path":"/a","value":1.0}]`, `{"a":1}`},
	{"test objects regardless of order", `{"a":{"x":1,"y":[true,null]}}`, `[{"op":"test","path":"/a","value":{"y":[true,null],"x":1}}]`, `{"a":{"x":1,"y":[true,null]}}`},
	{"atomic: later op fails", `{"a":1}`, `[{"op":"add","path":"/b","value":2},{"op":"remove","path":"/zz"}]`, ``},
}

func TestApplyPatchRFC6902(t *testing.T) {
	for _, tc := range rfc6902 {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustDecode(t, tc.doc)
			before := encode(t, doc)
			p, err := ParsePatch([]byte(tc.patch))
			if err != nil {
				t.Fatalf("ParsePatch: %v", err)
			}
			got, err := ApplyPatch(doc, p, DocLimits{})
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ApplyPatch = %s, want an error", encode(t, got))
				}
			} else {
				if err != nil {
					t.Fatalf("ApplyPatch: %v", err)
				}
				if g := encode(t, got); g != tc.want {
					t.Fatalf("ApplyPatch = %s, want %s", g, tc.want)
				}
			}
			if after := encode(t, doc); after != before {
				t.Fatalf("the input changed: %s, was %s", after, before)
			}
		})
	}
}

func TestParsePatchRefusals(t *testing.T) {
	for patch, want := range map[string]string{
		`{}`:                                    "a JSON Patch must be an array",
		`[1]`:                                   "operation 0 must be a JSON object",
		`[{"op":"frob","path":"/a"}]`:           "operation 0: op must be add, remove, replace, move, copy or test",
		`[{"op":"add","value":1}]`:              "operation 0: path must be a string",
		`[{"op":"add","path":"a","value":1}]`:   "operation 0: path: a JSON Pointer must be empty or start with /",
		`[{"op":"add","path":"/~2","value":1}]`: "operation 0: path: ~ must be followed by 0 or 1",
		`[{"op":"add","path":"/a"}]`:            "operation 0: value is required",
		`[{"op":"move","path":"/a"}]`:           "operation 0: from must be a string",
	} {
		_, err := ParsePatch([]byte(patch))
		if err == nil || err.Error() != want {
			t.Errorf("ParsePatch(%s) = %v, want %q", patch, err, want)
		}
	}
}

func TestApplyPatchLimits(t *testing.T) {
	p, _ := ParsePatch([]byte(`[{"op":"add","path":"/a","value":"` + strings.Repeat("x", 100) + `"}]`))
	_, err := ApplyPatch(map[string]any{}, p, DocLimits{MaxBytes: 100})
	if !errors.Is(err, ErrDocTooLarge) {
		t.Fatalf("size: err = %v, want ErrDocTooLarge", err)
	}
	if _, err := ApplyPatch(map[string]any{}, p, DocLimits{MaxBytes: 108}); err != nil {
		t.Fatalf(`{"a":"x*100"} is 108 bytes: %v`, err)
	}
	deep, _ := ParsePatch([]byte(`[{"op":"add","path":"/a","value":[[[1]]]}]`))
	if _, err := ApplyPatch(map[string]any{}, deep, DocLimits{MaxDepth: 3}); !errors.Is(err, ErrDocTooLarge) {
		t.Fatalf("depth: err = %v, want ErrDocTooLarge", err)
	}
	if _, err := ApplyPatch(map[string]any{}, deep, DocLimits{MaxDepth: 4}); err != nil {
		t.Fatalf("depth 4: %v", err)
	}
}

func TestMeasureMatchesEncoding(t *testing.T) {
	doc := mustDecode(t, `{"a":[1,2.5,"x\"<>&\u2028\n\u0001é"],"b":{"c":null,"d":true,"e":false},"f":-1e3}`)
	n, ok := measure(doc, 0, 100, 1<<30)
	if want := len(encode(t, doc)); !ok || n != want {
		t.Fatalf("measure = %d, %v; encoding is %d bytes", n, ok, want)
	}
}

func TestStateCheckApply(t *testing.T) {
	s := NewState(map[string]any{}, DocLimits{MaxBytes: 1000})
	snap, err := Parse([]byte(`{"type":"STATE_SNAPSHOT","snapshot":{"todo":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(snap); err != nil {
		t.Fatal(err)
	}
	s.Apply(snap)
	delta, _ := Parse([]byte(`{"type":"STATE_DELTA","delta":[{"op":"add","path":"/todo/-","value":"milk"}]}`))
	if err := s.Check(delta); err != nil {
		t.Fatal(err)
	}
	if got := encode(t, s.Doc()); got != `{"todo":[]}` {
		t.Fatalf("Check changed the state: %s", got)
	}
	s.Apply(delta)
	bad, _ := Parse([]byte(`{"type":"STATE_DELTA","delta":[{"op":"add","path":"/todo/-","value":"eggs"},{"op":"replace","path":"/done","value":1}]}`))
	err = s.Check(bad)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeStatePatchFailed || e.Detail != `STATE_DELTA: operation 1 (replace /done): no member "done"` {
		t.Fatalf("Check(bad) = %#v", err)
	}
	if got := string(s.Snapshot().Raw); got != `{"type":"STATE_SNAPSHOT","snapshot":{"todo":["milk"]}}` {
		t.Fatalf("Snapshot = %s", got)
	}
	big, _ := Parse([]byte(`{"type":"STATE_DELTA","delta":[{"op":"add","path":"/x","value":"` + strings.Repeat("y", 1000) + `"}]}`))
	if err := s.Check(big); !errors.As(err, &e) || e.Code != CodeLimitExceeded {
		t.Fatalf("Check(big) = %v, want limit_exceeded", err)
	}
}
