package milestones

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/protocol"
)

// A terminal's PTY lives on the node that started it. A client connected
// to another node is served through a relay over NATS: the client's node
// asks the host node to attach (with the client's since), the host streams
// frames to an inbox of the client's node with credit-based flow control
// (at most relayWindow frames unacknowledged, so a slow client is paced
// exactly as a local one and the host never buffers for it), and input,
// resize and signal go back as requests. Subjects, per host node:
//
//	tether.term.<node>.attach  request: {id, since, inbox} → status or error code
//	tether.term.<node>.ctl     relay control (header Relay, Op): ack, ping, close; input/resize/signal as requests
//	tether.term.<node>.end     request: end a milestone running there
//	tether.term.<node>.recording request: a chunk of a recording there, or delete it
//	tether.term.<node>.screen    request: the screen of a terminal there (screen.go)
const (
	relayWindow  = 8
	relayIdle    = 30 * time.Second // a relay not heard from this long is dropped by its host
	relayPing    = 10 * time.Second
	relayTimeout = 5 * time.Second
)

// errNodeDown ends a relayed client whose host node stopped.
var errNodeDown = errors.New("the node running this terminal is down")

func subject(node, verb string) string {
	return "tether.term." + backbone.SubjectToken(node) + "." + verb
}

type attachRequest struct {
	ID    string `json:"id"`
	Since int64  `json:"since"`
	Inbox string `json:"inbox"`
}

type attachReply struct {
	Relay   string                  `json:"relay,omitempty"`
	Status  protocol.TerminalStatus `json:"status"`
	Code    string                  `json:"code,omitempty"`
	Message string                  `json:"message,omitempty"`
}

type endRequest struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

