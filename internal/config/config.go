// Package config holds every setting of `tether serve` and loads them from
// four places with a fixed precedence: command-line flags, then TETHER_*
// environment variables, then the YAML file named by --config, then the
// built-in defaults.
//
// Every scalar setting is declared once, as a flag; its environment variable
// is TETHER_ followed by the flag name in upper case with dashes turned into
// underscores, and its YAML key is the flag name (dashes or underscores).
// Structured settings that have no flag form (the agents list) come from the
// YAML file only.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the complete configuration of a Tether node.
type Config struct {
	Addr       string
	DataDir    string
	ConfigFile string
	Dev        bool
	LogLevel   string
	LogFormat  string
	NodeName   string
	Pprof      bool

	NATSURL          string
	NATSListen       string
	NATSUser         string
	NATSPassword     string
	NATSToken        string
	Replicas         int
	ClusterHeartbeat time.Duration
	// ClusterDeadAfter is how long after its last heartbeat a node is
	// considered down; 0 means three heartbeats.
	ClusterDeadAfter  time.Duration
	StorageReserve    int64
	JetStreamMaxStore int64

	JWTSecret    string
	JWTPublicKey string
	JWKSURL      string
	JWTIssuer    string
	JWTAudience  string
	JWTLeeway    time.Duration

	AllowedOrigins []string
	PublicURL      string

	AuthTimeout     time.Duration
	PingInterval    time.Duration
	IdleTimeout     time.Duration
	WriteTimeout    time.Duration
	ShutdownTimeout time.Duration
	// DrainTimeout is how long SIGTERM lets running operations and
	// terminals finish (see node.Drain) before the shutdown; 0: no drain.
	DrainTimeout   time.Duration
	MaxMessageSize int64

	HTTPIdleTimeout  time.Duration
	HTTPReadTimeout  time.Duration
	HTTPWriteTimeout time.Duration

	SendQueue       int
	MaxConnsPerUser int
	MaxChannels     int
	RateLimit       float64
	RateBurst       int

	HistoryMaxAge   time.Duration
	HistoryMaxBytes int64

	OperationHistoryMaxAge   time.Duration
	OperationHistoryMaxBytes int64
	MaxOperationsPerUser     int
	MaxOperations            int
	OperationEventRate       float64
	MaxOperationInput        int64
	MaxAGUIInput             int64
	OperationInputTimeout    time.Duration
	MaxOperationEvent        int64
	OperationKillGrace       time.Duration
	// WorkerGrace is how long a remote worker's running operations wait
	// for it to reconnect and reclaim them before they fail (0: at once).
	WorkerGrace time.Duration

	TerminalCommand           []string
	TerminalRingSize          int64
	TerminalRecordingMaxBytes int64
	TerminalDetachTimeout     time.Duration
	TerminalScrollback        int

	// Origins says where each setting that is not at its default came
	// from, by flag name: "--jwt-secret", "TETHER_JWT_SECRET" or
	// "tether.yaml line 3" (see Origin).
	Origins map[string]string

	// Extra holds the YAML file's structured sections (such as agents) for
	// the packages that own them to decode.
	Extra map[string]yaml.Node
}

// Setting describes one scalar setting for documentation and tests.
type Setting struct {
	Name    string // the flag name
	Env     string
	Default string
	Usage   string
}

