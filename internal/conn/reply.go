package conn

import (
	"encoding/json"
	"errors"

	"github.com/tether-dev/tether/internal/protocol"
)

// Error replies have one writer: ReplyCode. ReplyError maps an error to a
// reply: a *protocol.RequestError anywhere in its chain is the client's
// mistake and is told as it is; anything else is the server's, told only as
// internal_error with InternalErrorMessage while the detail is logged.

// InternalErrorMessage is the sentence of every internal_error reply that
// has no more specific one: an unexpected error's text may describe the
// server's internals, so it goes to the log instead.
const InternalErrorMessage = "the server could not complete the request; try again"

// ReplyCode answers the request with id (nil if none could be read) with
// an error message of code and message. It reports whether the reply was
// queued.
func (c *Conn) ReplyCode(id json.RawMessage, code, message string) bool {
	return c.Send(protocol.TypeError, protocol.NewError(id, code, message))
}

// ReplyError answers the request with id with err: a *protocol.RequestError
// with its code and message, any other error as internal_error with
// InternalErrorMessage (the error itself is logged at error level).
func (c *Conn) ReplyError(id json.RawMessage, err error) bool {
	if re, ok := errors.AsType[*protocol.RequestError](err); ok {
		return c.ReplyCode(id, re.Code, re.Message)
	}
	c.Logger().Error("request failed", "id", string(id), "err", err)
	return c.ReplyCode(id, protocol.CodeInternal, InternalErrorMessage)
}
