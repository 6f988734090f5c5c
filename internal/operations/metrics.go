package operations

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// opMetrics are the service's Prometheus metrics; agent ids and statuses
// are bounded sets (agents are configured or registered by workers).
type opMetrics struct {
	started  *prometheus.CounterVec // agent
	finished *prometheus.CounterVec // agent, status
	events   *prometheus.CounterVec // type
	watching atomic.Int64
}

func newOpMetrics() *opMetrics {
	return &opMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_operations_started_total", Help: "Operations started on this node, by agent.",
		}, []string{"agent"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_operations_finished_total", Help: "Operations ended by this node, by agent and final status (completed, failed, cancelled); those of a dead node count on the node that failed them.",
		}, []string{"agent", "status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_operation_events_total", Help: "Operation events stored by this node, by type.",
		}, []string{"type"}),
	}
}

// Collectors returns the service's metrics for the node's registry:
// the counters above, and gauges of the operations running on this node
// and of the watchers it serves (WebSocket and SSE).
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		s.m.started, s.m.finished, s.m.events,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tether_operations_running", Help: "Operations running on this node.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.local))
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tether_operation_watchers", Help: "Watchers of operations served by this node (WebSocket subscriptions and SSE streams).",
		}, func() float64 { return float64(s.m.watching.Load()) }),
	}
}
