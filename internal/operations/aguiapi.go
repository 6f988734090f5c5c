package operations

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tether-dev/tether/internal/agui"
	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/protocol"
)

// The AG-UI endpoint (docs/ag-ui.md): an operation is an AG-UI run whose
// operation_id is the runId. POST /ag-ui/agents/{agent}/{type} starts it
// (or re-attaches to it) and answers its events as text/event-stream:
// operation_started as RUN_STARTED, each agui_event as its event, the final
// event as RUN_FINISHED or RUN_ERROR; progress and logs are not sent. Each
// frame's id is the event's seq, and Last-Event-ID resumes after it.

// codeHistoryExpired refuses to stream a run whose oldest events are no
// longer stored.
const codeHistoryExpired = "history_expired"

// aguiRoutes registers the AG-UI endpoint on mux.
func (s *Service) aguiRoutes(mux *http.ServeMux, a *httpapi.Authenticator) {
	mux.HandleFunc("POST /ag-ui/agents/{agent}", s.cors(a.Authed(s.aguiRun)))
	mux.HandleFunc("POST /ag-ui/agents/{agent}/{type}", s.cors(a.Authed(s.aguiRun)))
	mux.HandleFunc("POST /ag-ui/agents/{agent}/stop/{run}", s.cors(a.Authed(s.aguiStop)))
	mux.HandleFunc("GET /ag-ui/info", s.cors(a.Authed(s.aguiInfo)))
	mux.HandleFunc("OPTIONS /ag-ui/", s.aguiPreflight)
}

// originAllowed applies the node's origin policy (Config.OriginAllowed);
// without one, only requests without an Origin (programs) are allowed.
func (s *Service) originAllowed(r *http.Request) bool {
	if s.cfg.OriginAllowed == nil {
		return r.Header.Get("Origin") == ""
	}
	return s.cfg.OriginAllowed(r)
}

// cors adds the CORS headers for an allowed cross-origin browser request
// (--allowed-origins); a request from another origin gets none, so the
// browser refuses it the answer.
func (s *Service) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && s.originAllowed(r) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		h(w, r)
	}
}

// aguiPreflight answers a CORS preflight of the AG-UI endpoint: 204 with
// what may be sent for an allowed origin, 403 forbidden otherwise.
func (s *Service) aguiPreflight(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		httpapi.WriteError(w, http.StatusForbidden, protocol.CodeForbidden, "this origin may not use the AG-UI endpoint (see --allowed-origins)")
		return
	}
	h := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// runAgentInput is what the endpoint reads of a RunAgentInput; the whole
// body is the operation's input.
type runAgentInput struct {
	ThreadID string          `json:"threadId"`
	RunID    string          `json:"runId"`
	State    json.RawMessage `json:"state"`
	// Resume answers the run's input requests (interruptId: the request
	// id; status resolved or cancelled; payload: the answer).
	Resume []struct {
		InterruptID string          `json:"interruptId"`
		Status      string          `json:"status"`
		Payload     json.RawMessage `json:"payload"`
	} `json:"resume"`
}

