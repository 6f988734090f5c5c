package agui

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendFrame(t *testing.T) {
	for _, tc := range []struct {
		id    uint64
		hasID bool
		data  string
		want  string
	}{
		{7, true, `{"type":"RUN_STARTED"}`, "id: 7\ndata: {\"type\":\"RUN_STARTED\"}\n\n"},
		{0, false, `{"a":1}`, "data: {\"a\":1}\n\n"},
		{0, true, `{"a":1}`, "id: 0\ndata: {\"a\":1}\n\n"},
		{1, true, "{\r\n \"a\" : \"x\\ny\",\n \"b\": [1,\n2]\n}", "id: 1\ndata: {\"a\":\"x\\ny\",\"b\":[1,2]}\n\n"},
	} {
		got, err := AppendFrame(nil, tc.id, tc.hasID, []byte(tc.data))
		if err != nil || string(got) != tc.want {
			t.Errorf("AppendFrame(%d, %v, %q) = %q, %v; want %q", tc.id, tc.hasID, tc.data, got, err, tc.want)
		}
	}
	if _, err := AppendFrame(nil, 1, true, []byte("not\njson")); err == nil || !strings.HasPrefix(err.Error(), "agui: SSE data is not JSON: ") {
		t.Fatalf("non-JSON data: %v", err)
	}
}

func TestWriteEvent(t *testing.T) {
	var b bytes.Buffer
	ev := mustParse(t, `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"a\nb\u2028"}`)
	if err := WriteEvent(&b, 12, ev); err != nil {
		t.Fatal(err)
	}
	if err := WriteEvent(&b, 0, ev); err != nil {
		t.Fatal(err)
	}
	want := "id: 12\ndata: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m\",\"delta\":\"a\\nb\\u2028\"}\n\n" +
		"data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m\",\"delta\":\"a\\nb\\u2028\"}\n\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}
