package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/protocol"
)

// sseKeepAlive is how often an idle event stream gets a comment line.
const sseKeepAlive = 15 * time.Second

// ListResponse is the body of GET /api/operations.
type ListResponse struct {
	Operations []protocol.OperationRecord `json:"operations"`
}

// CancelResponse is the body of POST /api/operations/{id}/cancel.
type CancelResponse struct {
	OperationID string `json:"operation_id"`
	Status      string `json:"status"`
}

// Routes registers the operations REST API on mux.
func (s *Service) Routes(mux *http.ServeMux, a *httpapi.Authenticator) {
	mux.HandleFunc("POST /api/operations", a.Authed(s.restStart))
	mux.HandleFunc("GET /api/operations", a.Authed(s.restList))
	mux.HandleFunc("GET /api/operations/{id}", a.Authed(s.restGet))
	mux.HandleFunc("POST /api/operations/{id}/cancel", a.Authed(s.restCancel))
	mux.HandleFunc("GET /api/operations/{id}/events", a.Authed(s.restEvents))
	mux.HandleFunc("POST /api/operations/{id}/input", a.Authed(s.restInput))
	mux.HandleFunc("GET /api/agents", a.Authed(s.restAgents))
	s.aguiRoutes(mux, a)
}

// AgentInfo describes an agent that operations can be started on.
type AgentInfo struct {
	AgentID    string   `json:"agent_id"`
	Kind       string   `json:"kind"` // "command" (declared in the config) or "remote" (a worker registered it)
	Operations []string `json:"operations"`
}

// restAgents serves GET /api/agents: the command agents of the
// configuration and every agent a remote worker has registered (whether or
// not one is connected now), sorted by id.
func (s *Service) restAgents(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	out, err := s.agentInfos(r.Context())
	if err != nil {
		httpapi.Unavailable(w, r, s.log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"agents": out})
}

// agentInfos lists the command agents and the remote agents ever
// registered, sorted by id.
func (s *Service) agentInfos(ctx context.Context) ([]AgentInfo, error) {
	out, err := s.store.remoteAgents(ctx)
	if err != nil {
		return nil, err
	}
	for id, ca := range s.commands {
		ops := make([]string, 0, len(ca.Operations))
		for op := range ca.Operations {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		out = append(out, AgentInfo{AgentID: id, Kind: kindCommand, Operations: ops})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	if out == nil {
		out = []AgentInfo{}
	}
	return out, nil
}

// statusOfCode maps an operation error code to an HTTP status.
func statusOfCode(code string) int {
	switch code {
	case protocol.CodeUnknownAgent, protocol.CodeUnknownOperationType, protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeOperationExists, protocol.CodeAlreadyAnswered:
		return http.StatusConflict
	case protocol.CodeInputTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeCapacity:
		return http.StatusTooManyRequests
	case protocol.CodeAgentUnavailable, protocol.CodeNodeDraining:
		return http.StatusServiceUnavailable
	case protocol.CodeForbidden:
		return http.StatusForbidden
	case protocol.CodeInternal:
		return http.StatusInternalServerError
	case protocol.CodeStorageFull:
		return http.StatusInsufficientStorage
	}
	return http.StatusBadRequest
}

func (s *Service) writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if errors.As(err, &e) {
		httpapi.WriteError(w, statusOfCode(e.Code), e.Code, e.Message)
		return
	}
	s.log.Error("operations api", "err", err)
	httpapi.WriteError(w, http.StatusServiceUnavailable, protocol.CodeInternal, "the request could not be completed; try again")
}

func (s *Service) restStart(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	var req protocol.StartOperation
	if !httpapi.DecodeBody(w, r, &req) {
		return
	}
	owner := cl.Subject
	if req.Owner != "" && req.Owner != cl.Subject {
		if !cl.IsAdmin() {
			httpapi.WriteError(w, http.StatusForbidden, protocol.CodeForbidden, "only admins may start operations for another owner")
			return
		}
		owner = req.Owner
	}
	st, err := s.Start(r.Context(), owner, req)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, st.Event)
}

func (s *Service) restList(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	q := r.URL.Query()
	status, err := httpapi.StatusFilter(q.Get("status"), protocol.Statuses, protocol.StatusGroups)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	ops, err := s.List(r.Context(), cl, q.Get("agent_id"), status)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ListResponse{Operations: ops})
}

func (s *Service) restGet(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	rec, err := s.Get(r.Context(), cl, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rec)
}

func (s *Service) restCancel(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	id := r.PathValue("id")
	if err := s.Cancel(r.Context(), cl, id); err != nil {
		s.writeErr(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, CancelResponse{OperationID: id, Status: "cancel_requested"})
}

// InputResponse is the body of POST /api/operations/{id}/input.
type InputResponse struct {
	OperationID string `json:"operation_id"`
	RequestID   string `json:"request_id"`
	Status      string `json:"status"`
}

// restInput answers an input request.
func (s *Service) restInput(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	var req protocol.AnswerInput
	if !httpapi.DecodeBody(w, r, &req) {
		return
	}
	req.OperationID = r.PathValue("id")
	if err := s.AnswerInput(r.Context(), cl, req); err != nil {
		s.writeErr(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, InputResponse{OperationID: req.OperationID, RequestID: req.RequestID, Status: "answered"})
}

// restEvents streams an operation's events as Server-Sent Events, with the
// same replay rules as subscribe_operation; Last-Event-ID (or ?after_seq=)
// is the position to resume after. The response ends after the final event.
func (s *Service) restEvents(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	var after *uint64
	pos := r.Header.Get("Last-Event-ID")
	if pos == "" {
		pos = r.URL.Query().Get("after_seq")
	}
	if pos = strings.TrimSpace(pos); pos != "" {
		n, err := strconv.ParseUint(pos, 10, 64)
		if err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "Last-Event-ID and after_seq must be an event seq")
			return
		}
		after = &n
	}
	id := r.PathValue("id")
	p, err := s.planFollow(r.Context(), cl, id, after)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// The headers now, not with the first event: a client waiting for the
	// response (to know it is subscribed) would otherwise wait for the
	// agent's next event, or the first keep-alive.
	_ = rc.Flush()
	var wmu sync.Mutex // events and keep-alives
	write := func(d delivery) error {
		wmu.Lock()
		defer wmu.Unlock()
		if d.Seq > 0 {
			if _, err := fmt.Fprintf(w, "id: %d\n", d.Seq); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", d.Type, d.Data); err != nil {
			return err
		}
		return rc.Flush()
	}
	if !p.recovered {
		b, _ := json.Marshal(protocol.OperationState{Type: protocol.TypeOperationState, Operation: p.state()})
		if write(delivery{Type: protocol.TypeOperationState, Data: b}) != nil {
			return
		}
		if b := stateSnapshot(&p.rec); b != nil && write(delivery{Type: protocol.TypeAGUIEvent, Data: b}) != nil {
			return
		}
	}
	if p.final != nil {
		_ = write(delivery{Seq: p.final.Seq, Type: p.final.Type, Data: p.final.Data})
		return
	}
	if !p.follow {
		return
	}
	s.followSSE(w, r, id, p, &wmu, write)
}

// followSSE pumps operation id's events to an event stream through send
// until the final event, the client leaving or the node shutting down,
// writing a keep-alive comment on a quiet stream. wmu serializes writes to
// w: send must hold it too.
func (s *Service) followSSE(w http.ResponseWriter, r *http.Request, id string, p *plan, wmu *sync.Mutex, send func(delivery) error) {
	rc := http.NewResponseController(w)
	// The request's context ends when the client goes; the service's
	// when the node shuts down.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if !s.addWatcher() {
		return
	}
	defer s.doneWatcher()
	// A comment now and then keeps proxies from closing a quiet stream.
	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	kaDone := make(chan struct{})
	// w must not be written after the handler returns.
	defer func() { cancel(); <-kaDone }()
	go func() {
		defer close(kaDone)
		for {
			select {
			case <-ctx.Done():
				return
			case <-keepAlive.C:
				wmu.Lock()
				_, err := io.WriteString(w, ": keep-alive\n\n")
				if err == nil {
					err = rc.Flush()
				}
				wmu.Unlock()
				if err != nil {
					cancel()
					return
				}
			}
		}
	}()
	if _, err := s.pump(ctx, id, p, pumpOptions{send: send}); err != nil && ctx.Err() == nil {
		s.log.Warn("operation events stream", "operation", id, "err", err)
	}
}