// FlagSet declares every setting on a new flag set bound to c, whose fields
// must already hold the defaults (see Defaults).
func (c *Config) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "address to listen on")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for state: embedded NATS/JetStream storage, recordings, the dev secret")
	fs.StringVar(&c.ConfigFile, "config", c.ConfigFile, "optional YAML configuration file")
	fs.BoolVar(&c.Dev, "dev", c.Dev, "development mode: generate a secret if none is configured and print a ready-to-use token")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "this node's name in logs, metrics and the cluster (default: the host name)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve net/http/pprof under /debug/pprof/ (admin token required)")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "external NATS server or cluster (nats://host:4222,...); empty starts an embedded server")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "address where the embedded NATS server accepts backend clients (empty: in-process only)")
	fs.StringVar(&c.NATSUser, "nats-user", c.NATSUser, "user name backends must present to the embedded server's --nats-listen port (with nats-password), or that this node presents to --nats-url")
	fs.StringVar(&c.NATSPassword, "nats-password", c.NATSPassword, "password going with nats-user")
	fs.StringVar(&c.NATSToken, "nats-token", c.NATSToken, "token backends must present to the embedded server's --nats-listen port, or that this node presents to --nats-url (default with --nats-listen: generated and kept in <data-dir>/nats-token)")
	fs.Var((*sizeValue)(&c.StorageReserve), "storage-reserve", "free space the data directory's file system keeps: below it, writes to the embedded JetStream fail with storage_full (0: no check)")
	fs.Var((*sizeValue)(&c.JetStreamMaxStore), "jetstream-max-store", "store limit of the embedded JetStream (0: the size of the data directory's file system)")
	fs.IntVar(&c.Replicas, "replicas", c.Replicas, "JetStream replication factor for Tether's streams and buckets")
	fs.DurationVar(&c.ClusterHeartbeat, "cluster-heartbeat", c.ClusterHeartbeat, "interval of this node's heartbeat")
	fs.DurationVar(&c.ClusterDeadAfter, "cluster-dead-after", c.ClusterDeadAfter, "consider a node down this long after its last heartbeat arrived (0: three heartbeats)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", c.JWTSecret, "HMAC secret for HS256/384/512 tokens")
	fs.StringVar(&c.JWTPublicKey, "jwt-public-key", c.JWTPublicKey, "PEM public key file for RS*/PS*/ES*/EdDSA tokens")
	fs.StringVar(&c.JWKSURL, "jwks-url", c.JWKSURL, "JWKS URL for RS*/PS*/ES*/EdDSA tokens")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", c.JWTIssuer, "required iss claim (optional)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", c.JWTAudience, "required aud claim (optional)")
	fs.DurationVar(&c.JWTLeeway, "jwt-leeway", c.JWTLeeway, "clock skew allowed when checking exp, nbf and iat")
	fs.Var((*listValue)(&c.AllowedOrigins), "allowed-origins", "comma-separated browser origins allowed to connect, or * (default: --public-url's origin, and loopback pages on a loopback address)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the URL browsers reach Tether at (https://tether.example.com); pages of its origin may connect")
	fs.DurationVar(&c.AuthTimeout, "auth-timeout", c.AuthTimeout, "how long a connection without a token may take to send its auth message")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "interval between server WebSocket pings")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "close a connection from which nothing (not even a pong) arrived for this long")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "deadline for one frame write to a client")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long a graceful shutdown waits for connections to drain")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "on SIGTERM, let running operations and terminals finish for up to this long, starting nothing new, before shutting down (0: no drain)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", c.HTTPIdleTimeout, "close an HTTP keep-alive connection that has been idle between requests for this long")
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", c.HTTPReadTimeout, "deadline for reading an HTTP request body (headers: 10s, or this if shorter)")
	fs.DurationVar(&c.HTTPWriteTimeout, "http-write-timeout", c.HTTPWriteTimeout, "longest one write of an HTTP response may wait for a client that does not read")
	fs.Var((*sizeValue)(&c.MaxMessageSize), "max-message-size", "largest client frame accepted (bytes; KiB and MiB suffixes allowed)")
	fs.IntVar(&c.SendQueue, "send-queue", c.SendQueue, "messages queued for one connection before it is closed as a slow consumer")
	fs.IntVar(&c.MaxConnsPerUser, "max-connections-per-user", c.MaxConnsPerUser, "open connections per user (0: unlimited)")
	fs.IntVar(&c.MaxChannels, "max-channels", c.MaxChannels, "channels one connection may subscribe to")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "client messages per second per connection (0: unlimited)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst allowed above the rate limit")
	fs.DurationVar(&c.HistoryMaxAge, "history-max-age", c.HistoryMaxAge, "how long channel messages are kept in the history stream")
	fs.Var((*sizeValue)(&c.HistoryMaxBytes), "history-max-bytes", "size cap of the channel message history stream")
	fs.DurationVar(&c.OperationHistoryMaxAge, "operation-history-max-age", c.OperationHistoryMaxAge, "how long agent operation events and records are kept")
	fs.Var((*sizeValue)(&c.OperationHistoryMaxBytes), "operation-history-max-bytes", "size cap of the agent operation event stream")
	fs.IntVar(&c.MaxOperationsPerUser, "max-operations-per-user", c.MaxOperationsPerUser, "running agent operations per user on one node (0: unlimited)")
	fs.IntVar(&c.MaxOperations, "max-operations", c.MaxOperations, "running agent operations on one node (0: unlimited)")
	fs.Float64Var(&c.OperationEventRate, "operation-event-rate", c.OperationEventRate, "events per second one operation may produce: progress beyond it is coalesced, logs beyond it fail the operation (0: unlimited)")
	fs.Var((*sizeValue)(&c.MaxOperationInput), "max-operation-input", "largest operation input")
	fs.DurationVar(&c.OperationInputTimeout, "operation-input-timeout", c.OperationInputTimeout, "how long an agent's input request waits for an answer before the operation fails with input_timeout (0: no limit)")
	fs.Var((*sizeValue)(&c.MaxAGUIInput), "max-agui-input", "largest RunAgentInput the AG-UI endpoint takes (its message history grows)")
	fs.Var((*sizeValue)(&c.MaxOperationEvent), "max-operation-event", "largest single event (stdout line or worker message) from an agent")
	fs.DurationVar(&c.OperationKillGrace, "operation-kill-grace", c.OperationKillGrace, "time a cancelled agent has to stop before SIGKILL (workers: before the operation is cancelled without them)")
	fs.DurationVar(&c.WorkerGrace, "worker-grace", c.WorkerGrace, "how long a remote worker's running operations outlive its connection (a network drop, its node's restart or death), waiting for it to reconnect to any node and reclaim them, before they fail with agent_disconnected (0: at once)")
	fs.Var((*listValue)(&c.TerminalCommand), "terminal-command", "comma-separated argv of a milestone created without a command")
	fs.Var((*sizeValue)(&c.TerminalRingSize), "terminal-ring-size", "recent output each terminal keeps for reconnecting clients")
	fs.Var((*sizeValue)(&c.TerminalRecordingMaxBytes), "terminal-recording-max-bytes", "size cap of each terminal recording (asciicast)")
	fs.IntVar(&c.TerminalScrollback, "terminal-scrollback", c.TerminalScrollback, "lines of history above the screen each terminal's screen model keeps for late clients (0: none)")
	fs.DurationVar(&c.TerminalDetachTimeout, "terminal-detach-timeout", c.TerminalDetachTimeout, "end a terminal nobody is attached to after this long (0: never)")
	explainValues(fs)
	return fs
}