type endReply struct {
	Milestone *Milestone `json:"milestone,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// Frame headers on the relay stream.
const (
	hdrType   = "Type"
	hdrEnd    = "End"
	hdrStart  = "Start"
	hdrCode   = "Code"
	hdrSignal = "Signal"
	hdrCols   = "Cols"
	hdrRows   = "Rows"
	hdrRelay  = "Relay"
	hdrOp     = "Op"
)

// serveRelays subscribes this node's relay subjects.
func (s *Service) serveRelays() error {
	// Ending waits for the program to exit: off the subscription's goroutine.
	end := func(m *nats.Msg) {
		if !s.track() {
			// Shutting down: its terminals are being ended anyway.
			b, _ := json.Marshal(endReply{Error: errClosed.Error()})
			_ = m.Respond(b)
			return
		}
		go func() { defer s.wg.Done(); s.hostEnd(m) }()
	}
	for verb, h := range map[string]nats.MsgHandler{"attach": s.hostAttach, "ctl": s.hostCtl, "end": end, "recording": s.hostRecording, "screen": s.hostScreen} {
		sub, err := s.nc.Subscribe(subject(s.cfg.Node, verb), h)
		if err != nil {
			return fmt.Errorf("subscribe relay %s: %w", verb, err)
		}
		s.subs = append(s.subs, sub)
	}
	return nil
}

// hostRelay is the host side of one relayed client.
type hostRelay struct {
	id      string
	svc     *Service
	feed    feed
	inbox   string
	credits chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	dog     *time.Timer
}

func (s *Service) hostAttach(m *nats.Msg) {
	var req attachRequest
	reply := func(r attachReply) {
		b, _ := json.Marshal(r)
		_ = m.Respond(b)
	}
	if err := json.Unmarshal(m.Data, &req); err != nil || req.Inbox == "" {
		reply(attachReply{Code: protocol.CodeBadRequest, Message: "bad attach request"})
		return
	}
	l := s.liveOf(req.ID)
	if l == nil {
		reply(attachReply{Code: protocol.CodeMilestoneFinished, Message: "the milestone is not running on this node"})
		return
	}
	client, err := l.sess.Attach(req.Since)
	if err != nil {
		reply(attachReply{Code: protocol.CodeInvalidOffset, Message: "since is beyond the end of the output"})
		return
	}
	r := &hostRelay{
		id: nats.NewInbox()[len(nats.InboxPrefix):], svc: s, inbox: req.Inbox,
		feed: newFeed(l, client), credits: make(chan struct{}, relayWindow),
	}
	for range relayWindow {
		r.credits <- struct{}{}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.dog = time.AfterFunc(relayIdle, r.cancel)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		r.dog.Stop()
		r.cancel()
		_ = client.Close()
		reply(attachReply{Code: protocol.CodeNodeDown, Message: "the node running this terminal is shutting down"})
		return
	}
	s.relays[r.id] = r
	s.wg.Add(1) // r.pump
	s.mu.Unlock()
	l.attach(r)
	reply(attachReply{Relay: r.id, Status: protocol.TerminalStatus{
		PID: l.sess.PID(), Cols: r.feed.cols, Rows: r.feed.rows, Clients: l.count(), Offset: r.feed.attachAt,
	}})
	go r.pump()
}

// pump streams frames to the client's node, one credit per frame.
func (r *hostRelay) pump() {
	defer r.svc.wg.Done()
	defer r.end()
	for {
		select {
		case <-r.credits:
		case <-r.ctx.Done():
			return
		}
		f, err := r.feed.next(r.ctx)
		if errors.Is(err, errNodeDown) {
			// This node ended the program on its way down: tell the
			// relayed client so rather than leave it to notice the node
			// leave.
			_ = r.publish(frame{typ: protocol.CodeNodeDown})
			return
		}
		if err != nil {
			return
		}
		if err := r.publish(f); err != nil {
			r.svc.log.Warn("relay frame", "milestone", r.feed.l.id, "err", err)
			return
		}
		if f.typ == protocol.TypeExit {
			return
		}
	}
}

func (r *hostRelay) publish(f frame) error {
	h := nats.Header{hdrType: {f.typ}, hdrEnd: {strconv.FormatInt(f.end, 10)}}
	if f.start != nil {
		h.Set(hdrStart, strconv.FormatInt(*f.start, 10))
	}
	switch f.typ {
	case protocol.TypeExit:
		h.Set(hdrCode, strconv.Itoa(f.code))
		h.Set(hdrSignal, f.signal)
	case protocol.TypeSize:
		h.Set(hdrCols, strconv.Itoa(int(f.cols)))
		h.Set(hdrRows, strconv.Itoa(int(f.rows)))
	}
	return r.svc.nc.PublishMsg(&nats.Msg{Subject: r.inbox, Header: h, Data: f.data})
}

// Send implements peer; sizes reach relayed clients in the stream (feed).
func (r *hostRelay) Send(typ string, v any) bool {
	if sz, ok := v.(protocol.TerminalSize); ok && typ == protocol.TypeSize {
		return r.publish(frame{typ: protocol.TypeSize, cols: sz.Cols, rows: sz.Rows}) == nil
	}
	return false
}

func (r *hostRelay) end() {
	r.cancel()
	r.dog.Stop()
	_ = r.feed.client.Close()
	r.feed.l.leave(r.svc, r)
	r.svc.mu.Lock()
	delete(r.svc.relays, r.id)
	r.svc.mu.Unlock()
}

func (s *Service) hostCtl(m *nats.Msg) {
	s.mu.Lock()
	r := s.relays[m.Header.Get(hdrRelay)]
	s.mu.Unlock()
	respond := func(code string) {
		if m.Reply != "" {
			_ = m.Respond([]byte(code))
		}
	}
	if r == nil {
		respond(protocol.CodeSessionEnded)
		return
	}
	r.dog.Reset(relayIdle)
	l := r.feed.l
	switch m.Header.Get(hdrOp) {
	case "ack":
		select {
		case r.credits <- struct{}{}:
		default:
		}
	case "close":
		r.cancel()
	case "input":
		respond(l.input(m.Data))
	case "resize":
		cols, _ := strconv.Atoi(m.Header.Get(hdrCols))
		rows, _ := strconv.Atoi(m.Header.Get(hdrRows))
		respond(l.resize(r.feed.client, uint16(cols), uint16(rows)))
	case "signal":
		respond(l.signal(string(m.Data)))
	}
}

func (s *Service) hostEnd(m *nats.Msg) {
	var req endRequest
	var rep endReply
	if err := json.Unmarshal(m.Data, &req); err != nil {
		rep.Error = "bad end request"
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.KillGrace+relayTimeout)
		ms, err := s.End(ctx, req.ID, req.Reason)
		cancel()
		if err != nil {
			rep.Error = err.Error()
		}
		rep.Milestone = ms
	}
	b, _ := json.Marshal(rep)
	_ = m.Respond(b)
}

// endRemote asks node to end a milestone it runs.
func (s *Service) endRemote(ctx context.Context, node, id, reason string) (*Milestone, error) {
	b, _ := json.Marshal(endRequest{ID: id, Reason: reason})
	msg, err := s.nc.RequestWithContext(ctx, subject(node, "end"), b)
	if err != nil {
		return nil, err
	}
	var rep endReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return nil, fmt.Errorf("end %s on %s: %w", id, node, err)
	}
	if rep.Error != "" {
		return nil, fmt.Errorf("end %s on %s: %s", id, node, rep.Error)
	}
	return rep.Milestone, nil
}

// remoteSource is the client side of a relay: a client of this node whose
// terminal runs on another node.
type remoteSource struct {
	svc   *Service
	node  string
	relay string
	sub   *nats.Subscription
	msgs  chan *nats.Msg
	down  chan struct{}
	stop  chan struct{}
	ended bool
	once  sync.Once
}

// relayTo attaches to milestone id on node; on failure it returns the
// error code for the client.
func (s *Service) relayTo(ctx context.Context, node, id string, since int64) (*remoteSource, protocol.TerminalStatus, string, error) {
	var st protocol.TerminalStatus
	if s.nc == nil {
		return nil, st, protocol.CodeNotFound, errors.New("the milestone runs on another node")
	}
	inbox := s.nc.NewInbox()
	msgs := make(chan *nats.Msg, 2*relayWindow+8)
	sub, err := s.nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return nil, st, protocol.CodeInternal, fmt.Errorf("relay: %w", err)
	}
	b, _ := json.Marshal(attachRequest{ID: id, Since: since, Inbox: inbox})
	rctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	msg, err := s.nc.RequestWithContext(rctx, subject(node, "attach"), b)
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, st, protocol.CodeNodeDown, fmt.Errorf("the node %s running this terminal is unreachable", node)
	}
	var rep attachReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil || rep.Code != "" {
		_ = sub.Unsubscribe()
		if rep.Code == "" {
			rep.Code, rep.Message = protocol.CodeInternal, "bad reply from "+node
		}
		return nil, st, rep.Code, errors.New(rep.Message)
	}
	rs := &remoteSource{svc: s, node: node, relay: rep.Relay, sub: sub, msgs: msgs, down: make(chan struct{}), stop: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		rs.op("close", nil, nil)
		_ = sub.Unsubscribe()
		return nil, st, protocol.CodeNodeDown, errClosed
	}
	if s.remotes[node] == nil {
		s.remotes[node] = map[*remoteSource]struct{}{}
	}
	s.remotes[node][rs] = struct{}{}
	s.wg.Add(1) // rs.keepalive
	s.mu.Unlock()
	go rs.keepalive()
	return rs, rep.Status, "", nil
}

func (r *remoteSource) keepalive() {
	defer r.svc.wg.Done()
	t := time.NewTicker(relayPing)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.op("ping", nil, nil)
		}
	}
}

// op sends a control message to the host.
func (r *remoteSource) op(op string, data []byte, h nats.Header) {
	if h == nil {
		h = nats.Header{}
	}
	h.Set(hdrRelay, r.relay)
	h.Set(hdrOp, op)
	_ = r.svc.nc.PublishMsg(&nats.Msg{Subject: subject(r.node, "ctl"), Header: h, Data: data})
}

// request sends a control request and returns the host's error code.
func (r *remoteSource) request(op string, data []byte, h nats.Header) string {
	if h == nil {
		h = nats.Header{}
	}
	h.Set(hdrRelay, r.relay)
	h.Set(hdrOp, op)
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	msg, err := r.svc.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject(r.node, "ctl"), Header: h, Data: data})
	if err != nil {
		return protocol.CodeNodeDown
	}
	return string(msg.Data)
}

func (r *remoteSource) next(ctx context.Context) (frame, error) {
	if r.ended {
		return frame{}, io.EOF
	}
	select {
	case <-ctx.Done():
		return frame{}, ctx.Err()
	case <-r.down:
		return frame{}, errNodeDown
	case m := <-r.msgs:
		h := m.Header
		f := frame{typ: h.Get(hdrType), data: m.Data}
		if f.typ == protocol.CodeNodeDown {
			r.ended = true
			return frame{}, errNodeDown
		}
		f.end, _ = strconv.ParseInt(h.Get(hdrEnd), 10, 64)
		if v := h.Get(hdrStart); v != "" {
			start, _ := strconv.ParseInt(v, 10, 64)
			f.start = &start
		}
		switch f.typ {
		case protocol.TypeExit:
			f.code, _ = strconv.Atoi(h.Get(hdrCode))
			f.signal = h.Get(hdrSignal)
			r.ended = true
		case protocol.TypeSize:
			c, _ := strconv.Atoi(h.Get(hdrCols))
			rw, _ := strconv.Atoi(h.Get(hdrRows))
			f.cols, f.rows = uint16(c), uint16(rw)
		default:
			r.op("ack", nil, nil)
		}
		return f, nil
	}
}

func (r *remoteSource) input(data []byte) string { return r.request("input", data, nil) }

func (r *remoteSource) resize(cols, rows uint16) string {
	return r.request("resize", nil, nats.Header{hdrCols: {strconv.Itoa(int(cols))}, hdrRows: {strconv.Itoa(int(rows))}})
}

func (r *remoteSource) signal(name string) string { return r.request("signal", []byte(name), nil) }

func (r *remoteSource) close() {
	r.once.Do(func() {
		close(r.stop)
		r.op("close", nil, nil)
		_ = r.sub.Unsubscribe()
		r.svc.mu.Lock()
		delete(r.svc.remotes[r.node], r)
		r.svc.mu.Unlock()
	})
}

// dropRemotes ends every relayed client of a node that stopped.
func (s *Service) dropRemotes(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for r := range s.remotes[node] {
		select {
		case <-r.down:
		default:
			close(r.down)
		}
	}
}
