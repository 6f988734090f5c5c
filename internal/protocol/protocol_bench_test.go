package protocol

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// The frames every connection decodes most: a ping and a publish.
var (
	pingFrame    = []byte(`{"type":"ping","id":12345,"timestamp":1763800000000}`)
	publishFrame = []byte(`{"type":"publish","channel":"room:lobby","id":"p-17","data":{"text":"hello there","n":[1,2,3],"nested":{"a":true}}}`)
)

// BenchmarkDecode is the per-message envelope parse of every endpoint.
func BenchmarkDecode(b *testing.B) {
	for name, frame := range map[string][]byte{"ping": pingFrame, "publish": publishFrame} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if _, err := Decode(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeInto is Decode followed by the endpoint's full decode, as
// a publish is handled.
func BenchmarkDecodeInto(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		env, err := Decode(publishFrame)
		if err != nil {
			b.Fatal(err)
		}
		var req struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		if err := env.Into(&req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeTerminalOutput is the JSON framing of one terminal output
// chunk (the endpoint sends chunks of up to 64 KiB): "append" as the
// milestones endpoint writes live frames, "marshal" through encoding/json
// as it did before (and still does for base64 frames of non-UTF-8 output).
func BenchmarkEncodeTerminalOutput(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10} {
		// Base64 text with line breaks, as `cat` of a base64 file prints:
		// the newlines must be escaped.
		line := "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
		data := strings.Repeat(line, size/len(line)+1)[:size]
		raw := []byte(data)
		b.Run("append/"+byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			off := int64(0)
			for b.Loop() {
				off += int64(size)
				f := make([]byte, 0, len(raw)+len(raw)/8+80)
				f = append(f, `{"type":"output","data":`...)
				f = AppendString(f, raw)
				f = append(f, `,"offset":`...)
				_ = append(strconv.AppendInt(f, off, 10), '}')
			}
		})
		b.Run("marshal/"+byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			off := int64(0)
			for b.Loop() {
				off += int64(size)
				if _, err := json.Marshal(TerminalOutput{Type: TypeOutput, Data: data, Offset: off}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// BenchmarkAppendString is the JSON string encoding that terminal output
// frames and recordings use, on `cat` of a base64 file (a newline every 77
// bytes) and on text that is mostly escapes.
func BenchmarkAppendString(b *testing.B) {
	line := "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
	fill := func(s string) string { return strings.Repeat(s, 64<<10/len(s)+1)[:64<<10] }
	inputs := map[string]string{
		"base64":  fill(line),
		"colored": fill("\x1b[31mred\x1b[0m \"q\" caf\u00e9\r\n"),
	}
	for _, name := range []string{"base64", "colored"} {
		data := []byte(inputs[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			buf := make([]byte, 0, 2*len(data))
			for b.Loop() {
				buf = AppendString(buf[:0], data)
			}
		})
	}
}
