package backbone

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/textproto"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaderKV is a key-value bucket whose Get asks the bucket's stream leader.
//
// nats.go reads a key with a "direct get", which any replica of a
// replicated bucket may answer, and a follower may not have applied yet a
// write the leader has acknowledged: a milestone created by one request was
// "not found" by the next (seen with --replicas 3; nats-io/nats.docs#815
// says direct gets do not read your writes). Tether reads its records to
// act on them or change them right after they were written, so every Get
// goes to the leader through JetStream's message-get API, which is what
// NATS advises until the server itself offers read-after-write. Writes,
// watches and key listings are the bucket's own.
//
// It costs 2.5 times a direct get (BenchmarkKVGet: 125 against 49 us on
// the embedded server), so EnsureKeyValue keeps direct gets for buckets of
// one replica (the embedded default), whose one server answers both.
type leaderKV struct {
	jetstream.KeyValue
	nc      *nats.Conn
	api     string // $JS.API.STREAM.MSG.GET.KV_<bucket>
	subject string // $KV.<bucket>.
}

func newLeaderKV(kv jetstream.KeyValue, nc *nats.Conn) *leaderKV {
	return &leaderKV{
		KeyValue: kv,
		nc:       nc,
		api:      "$JS.API.STREAM.MSG.GET.KV_" + kv.Bucket(),
		subject:  "$KV." + kv.Bucket() + ".",
	}
}

// msgGetResponse is JetStream's answer to a message-get request.
type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error"`
	Message *struct {
		Seq    uint64    `json:"seq"`
		Header []byte    `json:"hdrs"`
		Data   []byte    `json:"data"`
		Time   time.Time `json:"time"`
	} `json:"message"`
}

// Get returns key's latest value as the stream leader has it, or
// jetstream.ErrKeyNotFound when the key has none or was deleted. Errors are
// those of nats.go's Get (no responders while the bucket has no leader, a
// *jetstream.APIError with code 503 during an election), so Retry and
// Transient treat them alike.
func (kv *leaderKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if !validKey(key) {
		// A key is part of a subject: "*" or ">" in it would match others.
		return nil, jetstream.ErrInvalidKey
	}
	req, _ := json.Marshal(map[string]string{"last_by_subj": kv.subject + key})
	msg, err := kv.nc.RequestWithContext(ctx, kv.api, req)
	if err != nil {
		return nil, fmt.Errorf("get %s from the leader of %s: %w", key, kv.Bucket(), err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("get %s from the leader of %s: bad answer: %w", key, kv.Bucket(), err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrKeyNotFound
	case resp.Error != nil:
		return nil, fmt.Errorf("get %s from the leader of %s: %w", key, kv.Bucket(), resp.Error)
	case resp.Message == nil:
		return nil, fmt.Errorf("get %s from the leader of %s: answer without a message", key, kv.Bucket())
	}
	if op := kvOperation(resp.Message.Header); op == "DEL" || op == "PURGE" {
		return nil, jetstream.ErrKeyNotFound
	}
	return &entry{bucket: kv.Bucket(), key: key, value: resp.Message.Data, rev: resp.Message.Seq, created: resp.Message.Time}, nil
}

// kvOperation returns the KV-Operation header of a stored message's header
// block ("NATS/1.0\r\nName: value\r\n…\r\n\r\n"), "" for a plain put.
func kvOperation(hdr []byte) string {
	if len(hdr) == 0 {
		return ""
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(hdr)))
	if _, err := r.ReadLine(); err != nil { // the NATS/1.0 status line
		return ""
	}
	h, _ := r.ReadMIMEHeader() // what was read before an error is kept
	return h.Get("KV-Operation")
}

// validKey is nats.go's rule for keys: letters, digits and -/_=. with no
// empty token.
func validKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '/', c == '_', c == '=':
		case c == '.':
			if key[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// entry is a key's value as read from the leader.
type entry struct {
	bucket, key string
	value       []byte
	rev         uint64
	created     time.Time
}

func (e *entry) Bucket() string                  { return e.bucket }
func (e *entry) Key() string                     { return e.key }
func (e *entry) Value() []byte                   { return e.value }
func (e *entry) Revision() uint64                { return e.rev }
func (e *entry) Created() time.Time              { return e.created }
func (e *entry) Delta() uint64                   { return 0 }
func (e *entry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }
