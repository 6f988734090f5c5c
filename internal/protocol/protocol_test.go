package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		in, typ, id string
		err         string // "" ok, "notjson", or the bad_request message
	}{
		{`{"type":"ping","id":1}`, "ping", "1", ""},
		{`{"type":"ping","id":"a"}`, "ping", `"a"`, ""},
		{`{"type":"ping","id":null}`, "ping", "", ""},
		{`not json`, "", "", "notjson"},
		{`{"type":`, "", "", "notjson"},
		{``, "", "", "notjson"},
		{`[]`, "", "", "a message must be a JSON object"},
		{`"ping"`, "", "", "a message must be a JSON object"},
		{`null`, "", "", "missing field type"},
		{`{}`, "", "", "missing field type"},
		{`{"type":""}`, "", "", "field type must not be empty"},
		{`{"type":1,"id":2}`, "", "2", "field type must be a string"},
		{`{"type":"x","id":true}`, "", "", "field id must be a string or a number"},
	}
	for _, tc := range cases {
		env, err := Decode([]byte(tc.in))
		switch {
		case tc.err == "notjson":
			if !errors.Is(err, ErrNotJSON) {
				t.Errorf("%s: err %v, want ErrNotJSON", tc.in, err)
			}
		case tc.err != "":
			var re *RequestError
			if !errors.As(err, &re) || re.Code != CodeBadRequest || re.Message != tc.err {
				t.Errorf("%s: err %v, want bad_request %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.in, err)
		}
		if env.Type != tc.typ || string(env.ID) != tc.id {
			t.Errorf("%s: type %q id %q, want %q %q", tc.in, env.Type, env.ID, tc.typ, tc.id)
		}
	}
}

func TestIntoNamesTheField(t *testing.T) {
	env, err := Decode([]byte(`{"type":"subscribe","channel":5}`))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Channel string `json:"channel"`
	}
	err = env.Into(&v)
	var re *RequestError
	if !errors.As(err, &re) || re.Message != "field channel must be a string" {
		t.Fatalf("err = %v", err)
	}
}

func TestValidID(t *testing.T) {
	for _, ok := range []string{"a", "op_test_123", "A.b-c_d", "0" + string(make([]byte, 0))} {
		if !ValidID(ok) {
			t.Errorf("%q should be valid", ok)
		}
	}
	long := ""
	for i := 0; i < 65; i++ {
		long += "a"
	}
	for _, bad := range []string{"", "_a", ".a", "a/b", "a b", "ä", long} {
		if ValidID(bad) {
			t.Errorf("%q should be invalid", bad)
		}
	}
}

// FuzzDecode checks that the decoder never panics, classifies every input,
// and only returns ids that are JSON strings or numbers.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"type":"ping","id":1}`, `not json`, `{"type":1}`, `[]`, `{"id":{"a":1},"type":"x"}`, "{\"type\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Decode(b)
		var re *RequestError
		switch {
		case err == nil:
			if env.Type == "" {
				t.Fatal("accepted a message without a type")
			}
		case errors.Is(err, ErrNotJSON), errors.As(err, &re):
		default:
			t.Fatalf("unclassified error %v", err)
		}
		if len(env.ID) > 0 && env.ID[0] != '"' && env.ID[0] != '-' && (env.ID[0] < '0' || env.ID[0] > '9') {
			t.Fatalf("id %q is neither a string nor a number", env.ID)
		}
	})
}

// FuzzAppendString checks the string encoder against
// encoding/json: the same text after decoding, for any bytes (invalid
// UTF-8 becomes U+FFFD in both).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\x1b[31mred\x1b[0m\r\n", "caf\xc3\xa9", "\xff\xfe", "\t\x00\x7f", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want string
		if err := json.Unmarshal(AppendString(nil, b), &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON: %v", b, err)
		}
		ref, _ := json.Marshal(string(b))
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Fatalf("%q: got %q, want %q", b, got, want)
		}
	})
}

// TestAppendStringEveryPosition puts each byte that needs a look at every
// position of a buffer longer than one eight-byte word, so both the word at
// a time and the byte at a time paths meet it.
func TestAppendStringEveryPosition(t *testing.T) {
	specials := []string{"\"", "\\", "\x00", "\x1f", "\n", "\x7f", "\x80", "\xc3\xa9", "\xe2\x80\xa8", "\xff", " ", "~"}
	for _, sp := range specials {
		for pos := 0; pos < 20; pos++ {
			b := []byte(strings.Repeat("a", pos) + sp + strings.Repeat("z", 19-pos))
			want, _ := json.Marshal(string(b))
			var got, w string
			if err := json.Unmarshal(AppendString(nil, b), &got); err != nil {
				t.Fatalf("%q: invalid JSON: %v", b, err)
			}
			_ = json.Unmarshal(want, &w)
			if got != w {
				t.Fatalf("%q: got %q, want %q", b, got, w)
			}
		}
	}
}

// FuzzDecodeFast checks the one-pass envelope scanner against the
// encoding/json reference: whatever it accepts, the reference accepts with
// the same type and id; and the valid frames every client sends are all
// accepted by it (a scanner that refused everything would pass otherwise).
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","id":1}`, ` { "type" : "publish" , "id" : "p-1", "channel":"a", "data": {"x":[1,-2.5e+3,true,false,null,"\u00e9\n"]} } `,
		`{"Type":"ping"}`, `{"type":"a","TYPE":"b"}`, `{"type":"a","type":null}`, `{"id":null,"type":"x"}`, `{"id":{},"type":"x"}`,
		`{"type":"x","id":01}`, `{"type":"x",}`, `{"type":"x"} x`, `{"type":"\u0070ing"}`, `{"typ\u0065":"ping"}`, "{\"type\":\"\xff\"}",
		`{"type":"x","n":1.}`, `{"type":"x","n":-}`, `{"type":"x","s":"a\qb"}`, `[{"type":"x"}]`, `null`, `{"type":""}`,
		`{"type":"x","d":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFast(b)
		ref, err := decodeReference(b)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("%q: fast scanner accepted, reference says %v", b, err)
		}
		if fast.Type != ref.Type || !bytes.Equal(fast.ID, ref.ID) || !bytes.Equal(fast.Raw, ref.Raw) {
			t.Fatalf("%q: fast %q %q, reference %q %q", b, fast.Type, fast.ID, ref.Type, ref.ID)
		}
	})
}

// TestDecodeFastAccepts lists frames the fast path must take, so that it
// keeps paying for itself.
func TestDecodeFastAccepts(t *testing.T) {
	for _, s := range []string{
		`{"type":"ping","id":12345,"timestamp":1763800000000}`,
		`{"type":"publish","channel":"room:lobby","id":"p-17","data":{"text":"hello \"there\"\n","n":[1,2.5,-3e-2],"nested":{"a":true,"b":null}}}`,
		`{"type":"input","data":"\u001b[A"}`,
		`{"id":"x","type":"subscribe","channel":"c","since":0}`,
		`{"type":"ping","id":null}`,
	} {
		if _, ok := decodeFast([]byte(s)); !ok {
			t.Errorf("decodeFast refused %s", s)
		}
	}
}

// TestAppendJSONMatchesMarshal compares the hand-written encoders with
// encoding/json: the same bytes when no raw value has whitespace or <>&,
// and the same decoded value always.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	raws := []json.RawMessage{nil, json.RawMessage(`"m-1"`), json.RawMessage(`42`), json.RawMessage(`{"a": [1, 2], "b" : "x y"}`), json.RawMessage(`null`), json.RawMessage(`"<b>&"`)}
	strs := []string{"", "alice", "quo\"te\\ \n\x01", "caf\u00e9", "\xff"}
	check := func(got, want []byte, exact bool) {
		t.Helper()
		if exact && !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	plain := func(r json.RawMessage) bool { return !bytes.ContainsAny(r, " <>&") }
	for _, id := range raws {
		for _, content := range raws {
			for _, s := range strs {
				a := MessageAck{Type: TypeMessageAck, ID: id, Status: s, Content: content}
				want, _ := json.Marshal(a)
				check(a.AppendJSON(nil), want, plain(id) && plain(content) && utf8.ValidString(s))
				msg := content
				if msg == nil {
					msg = json.RawMessage(`{"type":"x"}`)
				}
				m := InboxMessage{UserID: s, Type: s, ID: id, Message: msg, ReceivedAt: "2026-11-22T03:00:00Z", Node: s}
				want, _ = json.Marshal(m)
				check(m.AppendJSON(nil), want, plain(id) && plain(msg) && utf8.ValidString(s))
			}
		}
	}
}

// TestMember checks the top-level member lookup against encoding/json's
// field matching.
func TestMember(t *testing.T) {
	for _, tc := range []struct {
		frame, want string
		ok          bool
	}{
		{`{"type":"m","content":{"a":[1,{"content":2}]}}`, `{"a":[1,{"content":2}]}`, true},
		{`{"type":"m"}`, ``, true},
		{`{"Content":1,"content":2}`, `2`, true},
		{`{"CONTENT":"x"}`, `"x"`, true},
		{`{"content":null}`, `null`, true},
		{`{"conten\u0074":1}`, ``, false},
		{`[1]`, ``, false},
	} {
		v, ok := Envelope{Raw: []byte(tc.frame)}.Member("content")
		if string(v) != tc.want || ok != tc.ok {
			t.Errorf("Member(%s) = %s, %v; want %s, %v", tc.frame, v, ok, tc.want, tc.ok)
		}
	}
}

// FuzzStringMember checks the string member decoder against encoding/json
// on frames built around arbitrary string tokens.
func FuzzStringMember(f *testing.F) {
	for _, s := range []string{`"a"`, `"\r"`, `"\u001b[A"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`, `"caf\u00e9 \"q\" \\ \/"`, "\"\xff\"", `"\u00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		frame := append(append([]byte(`{"type":"input","data":`), tok...), '}')
		var want struct {
			Data *string `json:"data"`
		}
		refErr := json.Unmarshal(frame, &want)
		got, ok := Envelope{Raw: frame}.StringMember("data")
		if !ok {
			return
		}
		if refErr != nil || want.Data == nil {
			t.Fatalf("%q: decoded %q, encoding/json: %v", frame, got, refErr)
		}
		if string(got) != *want.Data {
			t.Fatalf("%q: got %q, want %q", frame, got, *want.Data)
		}
	})
}

func TestStringMemberFastPaths(t *testing.T) {
	for frame, want := range map[string]string{
		`{"type":"input","data":"ls -l"}`:                  "ls -l",
		`{"type":"input","data":"\r"}`:                     "\r",
		`{"type":"input","data":"\u001b[A"}`:               "\x1b[A",
		`{"type":"input","data":"\ud83d\ude00 caf\u00e9"}`: "\U0001F600 caf\u00e9",
	} {
		got, ok := Envelope{Raw: []byte(frame)}.StringMember("data")
		if !ok || string(got) != want {
			t.Errorf("StringMember(%s) = %q, %v; want %q", frame, got, ok, want)
		}
	}
}
