// Package messaging is the /ws/agent endpoint: channels (subscribe,
// unsubscribe, publish) and acknowledged client messages that are handed to
// backends over NATS.
package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/channels"
	"github.com/tether-dev/tether/internal/conn"
	"github.com/tether-dev/tether/internal/protocol"
)

// InboxPrefix prefixes the NATS subject on which backends receive what a
// user sends: InboxPrefix + backbone.SubjectToken(user id).
const InboxPrefix = "tether.inbox."

// Service serves /ws/agent.
type Service struct {
	Hub         *channels.Hub
	NC          *nats.Conn
	Node        string
	MaxChannels int
	// PublishTimeout bounds one publish to the history stream.
	PublishTimeout time.Duration
}

// Endpoint describes /ws/agent to the connection layer.
func (s *Service) Endpoint() *conn.Endpoint {
	return &conn.Endpoint{
		Name:       "agent",
		KnownTypes: []string{protocol.TypeSubscribe, protocol.TypeUnsubscribe, protocol.TypePublish},
		Open: func(c *conn.Conn) conn.Session {
			return &session{svc: s, c: c, chans: map[string]struct{}{}}
		},
	}
}

type session struct {
	svc *Service
	c   *conn.Conn

	mu    sync.Mutex // Handle and Closed may race with nothing but each other's end
	chans map[string]struct{}
}

// Deliver implements channels.Subscriber.
func (s *session) Deliver(msg []byte) { s.c.SendRaw(protocol.TypeMessage, msg) }

func (s *session) Handle(c *conn.Conn, env protocol.Envelope) {
	switch env.Type {
	case protocol.TypeSubscribe, protocol.TypeUnsubscribe:
		var req protocol.ChannelRequest
		if !s.decode(env, &req) || !s.checkChannel(env, req.Channel) {
			return
		}
		reply := protocol.TypeSubscribed
		s.mu.Lock()
		if env.Type == protocol.TypeSubscribe {
			if _, ok := s.chans[req.Channel]; !ok {
				if len(s.chans) >= s.svc.MaxChannels {
					s.mu.Unlock()
					s.c.ReplyCode(env.ID, protocol.CodeBadRequest, fmt.Sprintf("at most %d channels per connection", s.svc.MaxChannels))
					return
				}
				s.chans[req.Channel] = struct{}{}
				s.svc.Hub.Subscribe(req.Channel, s)
			}
		} else {
			reply = protocol.TypeUnsubscribed
			if _, ok := s.chans[req.Channel]; ok {
				delete(s.chans, req.Channel)
				s.svc.Hub.Unsubscribe(req.Channel, s)
			}
		}
		s.mu.Unlock()
		c.Send(reply, protocol.ChannelReply{Type: reply, ID: env.ID, Channel: req.Channel})
	case protocol.TypePublish:
		var req protocol.PublishRequest
		if !s.decode(env, &req) || !s.checkChannel(env, req.Channel) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.svc.PublishTimeout)
		seq, err := s.svc.Hub.Publish(ctx, req.Channel, c.UserID(), req.Data)
		cancel()
		if errors.Is(err, backbone.ErrStorageFull) {
			s.c.ReplyCode(env.ID, protocol.CodeStorageFull, "the node's storage is full: the message was not stored; try again later")
			return
		}
		if err != nil {
			c.Logger().Error("publish", "channel", req.Channel, "err", err)
			s.c.ReplyCode(env.ID, protocol.CodeInternal, "the message could not be stored; try again")
			return
		}
		c.Send(protocol.TypePublished, protocol.ChannelReply{Type: protocol.TypePublished, ID: env.ID, Channel: req.Channel, Seq: seq})
	default:
		// A content field of any JSON type is acknowledged as it is.
		content, ok := env.Member("content")
		if !ok {
			var body struct {
				Content json.RawMessage `json:"content"`
			}
			_ = json.Unmarshal(env.Raw, &body)
			content = body.Content
		}
		in := protocol.InboxMessage{
			UserID: c.UserID(), Type: env.Type, ID: env.ID, Message: env.Raw,
			ReceivedAt: time.Now().UTC().Format(time.RFC3339Nano), Node: s.svc.Node,
		}.AppendJSON(make([]byte, 0, len(env.Raw)+160))
		if err := s.svc.NC.Publish(InboxPrefix+backbone.SubjectToken(c.UserID()), in); err != nil {
			c.Logger().Error("forward to inbox", "err", err)
			s.c.ReplyCode(env.ID, protocol.CodeInternal, "the message could not be forwarded; try again")
			return
		}
		ack := protocol.MessageAck{Type: protocol.TypeMessageAck, ID: env.ID, Status: "received", Content: content}
		c.SendRaw(protocol.TypeMessageAck, ack.AppendJSON(make([]byte, 0, len(content)+len(env.ID)+48)))
	}
}

func (s *session) decode(env protocol.Envelope, v any) bool {
	if err := env.Into(v); err != nil {
		s.c.ReplyError(env.ID, err)
		return false
	}
	return true
}

func (s *session) checkChannel(env protocol.Envelope, ch string) bool {
	if !channels.ValidName(ch) {
		s.c.ReplyCode(env.ID, protocol.CodeInvalidChannel, "channel must be 1 to 255 printable ASCII characters without spaces, * or >")
		return false
	}
	if !channels.Allowed(s.c.Claims(), ch) {
		s.c.ReplyCode(env.ID, protocol.CodeForbidden, "not allowed to use channel "+ch)
		return false
	}
	return true
}

func (s *session) Closed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.chans {
		s.svc.Hub.Unsubscribe(ch, s)
	}
	s.chans = nil
}
