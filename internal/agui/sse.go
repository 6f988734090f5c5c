package agui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// SetSSEHeaders sets the response headers of an AG-UI event stream:
// text/event-stream (anything but the protobuf media type makes
// @ag-ui/client parse SSE), no caching, no proxy buffering.
func SetSSEHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// AppendFrame appends one SSE frame to dst: "id: <id>\n" when hasID, then
// "data: <data>\n\n". data is one JSON value; @ag-ui/client splits frames on
// "\n\n" and lines on "\n" only, so the frame must hold no raw newline
// (nor "\r", a line end to other SSE parsers) outside its terminators: data
// holding either is compacted (a JSON value never needs them, and a string
// never holds them raw), and data that is not JSON is an error.
func AppendFrame(dst []byte, id uint64, hasID bool, data []byte) ([]byte, error) {
	if bytes.ContainsAny(data, "\r\n") {
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return dst, fmt.Errorf("agui: SSE data is not JSON: %w", err)
		}
		data = b.Bytes()
	}
	if hasID {
		dst = append(dst, "id: "...)
		dst = strconv.AppendUint(dst, id, 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n'), nil
}

// WriteFrame writes one frame (see AppendFrame) with a single Write.
func WriteFrame(w io.Writer, id uint64, hasID bool, data []byte) error {
	buf, err := AppendFrame(make([]byte, 0, len(data)+32), id, hasID, data)
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// WriteEvent writes ev as a frame with id seq (seq 0: no id line, as for
// the replayed starts that open a resumed stream).
func WriteEvent(w io.Writer, seq uint64, ev *Event) error {
	return WriteFrame(w, seq, seq > 0, ev.Raw)
}

// KeepAlive is an SSE comment line, ignored by every parser, that a server
// writes on an idle stream so proxies do not close it.
var KeepAlive = []byte(": keep-alive\n\n")