// Defaults returns the built-in configuration.
func Defaults() *Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "tether"
	}
	return &Config{
		Addr:             ":8000",
		DataDir:          "./data",
		LogLevel:         "info",
		LogFormat:        "text",
		NodeName:         host,
		Replicas:         1,
		ClusterHeartbeat: 2 * time.Second,
		AuthTimeout:      10 * time.Second,
		PingInterval:     25 * time.Second,
		IdleTimeout:      60 * time.Second,
		WriteTimeout:     10 * time.Second,
		ShutdownTimeout:  10 * time.Second,
		HTTPIdleTimeout:  60 * time.Second,
		HTTPReadTimeout:  30 * time.Second,
		HTTPWriteTimeout: 30 * time.Second,
		MaxMessageSize:   1 << 20,
		SendQueue:        256,
		MaxConnsPerUser:  100,
		MaxChannels:      128,
		RateLimit:        100,
		RateBurst:        200,
		HistoryMaxAge:    time.Hour,
		HistoryMaxBytes:  256 << 20,
		StorageReserve:   128 << 20,

		OperationHistoryMaxAge:   24 * time.Hour,
		OperationHistoryMaxBytes: 1 << 30,
		MaxOperationsPerUser:     16,
		MaxOperations:            256,
		OperationEventRate:       100,
		MaxOperationInput:        64 << 10,
		MaxAGUIInput:             512 << 10,
		OperationInputTimeout:    time.Hour,
		MaxOperationEvent:        64 << 10,
		OperationKillGrace:       5 * time.Second,
		WorkerGrace:              30 * time.Second,

		TerminalCommand:           []string{"/bin/sh"},
		TerminalRingSize:          1 << 20,
		TerminalRecordingMaxBytes: 64 << 20,
		TerminalScrollback:        1000,
	}
}

// Origin says where the setting with the given flag name came from, for
// messages: the flag, the environment variable, the file and line, or "the
// default".
func (c *Config) Origin(name string) string {
	if o, ok := c.Origins[name]; ok {
		return o
	}
	return "the default"
}

