// Package metrics defines the Prometheus metrics a Tether node exports on
// /metrics. Each node owns its own registry, so that several nodes (or test
// servers) can live in one process.
package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors shared by every package of a node.
type Metrics struct {
	Registry *prometheus.Registry

	ConnectionsOpen *prometheus.GaugeVec   // endpoint
	Connections     *prometheus.CounterVec // endpoint: accepted since start
	MessagesIn      *prometheus.CounterVec // endpoint, type
	MessagesOut     *prometheus.CounterVec // endpoint, type
	AuthFailures    *prometheus.CounterVec // reason
	SendQueueDrops  *prometheus.CounterVec // endpoint: connections closed as slow consumers
	BadFrames       *prometheus.CounterVec // endpoint: frames that were not JSON
	Closes          *prometheus.CounterVec // endpoint, code
	// ConnectionPanics counts panics recovered in a connection's
	// goroutines; each closed that connection alone.
	ConnectionPanics *prometheus.CounterVec // endpoint
	Handshake        prometheus.Histogram
	MessageLatency   *prometheus.HistogramVec // endpoint
	Info             *prometheus.GaugeVec     // node
	// StorageFull is 1 while the node's storage is full (writes fail with
	// storage_full), 0 otherwise.
	StorageFull prometheus.Gauge
	// Draining is 1 while the node drains before a restart (see
	// node.Drain), 0 otherwise.
	Draining prometheus.Gauge

	inCache  sync.Map // [2]string → prometheus.Counter
	outCache sync.Map
}

// New creates the collectors and registers them, with Go and process
// collectors, on a fresh registry labelled with the node's name.
func New(node string) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		Registry: reg,
		ConnectionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tether_connections_open", Help: "Open WebSocket connections.",
		}, []string{"endpoint"}),
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_connections_total", Help: "WebSocket connections accepted.",
		}, []string{"endpoint"}),
		MessagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_messages_in_total", Help: "Client messages received, by type (unknown types count as other).",
		}, []string{"endpoint", "type"}),
		MessagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_messages_out_total", Help: "Messages sent to clients, by type.",
		}, []string{"endpoint", "type"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_auth_failures_total", Help: "Refused authentications, by reason.",
		}, []string{"reason"}),
		SendQueueDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_send_queue_drops_total", Help: "Connections closed because their send queue was full (slow consumers).",
		}, []string{"endpoint"}),
		BadFrames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_bad_frames_total", Help: "Frames that were not JSON and got no reply.",
		}, []string{"endpoint"}),
		Closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_closes_total", Help: "Connections closed by the server, by close code.",
		}, []string{"endpoint", "code"}),
		ConnectionPanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_connection_panics_total", Help: "Panics recovered in a connection's goroutines; each closed that connection (1011).",
		}, []string{"endpoint"}),
		Handshake: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tether_handshake_seconds", Help: "Time from request to upgraded connection, authentication included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		MessageLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tether_message_seconds", Help: "Time to handle one client message.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 20),
		}, []string{"endpoint"}),
		Info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tether_node_info", Help: "Constant 1, labelled with this node's name.",
		}, []string{"node"}),
		StorageFull: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tether_storage_full", Help: "1 while the node's storage is full and writes fail with storage_full.",
		}),
		Draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tether_draining", Help: "1 while the node drains before a restart: it starts no new operation or terminal.",
		}),
	}
	f(m.ConnectionsOpen)
	f(m.Connections)
	f(m.MessagesIn)
	f(m.MessagesOut)
	f(m.AuthFailures)
	f(m.SendQueueDrops)
	f(m.BadFrames)
	f(m.Closes)
	f(m.ConnectionPanics)
	f(m.Handshake)
	f(m.MessageLatency)
	f(m.Info)
	f(m.StorageFull)
	f(m.Draining)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Info.WithLabelValues(node).Set(1)
	return m
}

// In counts one received message; typ must come from a bounded set.
func (m *Metrics) In(endpoint, typ string) { counter(&m.inCache, m.MessagesIn, endpoint, typ).Inc() }

// Out counts one sent message; typ must come from a bounded set.
func (m *Metrics) Out(endpoint, typ string) { counter(&m.outCache, m.MessagesOut, endpoint, typ).Inc() }

// counter caches label lookups: they are on the per-message path, and a
// sync.Map read takes no lock.
func counter(cache *sync.Map, vec *prometheus.CounterVec, a, b string) prometheus.Counter {
	k := [2]string{a, b}
	if c, ok := cache.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := cache.LoadOrStore(k, vec.WithLabelValues(a, b))
	return c.(prometheus.Counter)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