// aguiAgentTypes returns the operation types of an agent, and whether it
// is known.
func (s *Service) aguiAgentTypes(ctx context.Context, agent string) ([]string, bool, error) {
	if ca, ok := s.commands[agent]; ok {
		ops := make([]string, 0, len(ca.Operations))
		for op := range ca.Operations {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		return ops, true, nil
	}
	list, err := s.store.remoteAgents(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, a := range list {
		if a.AgentID == agent {
			return a.Operations, true, nil
		}
	}
	return nil, false, nil
}

// aguiRun serves POST /ag-ui/agents/{agent}[/{type}].
func (s *Service) aguiRun(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	agent, typ := r.PathValue("agent"), r.PathValue("type")
	limit := s.cfg.MaxAGUIInputBytes
	if limit <= 0 {
		limit = s.cfg.MaxInputBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			httpapi.WriteError(w, http.StatusRequestEntityTooLarge, protocol.CodeInputTooLarge,
				"the RunAgentInput is over "+strconv.Itoa(limit)+" bytes (--max-agui-input)")
			return
		}
		httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "the request body could not be read")
		return
	}
	var in runAgentInput
	if err := json.Unmarshal(body, &in); err != nil || in.ThreadID == "" || in.RunID == "" {
		httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "the body must be a RunAgentInput: a JSON object with threadId and runId")
		return
	}
	if !protocol.ValidID(in.RunID) {
		httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidOperationID, "runId must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
		return
	}
	if s := strings.TrimSpace(string(in.State)); s != "" && s != "null" && s[0] != '{' {
		httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "state must be a JSON object")
		return
	}
	var after uint64
	if h := strings.TrimSpace(r.Header.Get("Last-Event-ID")); h != "" {
		if after, err = strconv.ParseUint(h, 10, 64); err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "Last-Event-ID must be an event id of the run")
			return
		}
	}
	types, known, err := s.aguiAgentTypes(r.Context(), agent)
	if err != nil {
		httpapi.Unavailable(w, r, s.log, err)
		return
	}
	if !known {
		httpapi.WriteError(w, http.StatusNotFound, protocol.CodeUnknownAgent, "no agent "+strconv.Quote(agent))
		return
	}
	if typ == "" {
		if len(types) != 1 {
			httpapi.WriteError(w, http.StatusNotFound, protocol.CodeUnknownOperationType,
				"agent "+agent+" has "+strconv.Itoa(len(types))+" operation types; post to /ag-ui/agents/"+agent+"/{operation_type}")
			return
		}
		typ = types[0]
	}

	// A runId that exists is re-attached to: a retried request never runs
	// the agent twice. Start refuses a taken id atomically, so two racing
	// requests start it once and both watch it.
	rec, err := s.store.get(r.Context(), in.RunID)
	created := false
	if errors.Is(err, errNotFound) {
		created = true
		_, err = s.start(r.Context(), cl.Subject, protocol.StartOperation{
			OperationID: in.RunID, AgentID: agent, OperationType: typ, Input: body,
		}, in.ThreadID)
		if e, ok := errors.AsType[*Error](err); ok && e.Code == protocol.CodeOperationExists {
			err, created = nil, false
		}
		if err != nil {
			s.writeErr(w, err)
			return
		}
		rec, err = s.store.get(r.Context(), in.RunID)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if rec.Owner != cl.Subject && !cl.IsAdmin() {
		httpapi.WriteError(w, http.StatusForbidden, protocol.CodeForbidden, "run "+in.RunID+" belongs to another user")
		return
	}
	if rec.AgentID != agent || rec.OperationType != typ {
		httpapi.WriteError(w, http.StatusConflict, protocol.CodeOperationExists,
			"run "+in.RunID+" exists and is an operation "+rec.OperationType+" of agent "+rec.AgentID)
		return
	}
	// An AG-UI stream must begin with RUN_STARTED (and a resumed one needs
	// everything up to its position): a run whose oldest events retention
	// dropped cannot be served.
	if first, err := s.store.firstEvent(r.Context(), in.RunID, rec.StreamSeq); errors.Is(err, errNotFound) || (err == nil && first.Seq != 1) {
		httpapi.WriteError(w, http.StatusGone, codeHistoryExpired, "the events of run "+in.RunID+" are no longer all stored (retention); start a new run")
		return
	} else if err != nil {
		httpapi.Unavailable(w, r, s.log, err)
		return
	}
	// Resume entries answer the run's open input requests; one answered
	// already, or a run that has ended (a retried request), is not an
	// error: the request re-attaches.
	for _, e := range in.Resume {
		if created || !protocol.Live(rec.Status) {
			break // nothing to answer
		}
		err := s.AnswerInput(r.Context(), cl, protocol.AnswerInput{OperationID: in.RunID, RequestID: e.InterruptID, Status: e.Status, Value: e.Payload})
		if re, ok := errors.AsType[*Error](err); ok && re.Code == protocol.CodeAlreadyAnswered {
			continue
		}
		if re, ok := errors.AsType[*Error](err); ok && re.Code == protocol.CodeNotFound && s.endedByEvents(r.Context(), in.RunID) {
			// The run ended after rec was read: its final event is
			// stored just before its record. A retry re-attaches.
			break
		}
		if err != nil {
			s.writeErr(w, err)
			return
		}
	}
	if after > 0 {
		last, err := s.store.lastEvent(r.Context(), in.RunID)
		if err != nil && !errors.Is(err, errNotFound) {
			httpapi.Unavailable(w, r, s.log, err)
			return
		}
		if after > last.Seq {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest,
				"Last-Event-ID "+strconv.FormatUint(after, 10)+" is beyond the run's last event "+strconv.FormatUint(last.Seq, 10))
			return
		}
	}
	s.aguiStream(w, r, rec, after)
}

