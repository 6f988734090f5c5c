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
