package backbone

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// Replies larger than a NATS message (the server's max_payload, 1 MiB by
// default) travel as several messages to the request's reply subject, each
// carrying hdrPart "i/n" (1-based); the headers of the first are the
// reply's. A reply that fits is one plain message, as from Respond.
const hdrPart = "Part"

// partSlack is what a part leaves of the payload limit for its headers.
const partSlack = 4 << 10

// MaxReply bounds what RequestLarge accepts, whatever the responder sends.
const MaxReply = 64 << 20

// RespondLarge answers request m with header h and data of any size up to
// MaxReply, in parts when data does not fit in one message.
func RespondLarge(nc *nats.Conn, m *nats.Msg, h nats.Header, data []byte) error {
	if m.Reply == "" {
		return errors.New("respond: the request has no reply subject")
	}
	if len(data) > MaxReply {
		return fmt.Errorf("respond: %d bytes is more than the %d a reply may have", len(data), MaxReply)
	}
	limit := int(nc.MaxPayload()) - partSlack
	if len(data) <= limit {
		return m.RespondMsg(&nats.Msg{Header: h, Data: data})
	}
	n := (len(data) + limit - 1) / limit
	for i := range n {
		ph := nats.Header{}
		if i == 0 {
			for k, v := range h {
				ph[k] = v
			}
		}
		ph.Set(hdrPart, strconv.Itoa(i+1)+"/"+strconv.Itoa(n))
		part := data[i*limit : min(len(data), (i+1)*limit)]
		if err := nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: ph, Data: part}); err != nil {
			return fmt.Errorf("respond: part %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}

// RequestLarge sends a request and returns the reply's headers and data,
// reassembled when the responder (RespondLarge) sent it in parts. Errors are
// those of nats.Conn.RequestWithContext (nats.ErrNoResponders, the
// context's), or a malformed or oversized reply.
func RequestLarge(ctx context.Context, nc *nats.Conn, subject string, data []byte) (nats.Header, []byte, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, nil, fmt.Errorf("request %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Parts arrive in order on one subscription; bound what waits in it.
	if err := sub.SetPendingLimits(-1, MaxReply+int(nc.MaxPayload())); err != nil {
		return nil, nil, fmt.Errorf("request %s: %w", subject, err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Data: data}); err != nil {
		return nil, nil, fmt.Errorf("request %s: %w", subject, err)
	}
	var (
		header nats.Header
		out    []byte
		want   = 1
	)
	for got := 0; got < want; got++ {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, nil, err
		}
		if m.Header.Get("Status") == "503" && len(m.Data) == 0 {
			return nil, nil, nats.ErrNoResponders
		}
		part := m.Header.Get(hdrPart)
		if part == "" {
			if got == 0 {
				return m.Header, m.Data, nil
			}
			return nil, nil, fmt.Errorf("request %s: part %d of the reply is unnumbered", subject, got+1)
		}
		i, n, ok := parsePart(part)
		if !ok || i != got+1 || (got > 0 && n != want) || n > MaxReply/(int(nc.MaxPayload())-partSlack)+1 {
			return nil, nil, fmt.Errorf("request %s: reply part %q out of order", subject, part)
		}
		if got == 0 {
			header, want = m.Header, n
			header.Del(hdrPart)
		}
		if len(out)+len(m.Data) > MaxReply {
			return nil, nil, fmt.Errorf("request %s: reply over %d bytes", subject, MaxReply)
		}
		out = append(out, m.Data...)
	}
	return header, out, nil
}

// parsePart parses "i/n" with 1 <= i <= n.
func parsePart(s string) (i, n int, ok bool) {
	for k := 0; k < len(s); k++ {
		if s[k] == '/' {
			a, err1 := strconv.Atoi(s[:k])
			b, err2 := strconv.Atoi(s[k+1:])
			return a, b, err1 == nil && err2 == nil && a >= 1 && a <= b
		}
	}
	return 0, 0, false
}
