package milestones

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/protocol"
)

// A recording is a file on the node that ran the program. Another node
// serves it by reading it from that node in chunks over NATS
// (tether.term.<node>.recording), and deletes it there the same way.
const recordingChunk = 256 << 10

type recordingRequest struct {
	ID     string `json:"id"`
	Offset int64  `json:"offset"`
	Limit  int    `json:"limit"`
	Delete bool   `json:"delete,omitempty"`
}

// hdrSize, on a recording reply, is the file's size when the chunk was
// read; hdrCode is set instead when there is nothing to send.
const hdrSize = "Size"

var errNoRecording = errors.New("no recording")

// hostRecording answers another node's request for a chunk of a recording
// on this node, or deletes one.
func (s *Service) hostRecording(m *nats.Msg) {
	reply := func(code string, size int64, data []byte) {
		h := nats.Header{}
		if code != "" {
			h.Set(hdrCode, code)
		}
		h.Set(hdrSize, strconv.FormatInt(size, 10))
		_ = m.RespondMsg(&nats.Msg{Header: h, Data: data})
	}
	var req recordingRequest
	// The id becomes a file name: only well-formed ids are looked up.
	if err := json.Unmarshal(m.Data, &req); err != nil || !protocol.ValidID(req.ID) || req.Offset < 0 {
		reply(protocol.CodeBadRequest, 0, nil)
		return
	}
	path := s.RecordingPath(req.ID)
	if req.Delete {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("delete recording", "milestone", req.ID, "err", err)
		}
		reply("", 0, nil)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		reply(protocol.CodeNotFound, 0, nil)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		reply(protocol.CodeNotFound, 0, nil)
		return
	}
	n := int64(min(max(req.Limit, 1), recordingChunk))
	n = max(0, min(n, st.Size()-req.Offset))
	buf := make([]byte, n)
	k, err := f.ReadAt(buf, req.Offset)
	if err != nil && !errors.Is(err, io.EOF) {
		reply(protocol.CodeNotFound, 0, nil)
		return
	}
	reply("", st.Size(), buf[:k])
}

// recordingChunkFrom asks node for up to limit bytes of milestone id's
// recording from off. errNoRecording: the node has none; errNodeDown: the
// node does not answer.
func (s *Service) recordingChunkFrom(ctx context.Context, node, id string, off int64, limit int) (data []byte, size int64, err error) {
	b, _ := json.Marshal(recordingRequest{ID: id, Offset: off, Limit: limit})
	ctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	msg, err := s.nc.RequestWithContext(ctx, subject(node, "recording"), b)
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, 0, errNodeDown
	case err != nil:
		return nil, 0, fmt.Errorf("recording %s from %s: %w", id, node, err)
	}
	if code := msg.Header.Get(hdrCode); code != "" {
		return nil, 0, errNoRecording
	}
	size, _ = strconv.ParseInt(msg.Header.Get(hdrSize), 10, 64)
	return msg.Data, size, nil
}

// serveRemoteRecording streams the recording of m from the node that ran
// it. The size is the file's when the download starts (a live session's
// recording keeps growing; the rest is in a later download). No Range
// requests: the whole file is sent.
func (s *Service) serveRemoteRecording(w http.ResponseWriter, r *http.Request, m *Milestone) {
	first, size, err := s.recordingChunkFrom(r.Context(), m.Node, m.ID, 0, recordingChunk)
	switch {
	case errors.Is(err, errNoRecording):
		httpapi.WriteError(w, http.StatusNotFound, protocol.CodeNotFound, "no recording for this milestone")
		return
	case errors.Is(err, errNodeDown):
		httpapi.WriteError(w, http.StatusServiceUnavailable, protocol.CodeNodeDown, "the recording is on node "+m.Node+", which does not answer")
		return
	case err != nil:
		httpapi.Unavailable(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("Content-Disposition", `attachment; filename="`+m.ID+`.cast"`)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	off := int64(len(first))
	if _, err := w.Write(first); err != nil {
		return
	}
	for off < size {
		chunk, _, err := s.recordingChunkFrom(r.Context(), m.Node, m.ID, off, int(min(size-off, recordingChunk)))
		if err != nil || len(chunk) == 0 {
			// The status is sent: cutting the body short (shorter than
			// Content-Length) is how the client learns of it.
			s.log.Warn("recording download cut short", "milestone", m.ID, "node", m.Node, "at", off, "size", size, "err", err)
			return
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		off += int64(len(chunk))
	}
}

// deleteRecording removes m's recording from the node that holds it.
func (s *Service) deleteRecording(ctx context.Context, m *Milestone) {
	if m.Node == "" || m.Node == s.cfg.Node {
		_ = os.Remove(s.RecordingPath(m.ID))
		return
	}
	b, _ := json.Marshal(recordingRequest{ID: m.ID, Delete: true})
	ctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	if _, err := s.nc.RequestWithContext(ctx, subject(m.Node, "recording"), b); err != nil {
		// The record is gone; the file stays on a node that is down.
		s.log.Warn("delete recording on its node", "milestone", m.ID, "node", m.Node, "err", err)
	}
}
