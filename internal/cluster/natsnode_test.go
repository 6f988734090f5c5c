package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSNodeEnv, when set in the environment of this test binary, makes it a
// NATS server instead of running tests (see TestMain): the failover tests
// start three of them as processes, so that one can be killed with SIGKILL
// as a crash would, without a chance to hand its leadership over. The
// value is a JSON NATSNodeSpec.
const NATSNodeEnv = "TETHER_TEST_NATS_NODE"

// NATSNodeSpec configures one NATS server process of a test cluster.
type NATSNodeSpec struct {
	Name      string   `json:"name"`
	Port      int      `json:"port"`
	RoutePort int      `json:"route_port"`
	HTTPPort  int      `json:"http_port"`
	Routes    []string `json:"routes"`
	StoreDir  string   `json:"store_dir"`
}

// runNATSNode runs the server spec describes until SIGTERM or SIGINT and
// returns the process's exit code.
func runNATSNode(spec string) int {
	var s NATSNodeSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "nats node spec:", err)
		return 2
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: s.Name, Host: "127.0.0.1", Port: s.Port, HTTPHost: "127.0.0.1", HTTPPort: s.HTTPPort,
		JetStream: true, StoreDir: s.StoreDir, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "tether-test", Host: "127.0.0.1", Port: s.RoutePort},
		Routes:  server.RoutesFromStr(strings.Join(s.Routes, ",")),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats node:", err)
		return 2
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats node: not ready")
		return 3
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}
