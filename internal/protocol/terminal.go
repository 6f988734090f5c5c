package protocol

import "encoding/json"

// SubprotocolTerminalBinary asks the terminal endpoint for binary output
// frames (see docs/protocol.md); JSON text frames are the default.
const SubprotocolTerminalBinary = "tether.terminal.binary.v1"

// Message types of the terminal endpoint.
const (
	TypeStatus = "status"
	TypeOutput = "output"
	TypeReplay = "replay"
	TypeExit   = "exit"
	TypeInput  = "input"
	TypeResize = "resize"
	TypeSize   = "size"
	TypeSignal = "signal"
)

// Error codes of the terminal endpoint.
const (
	CodeInvalidMilestone  = "invalid_milestone"
	CodeMilestoneFinished = "milestone_finished"
	CodeInvalidOffset     = "invalid_offset"
	CodeInputBusy         = "input_busy"
	CodeReadOnly          = "read_only"
	CodeInvalidSize       = "invalid_size"
	CodeInvalidSignal     = "invalid_signal"
	CodeSessionEnded      = "session_ended"
	CodeNodeDown          = "node_down"
	// CodeNotRunning: the milestone's program is not running (yet), so it
	// has no screen.
	CodeNotRunning = "not_running"
)

// MaxInputBytes is the largest input message a terminal accepts.
const MaxInputBytes = 64 << 10

// Binary output frames are [kind byte][offset uint64 big-endian][payload],
// where offset is the position just after the payload's output bytes.
const (
	BinaryOutput       = 0x01 // live output (or an exact catch-up after ?since=)
	BinaryReplayStart  = 0x02 // a replay begins: reset the terminal; payload is the mode prefix and output
	BinaryReplayOutput = 0x03 // more replayed output
)

// TerminalStatus is the first message on a terminal connection.
type TerminalStatus struct {
	Type    string `json:"type"`
	State   string `json:"state"`
	PID     int    `json:"pid"`
	Cols    uint16 `json:"cols"`
	Rows    uint16 `json:"rows"`
	Clients int    `json:"clients"`
	Offset  int64  `json:"offset"`
	Mode    string `json:"mode"`
}

// TerminalOutput carries program output. Offset is the absolute position in
// the session's output just after Data: a client that reconnects with
// ?since=<the last offset it saw> gets exactly what follows. Data is the
// output as UTF-8 text, or base64 when Encoding is "base64" (output that is
// not valid UTF-8).
type TerminalOutput struct {
	Type     string `json:"type"`
	Data     string `json:"data"`
	Offset   int64  `json:"offset"`
	Encoding string `json:"encoding,omitempty"`
	// Start is set on the first message of a replay: the offset of the
	// first replayed byte. That message's Data begins with escape sequences
	// that restore the terminal's modes; they are not counted in offsets.
	Start *int64 `json:"start,omitempty"`
}

// TerminalExit is sent after the last output when the program ends.
type TerminalExit struct {
	Type   string `json:"type"`
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
	Offset int64  `json:"offset"`
}

// TerminalSize tells every client the authoritative terminal size.
type TerminalSize struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Cols uint16          `json:"cols"`
	Rows uint16          `json:"rows"`
}

// InputRequest is {"type":"input","data":…}.
type InputRequest struct {
	Data string `json:"data"`
}

// ResizeRequest is {"type":"resize","cols":…,"rows":…}.
type ResizeRequest struct {
	Cols int `json:"cols"`
	Rows int `json:"rows"`
}

// SignalRequest is {"type":"signal","signal":"SIGINT"}.
type SignalRequest struct {
	Signal string `json:"signal"`
}