// endedByEvents reports whether operation id's last stored event is final.
func (s *Service) endedByEvents(ctx context.Context, id string) bool {
	last, err := s.store.lastEvent(ctx, id)
	return err == nil && isFinal(last.Type)
}

// aguiStream streams run rec from its start as AG-UI, resuming after seq
// after when it is not 0: the events up to it are read, not sent, and
// agui.ResumePrefix of them goes first, without ids.
func (s *Service) aguiStream(w http.ResponseWriter, r *http.Request, rec *stored, after uint64) {
	thread := rec.ThreadID
	if thread == "" {
		thread = rec.OperationID
	}
	rc := http.NewResponseController(w)
	agui.SetSSEHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	var wmu sync.Mutex
	var history []*agui.Event
	var buf []byte
	send := func(d delivery) error {
		ev, err := aguiOf(d, rec.OperationID, thread)
		if err != nil {
			s.log.Warn("AG-UI stream: stored event unreadable", "operation", rec.OperationID, "seq", d.Seq, "err", err)
			return nil
		}
		if ev == nil {
			if d.Seq == after {
				// Resuming after an event the client was not sent: the
				// prefix still goes out here.
				return s.writePrefix(w, rc, &wmu, history)
			}
			return nil
		}
		if d.Seq <= after {
			history = append(history, ev)
			if d.Seq == after {
				return s.writePrefix(w, rc, &wmu, history)
			}
			return nil
		}
		wmu.Lock()
		defer wmu.Unlock()
		buf, err = agui.AppendFrame(buf[:0], d.Seq, true, ev.Raw)
		if err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		return rc.Flush()
	}
	p := &plan{follow: true, from: rec.StreamSeq}
	s.followSSE(w, r, rec.OperationID, p, &wmu, send)
}

// writePrefix writes agui.ResumePrefix of history, without ids.
func (s *Service) writePrefix(w http.ResponseWriter, rc *http.ResponseController, wmu *sync.Mutex, history []*agui.Event) error {
	var buf []byte
	for _, ev := range agui.ResumePrefix(history, agui.Config{}) {
		var err error
		if buf, err = agui.AppendFrame(buf, 0, false, ev.Raw); err != nil {
			return err
		}
	}
	wmu.Lock()
	defer wmu.Unlock()
	if _, err := w.Write(buf); err != nil {
		return err
	}
	return rc.Flush()
}