func (c *Config) setOrigin(name, origin string) {
	if c.Origins == nil {
		c.Origins = map[string]string{}
	}
	c.Origins[name] = origin
}

// EnvName is the environment variable of the setting with the given flag name.
func EnvName(flagName string) string {
	return "TETHER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Settings lists every scalar setting with its default, for documentation.
func Settings() []Setting {
	fs := Defaults().FlagSet("tether")
	var out []Setting
	fs.VisitAll(func(f *flag.Flag) {
		out = append(out, Setting{Name: f.Name, Env: EnvName(f.Name), Default: f.DefValue, Usage: f.Usage})
	})
	return out
}

var badFlag = regexp.MustCompile(`^invalid (?:boolean )?value ".*" for (?:flag )?-([a-z0-9-]+): (".*" is not .*)$`)

// Load builds the configuration from args (without the program and command
// names), the environment (as from os.Environ) and the YAML file that args
// or the environment name.
func Load(args, environ []string) (*Config, error) {
	c := Defaults()
	fs := c.FlagSet("serve")
	fs.SetOutput(new(strings.Builder))
	if err := fs.Parse(args); err != nil {
		// The flag package's "invalid value "x" for flag -name: <our
		// valueError, which quotes the value again>" said once.
		if m := badFlag.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("flag --%s: %s", m[1], m[2])
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	explicit := map[string]string{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = f.Value.String() })

	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "TETHER_") {
			env[k] = v
		}
	}
	file := c.ConfigFile
	if _, ok := explicit["config"]; !ok {
		if v, ok := env[EnvName("config")]; ok {
			file = v
		}
	}
	if file != "" {
		if err := c.loadFile(fs, file); err != nil {
			return nil, err
		}
		c.ConfigFile = file
	}
	for k, v := range env {
		name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "TETHER_")), "_", "-")
		f := fs.Lookup(name)
		// Unknown TETHER_ variables are not ours to refuse: agents receive
		// TETHER_OPERATION_ID and friends, and a server may run inside one.
		if f == nil {
			continue
		}
		if _, ok := explicit[name]; ok {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return nil, fmt.Errorf("environment %s: %w", k, err)
		}
		c.setOrigin(name, k)
	}
	for name, v := range explicit {
		if err := fs.Lookup(name).Value.Set(v); err != nil {
			return nil, fmt.Errorf("flag --%s: %w", name, err)
		}
		c.setOrigin(name, "--"+name)
	}
	return c, c.Validate()
}

func (c *Config) loadFile(fs *flag.FlagSet, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	keys, values, err := parseFile(path, raw, func(name string) bool { return fs.Lookup(name) != nil })
	if err != nil {
		return err
	}
	names := make([]string, 0, len(keys))
	for name := range keys {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return keys[names[i]].Line < keys[names[j]].Line })
	var errs []error
	for _, name := range names {
		k, node := keys[name], values[name]
		f := fs.Lookup(name)
		if f == nil { // a section
			if c.Extra == nil {
				c.Extra = map[string]yaml.Node{}
			}
			c.Extra[name] = *node
			continue
		}
		var s string
		switch node.Kind {
		case yaml.ScalarNode:
			s = node.Value
		case yaml.SequenceNode:
			items := make([]string, 0, len(node.Content))
			for _, item := range node.Content {
				if item.Kind != yaml.ScalarNode {
					errs = append(errs, fmt.Errorf("line %d: %s: the items of a list must be single values, not %s", item.Line, k.Value, kindName(item)))
				}
				items = append(items, item.Value)
			}
			s = strings.Join(items, ",")
		default:
			errs = append(errs, fmt.Errorf("line %d: %s must be a single value or a list, not %s", node.Line, k.Value, kindName(node)))
			continue
		}
		if err := f.Value.Set(s); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %w", node.Line, k.Value, err))
			continue
		}
		c.setOrigin(name, fmt.Sprintf("%s line %d", path, node.Line))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Validate checks values that flags cannot check on their own.
