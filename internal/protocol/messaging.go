package protocol

import "encoding/json"

// Message types of the /ws/agent messaging endpoint.
const (
	TypeSubscribe    = "subscribe"
	TypeSubscribed   = "subscribed"
	TypeUnsubscribe  = "unsubscribe"
	TypeUnsubscribed = "unsubscribed"
	TypePublish      = "publish"
	TypePublished    = "published"
	TypeMessage      = "message"
	TypeMessageAck   = "message_ack"
)

// ChannelRequest is subscribe and unsubscribe.
type ChannelRequest struct {
	Channel string `json:"channel"`
}

// PublishRequest is publish.
type PublishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// ChannelReply answers subscribe (subscribed), unsubscribe (unsubscribed)
// and publish (published, with the message's seq).
type ChannelReply struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id,omitempty"`
	Channel string          `json:"channel"`
	Seq     uint64          `json:"seq,omitempty"`
}

// ChannelMessage is a message delivered to a channel's subscribers. Seq is
// the message's position in the message history: strictly increasing within
// a channel, not contiguous.
type ChannelMessage struct {
	Type    string          `json:"type"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	From    string          `json:"from"`
	Seq     uint64          `json:"seq"`
}

// MessageAck acknowledges a client message of any type the endpoint does not
// handle itself; the message is forwarded to backends.
type MessageAck struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id,omitempty"`
	Status  string          `json:"status"`
	Content json.RawMessage `json:"content,omitempty"`
}

// AppendJSON appends a encoded as json.Marshal encodes it (see appendRaw
// for the one difference): acks answer every client message, and
// reflection was most of their cost.
func (a MessageAck) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = AppendString(b, []byte(a.Type))
	if len(a.ID) > 0 {
		b = appendRaw(append(b, `,"id":`...), a.ID)
	}
	b = append(b, `,"status":`...)
	b = AppendString(b, []byte(a.Status))
	if len(a.Content) > 0 {
		b = appendRaw(append(b, `,"content":`...), a.Content)
	}
	return append(b, '}')
}

// InboxMessage is what backends receive on tether.inbox.<user> for every
// acknowledged client message.
type InboxMessage struct {
	UserID     string          `json:"user_id"`
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	Message    json.RawMessage `json:"message"`
	ReceivedAt string          `json:"received_at"`
	Node       string          `json:"node"`
}

// AppendJSON appends m encoded as json.Marshal encodes it (see appendRaw
// for the one difference).
func (m InboxMessage) AppendJSON(b []byte) []byte {
	b = append(b, `{"user_id":`...)
	b = AppendString(b, []byte(m.UserID))
	b = append(b, `,"type":`...)
	b = AppendString(b, []byte(m.Type))
	if len(m.ID) > 0 {
		b = appendRaw(append(b, `,"id":`...), m.ID)
	}
	b = appendRaw(append(b, `,"message":`...), m.Message)
	b = append(b, `,"received_at":`...)
	b = AppendString(b, []byte(m.ReceivedAt))
	b = append(b, `,"node":`...)
	b = AppendString(b, []byte(m.Node))
	return append(b, '}')
}