// aguiOf returns the AG-UI event a stored event is, or nil for one that
// has none (progress, logs).
func aguiOf(d delivery, runID, thread string) (*agui.Event, error) {
	switch d.Type {
	case protocol.TypeOperationStarted:
		return agui.Make(agui.RunStarted, agui.KV{Key: "threadId", Value: thread}, agui.KV{Key: "runId", Value: runID})
	case protocol.TypeAGUIEvent:
		var m protocol.OperationAGUIEvent
		if err := json.Unmarshal(d.Data, &m); err != nil {
			return nil, err
		}
		return agui.Parse(m.Event)
	case protocol.TypeOperationInputRequested, protocol.TypeOperationInputAnswered:
		// AG-UI 1.0 has no event for a question asked in the middle of a
		// run: a CUSTOM event carries it, and the answer comes back as a
		// resume entry of the next RunAgentInput for the run.
		var m protocol.OperationInput
		if err := json.Unmarshal(d.Data, &m); err != nil {
			return nil, err
		}
		v := map[string]any{"requestId": m.RequestID}
		name := "tether.input_request"
		if d.Type == protocol.TypeOperationInputRequested {
			v["prompt"] = m.Prompt
			if len(m.Schema) > 0 {
				v["schema"] = m.Schema
			}
		} else {
			name = "tether.input_answered"
			v["status"], v["value"] = m.Status, m.Value
		}
		return agui.Make(agui.Custom, agui.KV{Key: "name", Value: name}, agui.KV{Key: "value", Value: v})
	case protocol.TypeOperationCompleted, protocol.TypeOperationFailed, protocol.TypeOperationCancelled:
		var m protocol.OperationEnded
		if err := json.Unmarshal(d.Data, &m); err != nil {
			return nil, err
		}
		switch d.Type {
		case protocol.TypeOperationCompleted:
			fields := []agui.KV{{Key: "threadId", Value: thread}, {Key: "runId", Value: runID}}
			if len(m.Result) > 0 && string(m.Result) != "null" {
				fields = append(fields, agui.KV{Key: "result", Value: m.Result})
			}
			return agui.Make(agui.RunFinished, fields...)
		case protocol.TypeOperationCancelled:
			return agui.Make(agui.RunError, agui.KV{Key: "message", Value: m.Message}, agui.KV{Key: "code", Value: protocol.StatusCancelled})
		default:
			return agui.Make(agui.RunError, agui.KV{Key: "message", Value: m.Message}, agui.KV{Key: "code", Value: m.Code})
		}
	}
	return nil, nil
}

// AGUIStopResponse is the body of POST /ag-ui/agents/{agent}/stop/{run}.
type AGUIStopResponse struct {
	RunID  string `json:"runId"`
	Status string `json:"status"`
}

// aguiStop serves POST /ag-ui/agents/{agent}/stop/{run}: the operation's
// cancel.
func (s *Service) aguiStop(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
	id := r.PathValue("run")
	rec, err := s.authorize(r.Context(), cl, id)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if rec.AgentID != r.PathValue("agent") {
		httpapi.WriteError(w, http.StatusNotFound, protocol.CodeNotFound, "agent "+r.PathValue("agent")+" has no run "+id)
		return
	}
	if err := s.Cancel(r.Context(), cl, id); err != nil {
		s.writeErr(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, AGUIStopResponse{RunID: id, Status: "cancel_requested"})
}

// AGUIAgent describes one agent in GET /ag-ui/info.
type AGUIAgent struct {
	AgentID    string   `json:"agent_id"`
	Kind       string   `json:"kind"`
	Operations []string `json:"operations"`
	// URLs are the paths to post a RunAgentInput to, one per operation
	// type, and /ag-ui/agents/{agent} first when it has only one.
	URLs []string `json:"urls"`
}

// aguiInfo serves GET /ag-ui/info: the agents the token may run (every
// user may start an operation of any agent).
func (s *Service) aguiInfo(w http.ResponseWriter, r *http.Request, _ *auth.Claims) {
	list, err := s.agentInfos(r.Context())
	if err != nil {
		httpapi.Unavailable(w, r, s.log, err)
		return
	}
	out := make([]AGUIAgent, 0, len(list))
	for _, a := range list {
		ag := AGUIAgent{AgentID: a.AgentID, Kind: a.Kind, Operations: a.Operations}
		if len(a.Operations) == 1 {
			ag.URLs = append(ag.URLs, "/ag-ui/agents/"+a.AgentID)
		}
		for _, op := range a.Operations {
			ag.URLs = append(ag.URLs, "/ag-ui/agents/"+a.AgentID+"/"+op)
		}
		out = append(out, ag)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"agents": out})
}