func (c *Config) Validate() error {
	var errs []error
	keys := 0
	for _, s := range []string{c.JWTSecret, c.JWTPublicKey, c.JWKSURL} {
		if s != "" {
			keys++
		}
	}
	if keys > 1 {
		errs = append(errs, errors.New("configure only one of jwt-secret, jwt-public-key and jwks-url"))
	}
	if keys == 0 && !c.Dev {
		errs = append(errs, errors.New("no token key configured: set jwt-secret, jwt-public-key or jwks-url, or run with --dev"))
	}
	if c.NATSToken != "" && (c.NATSUser != "" || c.NATSPassword != "") {
		errs = append(errs, errors.New("configure either nats-token or nats-user and nats-password, not both"))
	}
	if (c.NATSUser == "") != (c.NATSPassword == "") {
		errs = append(errs, errors.New("nats-user and nats-password go together"))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("jwt-secret must be at least 32 bytes"))
	}
	positive := map[string]time.Duration{
		"auth-timeout": c.AuthTimeout, "ping-interval": c.PingInterval, "idle-timeout": c.IdleTimeout,
		"write-timeout": c.WriteTimeout, "shutdown-timeout": c.ShutdownTimeout, "history-max-age": c.HistoryMaxAge,
		"cluster-heartbeat": c.ClusterHeartbeat,
		"http-idle-timeout": c.HTTPIdleTimeout, "http-read-timeout": c.HTTPReadTimeout, "http-write-timeout": c.HTTPWriteTimeout,
		"operation-history-max-age": c.OperationHistoryMaxAge, "operation-kill-grace": c.OperationKillGrace,
	}
	for name, d := range positive {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.ClusterDeadAfter < 0 || (c.ClusterDeadAfter > 0 && c.ClusterDeadAfter <= c.ClusterHeartbeat) {
		errs = append(errs, fmt.Errorf("cluster-dead-after (%s) must be longer than cluster-heartbeat (%s), or 0 for three heartbeats", c.ClusterDeadAfter, c.ClusterHeartbeat))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("public-url %q must be an http or https URL with a host", c.PublicURL))
		}
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); o != "*" && (err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https")) {
			errs = append(errs, fmt.Errorf("allowed-origins: %q is not * or an origin such as https://app.example.com", o))
		}
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, errors.New("drain-timeout must not be negative"))
	}
	if c.WorkerGrace < 0 {
		errs = append(errs, errors.New("worker-grace must not be negative"))
	}
	if c.MaxMessageSize < 1024 {
		errs = append(errs, errors.New("max-message-size must be at least 1KiB"))
	}
	if c.SendQueue < 1 {
		errs = append(errs, errors.New("send-queue must be at least 1"))
	}
	if c.MaxChannels < 1 {
		errs = append(errs, errors.New("max-channels must be at least 1"))
	}
	if c.RateLimit < 0 || c.RateBurst < 0 || c.MaxConnsPerUser < 0 {
		errs = append(errs, errors.New("rate-limit, rate-burst and max-connections-per-user must not be negative"))
	}
	if len(c.TerminalCommand) == 0 {
		errs = append(errs, errors.New("terminal-command must not be empty"))
	}
	if c.TerminalRingSize < 4<<10 || c.TerminalRingSize > 1<<30 {
		errs = append(errs, errors.New("terminal-ring-size must be between 4KiB and 1GiB"))
	}
	if c.TerminalScrollback < 0 || c.TerminalScrollback > 100000 {
		errs = append(errs, errors.New("terminal-scrollback must be between 0 and 100000 lines"))
	}
	if c.MaxOperationsPerUser < 0 || c.MaxOperations < 0 || c.OperationEventRate < 0 {
		errs = append(errs, errors.New("max-operations-per-user, max-operations and operation-event-rate must not be negative"))
	}
	if c.MaxOperationEvent < 1024 {
		errs = append(errs, errors.New("max-operation-event must be at least 1KiB"))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, errors.New("replicas must be between 1 and 5"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format must be text or json, not %q", c.LogFormat))
	}
	return errors.Join(errs...)
}

// listValue is a comma-separated list flag.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// sizeValue is a byte count that accepts KiB, MiB and GiB suffixes.
type sizeValue int64

func (s *sizeValue) String() string { return FormatSize(int64(*s)) }

func (s *sizeValue) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

// ParseSize parses a byte count such as "1048576", "64KiB" or "1MiB".
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want bytes, or a number with KiB, MiB or GiB", v)
	}
	return n * mult, nil
}

// FormatSize renders n in the largest unit that divides it exactly.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
