package milestones

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/terminal"
)

// CreateRequest is the body of POST /api/milestones.
type CreateRequest struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Owner   string            `json:"owner"`
	Command []string          `json:"command"`
	Dir     string            `json:"dir"`
	Env     map[string]string `json:"env"`
	Cols    int               `json:"cols"`
	Rows    int               `json:"rows"`
}

// Routes registers the REST API on mux.
func (s *Service) Routes(mux *http.ServeMux, a *httpapi.Authenticator) {
	mux.HandleFunc("POST /api/milestones", s.create(a))
	mux.HandleFunc("GET /api/milestones", s.list(a))
	mux.HandleFunc("GET /api/milestones/{id}", s.withMilestone(a, func(w http.ResponseWriter, r *http.Request, m *Milestone, _ *auth.Claims) {
		httpapi.WriteJSON(w, http.StatusOK, s.viewOf(r.Context(), m))
	}))
	mux.HandleFunc("GET /api/milestones/{id}/screen", s.withMilestone(a, func(w http.ResponseWriter, r *http.Request, m *Milestone, _ *auth.Claims) {
		s.serveScreen(w, r, m)
	}))
	mux.HandleFunc("POST /api/milestones/{id}/start", s.withMilestone(a, func(w http.ResponseWriter, r *http.Request, m *Milestone, _ *auth.Claims) {
		_, m, err := s.Start(r.Context(), m.ID)
		switch {
		case errors.Is(err, errFinished):
			httpapi.WriteError(w, http.StatusConflict, protocol.CodeMilestoneFinished, "the milestone has finished")
		case errors.Is(err, errElsewhere):
			httpapi.WriteJSON(w, http.StatusOK, m)
		case errors.Is(err, errDraining):
			httpapi.WriteError(w, http.StatusServiceUnavailable, protocol.CodeNodeDraining, "this node is draining before a restart; start the milestone through another node")
		case err != nil && m != nil && m.Reason == ReasonStartFailed:
			httpapi.WriteError(w, http.StatusUnprocessableEntity, ReasonStartFailed, err.Error())
		case err != nil:
			httpapi.Unavailable(w, r, s.log, err)
		default:
			httpapi.WriteJSON(w, http.StatusOK, m)
		}
	}))
	mux.HandleFunc("POST /api/milestones/{id}/finish", s.withMilestone(a, func(w http.ResponseWriter, r *http.Request, m *Milestone, _ *auth.Claims) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.KillGrace+10*time.Second)
		defer cancel()
		m, err := s.End(ctx, m.ID, ReasonFinished)
		if err != nil {
			httpapi.Unavailable(w, r, s.log, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, m)
	}))
	mux.HandleFunc("DELETE /api/milestones/{id}", s.withMilestone(a, func(w http.ResponseWriter, r *http.Request, m *Milestone, _ *auth.Claims) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.KillGrace+10*time.Second)
		defer cancel()
		if _, err := s.End(ctx, m.ID, ReasonFinished); err != nil {
			httpapi.Unavailable(w, r, s.log, err)
			return
		}
		if err := s.store.Delete(ctx, m.ID); err != nil {
			httpapi.Unavailable(w, r, s.log, err)
			return
		}
		s.deleteRecording(ctx, m)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /api/milestones/{id}/recording", s.withMilestone(a, func(w http.ResponseWriter, r *http.Request, m *Milestone, _ *auth.Claims) {
		if m.Node != "" && m.Node != s.cfg.Node {
			s.serveRemoteRecording(w, r, m)
			return
		}
		f, err := os.Open(s.RecordingPath(m.ID))
		if err != nil {
			httpapi.WriteError(w, http.StatusNotFound, protocol.CodeNotFound, "no recording for this milestone")
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("Content-Type", "application/x-asciicast")
		w.Header().Set("Content-Disposition", `attachment; filename="`+m.ID+`.cast"`)
		http.ServeContent(w, r, m.ID+".cast", st.ModTime(), f)
	}))
}

func (s *Service) create(a *httpapi.Authenticator) http.HandlerFunc {
	// A milestone runs a command: only admins define one.
	return a.AdminOnly(func(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
		var req CreateRequest
		if !httpapi.DecodeBody(w, r, &req) {
			return
		}
		if req.ID == "" {
			req.ID = NewID()
		} else if !protocol.ValidID(req.ID) {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidMilestone, "id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
			return
		}
		if req.Owner == "" {
			req.Owner = cl.Subject
		}
		if len(req.Command) == 0 {
			req.Command = s.cfg.DefaultCommand
		}
		if req.Command[0] == "" {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "command[0] must not be empty")
			return
		}
		if req.Cols == 0 {
			req.Cols = terminal.DefaultCols
		}
		if req.Rows == 0 {
			req.Rows = terminal.DefaultRows
		}
		if req.Cols < 1 || req.Cols > terminal.MaxCols || req.Rows < 1 || req.Rows > terminal.MaxRows {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidSize, "cols must be 1-1000 and rows 1-500")
			return
		}
		if req.Name == "" {
			req.Name = req.ID
		}
		m := &Milestone{
			ID: req.ID, Name: req.Name, Owner: req.Owner, Command: req.Command, Dir: req.Dir, Env: req.Env,
			Cols: uint16(req.Cols), Rows: uint16(req.Rows), Status: StatusPending, CreatedAt: time.Now().UTC(),
		}
		if err := s.store.Create(r.Context(), m); err != nil {
			if errors.Is(err, ErrExists) {
				httpapi.WriteError(w, http.StatusConflict, "milestone_exists", "a milestone with this id exists")
				return
			}
			if errors.Is(err, backbone.ErrStorageFull) {
				httpapi.WriteError(w, http.StatusInsufficientStorage, protocol.CodeStorageFull, "the node's storage is full: the milestone was not created; try again later")
				return
			}
			httpapi.Unavailable(w, r, s.log, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusCreated, m)
	})
}

func (s *Service) list(a *httpapi.Authenticator) http.HandlerFunc {
	return a.Authed(func(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
		status, err := httpapi.StatusFilter(r.URL.Query().Get("status"), statuses, statusGroups)
		if err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
			return
		}
		ms, err := s.store.List(r.Context(), func(m *Milestone) bool {
			return (cl.IsAdmin() || m.Owner == cl.Subject) && status(m.Status)
		})
		if err != nil {
			httpapi.Unavailable(w, r, s.log, err)
			return
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].CreatedAt.Before(ms[j].CreatedAt) })
		if ms == nil {
			ms = []*Milestone{}
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"milestones": ms})
	})
}

// withMilestone authenticates, loads {id} and checks that the caller owns
// it or is an admin.
func (s *Service) withMilestone(a *httpapi.Authenticator, h func(http.ResponseWriter, *http.Request, *Milestone, *auth.Claims)) http.HandlerFunc {
	return a.Authed(func(w http.ResponseWriter, r *http.Request, cl *auth.Claims) {
		id := r.PathValue("id")
		if !protocol.ValidID(id) {
			httpapi.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidMilestone, "invalid milestone id")
			return
		}
		m, _, err := s.store.Get(r.Context(), id)
		if errors.Is(err, ErrNotFound) {
			httpapi.WriteError(w, http.StatusNotFound, protocol.CodeNotFound, "no milestone "+id)
			return
		}
		if err != nil {
			httpapi.Unavailable(w, r, s.log, err)
			return
		}
		if !cl.IsAdmin() && m.Owner != cl.Subject {
			httpapi.WriteError(w, http.StatusForbidden, protocol.CodeForbidden, "not your milestone")
			return
		}
		h(w, r, m, cl)
	})
}
