package milestones

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/protocol"
	"github.com/tether-dev/tether/internal/terminal"
	"github.com/tether-dev/tether/internal/terminal/screen"
)

// Screen is the answer of GET /api/milestones/{id}/screen: the terminal's
// current screen as its screen model shows it (see docs/protocol.md).
type Screen struct {
	Size   TermSize `json:"size"`
	Offset int64    `json:"offset"`
	Title  string   `json:"title"`
	// AlternateScreen: the program uses the alternate screen (full-screen
	// programs such as vim); Lines are then that screen's.
	AlternateScreen bool          `json:"alternate_screen"`
	Cursor          ScreenCursor  `json:"cursor"`
	Lines           [][]ScreenRun `json:"lines"`
	text            string
}

// TermSize is a terminal size.
type TermSize struct {
	Cols uint16 `json:"cols"`
	Rows uint16 `json:"rows"`
}

// ScreenCursor is the cursor's position (0-based) and visibility.
type ScreenCursor struct {
	X       int  `json:"x"`
	Y       int  `json:"y"`
	Visible bool `json:"visible"`
}

// ScreenRun is a stretch of a line's cells with the same attributes.
// Colours are palette indexes (0-255) or "#rrggbb"; absent: the default.
type ScreenRun struct {
	Text          string `json:"text"`
	Cells         int    `json:"cells"`
	FG            any    `json:"fg,omitempty"`
	BG            any    `json:"bg,omitempty"`
	Bold          bool   `json:"bold,omitempty"`
	Dim           bool   `json:"dim,omitempty"`
	Italic        bool   `json:"italic,omitempty"`
	Underline     bool   `json:"underline,omitempty"`
	Blink         bool   `json:"blink,omitempty"`
	Inverse       bool   `json:"inverse,omitempty"`
	Invisible     bool   `json:"invisible,omitempty"`
	Strikethrough bool   `json:"strikethrough,omitempty"`
	Overline      bool   `json:"overline,omitempty"`
}

func colorJSON(c screen.Color) any {
	switch c.Mode {
	case screen.ColorPalette:
		return int(c.Index)
	case screen.ColorRGB:
		return fmt.Sprintf("#%06x", c.RGB)
	}
	return nil
}

// readScreen reads the screen of a session on this node.
func readScreen(ctx context.Context, sess *terminal.Session, text bool) (*Screen, error) {
	var sc Screen
	err := sess.ReadScreen(ctx, func(m *screen.Model, off int64) {
		c, r := m.Size()
		sc.Size = TermSize{Cols: uint16(c), Rows: uint16(r)}
		sc.Offset = off
		sc.Title = m.Title()
		sc.AlternateScreen = m.AltScreen()
		x, y, vis := m.Cursor()
		sc.Cursor = ScreenCursor{X: x, Y: y, Visible: vis}
		if text {
			sc.text = m.Text()
			return
		}
		rows := m.ScreenRuns()
		sc.Lines = make([][]ScreenRun, len(rows))
		for i, runs := range rows {
			line := make([]ScreenRun, len(runs))
			for j, r := range runs {
				a := r.Attrs
				line[j] = ScreenRun{
					Text: r.Text, Cells: r.Cells, FG: colorJSON(a.FG), BG: colorJSON(a.BG),
					Bold: a.Bold, Dim: a.Dim, Italic: a.Italic, Underline: a.Underline, Blink: a.Blink,
					Inverse: a.Inverse, Invisible: a.Invisible, Strikethrough: a.Strikethrough, Overline: a.Overline,
				}
			}
			sc.Lines[i] = line
		}
	})
	return &sc, err
}

// wantsText reports whether a screen request asks for plain text.
func wantsText(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "text":
		return true
	case "json":
		return false
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/plain") && !strings.Contains(accept, "application/json")
}

// screenRequest asks the node running a milestone for its screen
// (tether.term.<node>.screen). The reply is the Screen as JSON, or the
// text when Text is set, or a Code header.
type screenRequest struct {
	ID   string `json:"id"`
	Text bool   `json:"text,omitempty"`
}

