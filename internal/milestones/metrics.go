package milestones

import "github.com/prometheus/client_golang/prometheus"

// endedTotals accumulates the counters of sessions that have ended, so that
// the totals stay monotonic when a session leaves s.live.
type endedTotals struct {
	output, input, skips, resyncs int64
}

var (
	descRunning = prometheus.NewDesc("tether_terminals_running", "Terminal sessions (milestone programs) running on this node.", nil, nil)
	descClients = prometheus.NewDesc("tether_terminal_clients", "Clients attached to terminals running on this node, relayed ones from other nodes included.", nil, nil)
	descOutput  = prometheus.NewDesc("tether_terminal_output_bytes_total", "Bytes read from the PTYs of this node's terminals.", nil, nil)
	descInput   = prometheus.NewDesc("tether_terminal_input_bytes_total", "Bytes written to the PTYs of this node's terminals.", nil, nil)
	descSkips   = prometheus.NewDesc("tether_terminal_skips_total", "Times a client fell more than the replay ring behind and skipped forward to a replay.", nil, nil)
	descResyncs = prometheus.NewDesc("tether_terminal_model_resyncs_total", "Times a terminal's screen model fell more than the replay ring behind and was rebuilt from the ring.", nil, nil)
)

// Collector returns the terminals' metrics for the node's registry, read
// from the sessions when scraped.
func (s *Service) Collector() prometheus.Collector { return (*termCollector)(s) }

type termCollector Service

// Describe implements prometheus.Collector.
func (c *termCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRunning, descClients, descOutput, descInput, descSkips, descResyncs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *termCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Service)(c)
	s.mu.Lock()
	t := s.ended
	running := len(s.live)
	clients := 0
	for _, l := range s.live {
		st := l.sess.Stats()
		t.output += st.OutputBytes
		t.input += st.InputBytes
		t.skips += st.Skips
		t.resyncs += st.ModelResyncs
		clients += st.Clients
	}
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(running))
	ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(clients))
	ch <- prometheus.MustNewConstMetric(descOutput, prometheus.CounterValue, float64(t.output))
	ch <- prometheus.MustNewConstMetric(descInput, prometheus.CounterValue, float64(t.input))
	ch <- prometheus.MustNewConstMetric(descSkips, prometheus.CounterValue, float64(t.skips))
	ch <- prometheus.MustNewConstMetric(descResyncs, prometheus.CounterValue, float64(t.resyncs))
}
