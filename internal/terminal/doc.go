// Package terminal runs programs in pseudo-terminals and serves their output
// to any number of clients that may come and go.
//
// A Session owns one program in one PTY. A single goroutine always drains
// the PTY into a ring addressed by absolute byte offset (offset 0 is the
// first byte the program printed), whether or not anyone is attached, so the
// program never blocks on output. Clients (Session.Attach) each hold only a
// cursor into that ring and pull from it with Client.Next; the reader never
// waits for them and memory does not grow with their number or slowness.
//
// A client that knows what it has already seen reattaches with that offset
// and gets exactly the missing bytes. A client that knows nothing, or asks
// for bytes that have left the ring, or reads so slowly that its bytes leave
// the ring, gets a Replay chunk instead: a snapshot of the session's screen
// model (package screen), which a goroutine of the session feeds with every
// byte off the reader's path (follow.go), at an exact offset at a safe
// boundary (never inside a UTF-8 character or an escape sequence); the
// bytes from that offset follow. Resizes reach the model and every client
// at the offset where they took effect (Resize chunks), and a client that
// resized and keeps its own size asks for a new snapshot (Resnapshot).
// Streams without a model (tests) replay raw bytes from the oldest safe
// boundary in the ring, with a prefix restoring the modes in force there.
//
// When the program exits the PTY is drained to the last byte before clients
// see io.EOF and Session.Done closes. Input goes through one bounded writer
// per session. Optionally the session is recorded as asciicast v2.
//
// The package knows nothing about WebSocket or JSON; a transport maps Chunks,
// Replay chunks and ExitStatus onto its own frames.
package terminal
