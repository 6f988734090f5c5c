// Package channels is Tether's publish/subscribe: channel names and who may
// use them, and the hub that carries a publish from any node to every
// subscriber on every node.
//
// Every publish is stored in a JetStream stream, whose sequence number
// becomes the message's seq; each node follows the stream with one ordered
// consumer and fans each message out to its local subscribers. A node
// therefore holds one NATS consumer however many channels and connections
// it serves, and the stream doubles as the message history.
package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/backbone"
)

// StreamName is the JetStream stream holding channel messages.
const StreamName = "TETHER_MESSAGES"

// SubjectPrefix prefixes the NATS subject of every channel: a channel's
// subject is SubjectPrefix + backbone.SubjectToken(channel).
const SubjectPrefix = "tether.channel."

// MaxNameLen is the longest channel name.
const MaxNameLen = 255

const (
	headerChannel = "Tether-Channel"
	headerFrom    = "Tether-From"
)

// ValidName reports whether s can name a channel: 1 to 255 bytes of
// printable ASCII without spaces or the wildcard characters * and >.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

// UserChannel is the personal channel of a user, which the user may always
// use and which POST /api/publish addresses with "user".
func UserChannel(user string) string { return "user:" + user }

// Allowed reports whether the holder of cl may subscribe and publish to
// channel: admins may use every channel; others their own user channel and
// the channels matching a pattern of their token's channels claim.
func Allowed(cl *auth.Claims, channel string) bool {
	if cl.IsAdmin() || channel == UserChannel(cl.Subject) {
		return true
	}
	for _, p := range cl.Channels {
		if Match(p, channel) {
			return true
		}
	}
	return false
}

// Match reports whether name matches pattern, in which '*' stands for any
// run of characters (including none) and every other byte for itself.
func Match(pattern, name string) bool {
	// Iterative glob with backtracking to the last star: linear for the
	// patterns people write, never exponential.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Subscriber receives messages published to the channels it subscribed to.
type Subscriber interface {
	// Deliver is given the encoded {"type":"message",…} frame, shared by all
	// subscribers. It must not block and must not modify msg.
	Deliver(msg []byte)
}

// HubConfig configures the hub's history stream.
type HubConfig struct {
	MaxAge   time.Duration
	MaxBytes int64
	Logger   *slog.Logger
}

// Hub routes channel messages between NATS and local subscribers.
type Hub struct {
	js  jetstream.JetStream
	bb  *backbone.Backbone
	log *slog.Logger

	mu   sync.RWMutex
	subs map[string]map[Subscriber]struct{}

	// Following the stream (follow.go): owned by the follow goroutine
	// once NewHub returns.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	from   uint64 // stream sequence of the next message to deliver
	cons   jetstream.Consumer
	it     jetstream.MessagesContext
}

// NewHub creates or updates the message stream and starts following it.
func NewHub(ctx context.Context, bb *backbone.Backbone, cfg HubConfig) (*Hub, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := bb.EnsureStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Tether channel messages",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Replicas:    bb.Replicas,
	})
	if err != nil {
		return nil, err
	}
	h := &Hub{js: bb.JS, bb: bb, log: cfg.Logger, subs: map[string]map[Subscriber]struct{}{}, done: make(chan struct{})}
	// Messages stored from now on are delivered (DeliverNew, but with a
	// sequence to resume from should the consumer be lost before the
	// first one).
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("follow stream %s: %w", StreamName, err)
	}
	h.from = info.State.LastSeq + 1
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if err := h.open(ctx); err != nil {
		h.cancel()
		return nil, err
	}
	go h.follow()
	return h, nil
}

// Publish stores a message on channel and returns its seq once JetStream
// has it; delivery to subscribers follows from the stream. data must be
// valid JSON.
func (h *Hub) Publish(ctx context.Context, channel, from string, data json.RawMessage) (uint64, error) {
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	msg := &nats.Msg{
		Subject: SubjectPrefix + backbone.SubjectToken(channel),
		Header:  nats.Header{headerChannel: []string{channel}, headerFrom: []string{from}},
		Data:    data,
	}
	// On a full disk fail at once (backbone.ErrStorageFull), before
	// JetStream runs out of space.
	if err := h.bb.Writable(); err != nil {
		return 0, fmt.Errorf("publish to %s: %w", channel, err)
	}
	// The message ID makes a retry safe: if an attempt was stored but its
	// acknowledgement was lost with a NATS server, the stream drops the
	// second copy and acknowledges the first one's sequence.
	id := nuid.Next()
	var ack *jetstream.PubAck
	err := backbone.Retry(ctx, func(ctx context.Context) error {
		var err error
		ack, err = h.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
		return h.bb.WriteResult(err)
	})
	if err != nil {
		return 0, fmt.Errorf("publish to %s: %w", channel, err)
	}
	return ack.Sequence, nil
}

// Subscribe adds s to channel's local subscribers.
func (h *Hub) Subscribe(channel string, s Subscriber) {
	h.mu.Lock()
	set := h.subs[channel]
	if set == nil {
		set = map[Subscriber]struct{}{}
		h.subs[channel] = set
	}
	set[s] = struct{}{}
	h.mu.Unlock()
}

// Unsubscribe removes s from channel's local subscribers.
func (h *Hub) Unsubscribe(channel string, s Subscriber) {
	h.mu.Lock()
	if set := h.subs[channel]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.subs, channel)
		}
	}
	h.mu.Unlock()
}

// Subscribers returns the number of local subscribers of channel.
func (h *Hub) Subscribers(channel string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[channel])
}

// dispatch delivers message m (stream sequence seq) to the local
// subscribers of its channel.
func (h *Hub) dispatch(m jetstream.Msg, seq uint64) {
	channel := m.Headers().Get(headerChannel)
	h.mu.RLock()
	defer h.mu.RUnlock()
	set := h.subs[channel]
	if len(set) == 0 {
		return
	}
	frame := Encode(channel, m.Headers().Get(headerFrom), m.Data(), seq)
	for s := range set {
		s.Deliver(frame)
	}
}

// Encode builds the {"type":"message",…} frame once for all subscribers.
func Encode(channel, from string, data []byte, seq uint64) []byte {
	if len(data) == 0 {
		data = []byte("null")
	}
	b := make([]byte, 0, len(data)+len(channel)+len(from)+64)
	b = append(b, `{"type":"message","channel":`...)
	b = appendJSONString(b, channel)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, `,"from":`...)
	b = appendJSONString(b, from)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\"\\") && isPlain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
