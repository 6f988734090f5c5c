package bench

import (
	"bytes"
	"strconv"

	"github.com/tether-dev/tether/internal/protocol"
)

// outputPrefix opens every live JSON output frame the server writes
// (milestones' appendOutput emits the fields in this order).
const outputPrefix = `{"type":"output","data":"`

// fastOutput decodes a live JSON output frame without encoding/json. In
// --self runs the client shares the two cores with the server, and
// json.Unmarshal of the frames was a third of the process's CPU: the bench
// would measure its own decoder (a browser's JSON.parse is native code).
// It accepts exactly the shape the server writes and reports false for
// anything else, including \u escapes, which readTerm then decodes with
// encoding/json; the test checks both agree.
func fastOutput(b []byte) (termFrame, bool) {
	if !bytes.HasPrefix(b, []byte(outputPrefix)) {
		return termFrame{}, false
	}
	rest := b[len(outputPrefix):]
	data := make([]byte, 0, len(rest))
	// q is the next '"' in rest: found once, not once per escape (the
	// closing quote is usually kilobytes away, past many \r\n).
	q := bytes.IndexByte(rest, '"')
	for {
		if q < 0 {
			return termFrame{}, false
		}
		e := bytes.IndexByte(rest[:q], '\\')
		if e < 0 {
			data = append(data, rest[:q]...)
			rest = rest[q+1:]
			break
		}
		data = append(data, rest[:e]...)
		if e+1 >= len(rest) {
			return termFrame{}, false
		}
		switch c := rest[e+1]; c {
		case '"', '\\', '/':
			data = append(data, c)
		case 'n':
			data = append(data, '\n')
		case 'r':
			data = append(data, '\r')
		case 't':
			data = append(data, '\t')
		case 'b':
			data = append(data, '\b')
		case 'f':
			data = append(data, '\f')
		default:
			return termFrame{}, false
		}
		rest = rest[e+2:]
		if q -= e + 2; q < 0 {
			// The quote found was the escaped one just consumed.
			q = bytes.IndexByte(rest, '"')
		}
	}
	rest, ok := bytes.CutPrefix(rest, []byte(`,"offset":`))
	if !ok || !bytes.HasSuffix(rest, []byte("}")) {
		return termFrame{}, false
	}
	off, err := strconv.ParseInt(string(rest[:len(rest)-1]), 10, 64)
	if err != nil {
		return termFrame{}, false
	}
	return termFrame{typ: protocol.TypeOutput, data: data, end: off}, true
}