// hostScreen answers another node's request for the screen of a terminal
// running here.
func (s *Service) hostScreen(m *nats.Msg) {
	reply := func(code string, data []byte) {
		h := nats.Header{}
		if code != "" {
			h.Set(hdrCode, code)
		}
		// A screen may be larger than a NATS message: it goes in parts.
		if err := backbone.RespondLarge(s.nc, m, h, data); err != nil {
			s.log.Warn("answer a screen request", "err", err)
		}
	}
	var req screenRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || !protocol.ValidID(req.ID) {
		reply(protocol.CodeBadRequest, nil)
		return
	}
	l := s.liveOf(req.ID)
	if l == nil {
		reply(protocol.CodeNotRunning, nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout/2)
	defer cancel()
	sc, err := readScreen(ctx, l.sess, req.Text)
	if err != nil {
		reply(protocol.CodeInternal, nil)
		return
	}
	b, _ := json.Marshal(sc)
	if req.Text {
		b, _ = json.Marshal(struct {
			Size TermSize `json:"size"`
			Text string   `json:"text"`
		}{sc.Size, sc.text})
	}
	reply("", b)
}

var errNotRunning = errors.New("not running")

// remoteScreen asks node for the screen of milestone id. With text, only
// Size and the text are filled in.
func (s *Service) remoteScreen(ctx context.Context, node, id string, text bool) (*Screen, error) {
	if s.nc == nil {
		return nil, errNodeDown
	}
	b, _ := json.Marshal(screenRequest{ID: id, Text: text})
	ctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	hdr, data, err := backbone.RequestLarge(ctx, s.nc, subject(node, "screen"), b)
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, errNodeDown
	case err != nil:
		return nil, fmt.Errorf("screen of %s from %s: %w", id, node, err)
	}
	switch hdr.Get(hdrCode) {
	case "":
	case protocol.CodeNotRunning:
		return nil, errNotRunning
	default:
		return nil, fmt.Errorf("screen of %s from %s: %s", id, node, hdr.Get(hdrCode))
	}
	var sc Screen
	if text {
		var t struct {
			Size TermSize `json:"size"`
			Text string   `json:"text"`
		}
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("screen of %s from %s: %w", id, node, err)
		}
		sc.Size, sc.text = t.Size, t.Text
		return &sc, nil
	}
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("screen of %s from %s: %w", id, node, err)
	}
	return &sc, nil
}

// screenOf returns the screen of running milestone m, from this node or the
// one running it.
func (s *Service) screenOf(ctx context.Context, m *Milestone, text bool) (*Screen, error) {
	if m.Status != StatusRunning {
		return nil, errNotRunning
	}
	if m.Node != "" && m.Node != s.cfg.Node {
		return s.remoteScreen(ctx, m.Node, m.ID, text)
	}
	l := s.liveOf(m.ID)
	if l == nil {
		return nil, errNotRunning
	}
	return readScreen(ctx, l.sess, text)
}

// serveScreen is GET /api/milestones/{id}/screen.
func (s *Service) serveScreen(w http.ResponseWriter, r *http.Request, m *Milestone) {
	text := wantsText(r)
	sc, err := s.screenOf(r.Context(), m, text)
	switch {
	case errors.Is(err, errNotRunning):
		httpapi.WriteError(w, http.StatusConflict, protocol.CodeNotRunning, "the milestone is "+m.Status+": it has no screen")
		return
	case errors.Is(err, errNodeDown):
		httpapi.WriteError(w, http.StatusServiceUnavailable, protocol.CodeNodeDown, "the milestone runs on node "+m.Node+", which does not answer")
		return
	case err != nil:
		httpapi.Unavailable(w, r, s.log, err)
		return
	}
	if text {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(sc.text))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, sc)
}

// milestoneView is GET /api/milestones/{id}: the record, whose cols and
// rows are the size it was created with, plus the current size of a
// running terminal.
type milestoneView struct {
	*Milestone
	Size *TermSize `json:"size,omitempty"`
}

func (s *Service) viewOf(ctx context.Context, m *Milestone) milestoneView {
	v := milestoneView{Milestone: m}
	if m.Status != StatusRunning {
		return v
	}
	if m.Node == "" || m.Node == s.cfg.Node {
		if l := s.liveOf(m.ID); l != nil {
			c, r := l.sess.Size()
			v.Size = &TermSize{Cols: c, Rows: r}
		}
		return v
	}
	// Best effort: the record is answered even when the node is down.
	if sc, err := s.remoteScreen(ctx, m.Node, m.ID, true); err == nil {
		v.Size = &sc.Size
	}
	return v
}
