// Package cli implements the tether command's subcommands, so that
// cmd/tether stays a one-line main and the commands can be tested.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/bench"
	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/node"
)

const usage = `tether: a real-time gateway for AI-agent platforms.

Usage:
  tether serve [flags]       run a node (tether serve --dev for a ready-to-use local server)
  tether token --sub ID      mint an HS256 token with the configured secret
  tether connect URL         a line-oriented WebSocket client: stdin lines out, frames in
  tether attach MILESTONE    attach this terminal to a milestone's terminal (detach: Ctrl-])
  tether bench SCENARIO      load and speed figures against a baseline (see docs/benchmarks.md)
  tether help [command]      show help

Run 'tether <command> -h' for a command's flags. Every serve flag can also be
set with a TETHER_* environment variable or in the YAML file named by --config
(see docs/configuration.md).
`

// Main runs the command line args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = Serve(args[1:], stdout, stderr)
	case "token":
		err = Token(args[1:], stdout)
	case "connect":
		err = Connect(args[1:], stdin, stdout, stderr)
	case "attach":
		err = Attach(args[1:], stdin, stdout, stderr)
	case "bench":
		err = bench.Main(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 {
			return Main([]string{args[1], "-h"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tether: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == flag.ErrHelp {
		return 0
	}
	var exit exitError
	if errors.As(err, &exit) {
		return exit.code // the attached program's exit code
	}
	if err != nil {
		fmt.Fprintf(stderr, "tether %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// Serve runs `tether serve` until SIGINT or SIGTERM.
func Serve(args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprintln(stdout, "Usage: tether serve [flags]")
			config.PrintDefaults(stdout, config.Defaults().FlagSet("tether serve"))
			return flag.ErrHelp
		}
	}
	cfg, err := config.Load(args, os.Environ())
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A write to a closed pipe on stdout or stderr (`tether serve | tee log`
	// after Ctrl-C ended tee) must not kill the node in the middle of its
	// shutdown: Go raises SIGPIPE for those unless the program handles it.
	// Handled rather than ignored: an ignored signal stays ignored in the
	// programs that operations and terminals run, a handled one does not.
	// Nobody reads the channel: Notify drops what a full one cannot take.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)

	// The port opens first: while the node connects to NATS and waits for
	// JetStream (an external cluster may still be forming), /readyz says
	// it is starting rather than the connection being refused.
	sock, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	h := newHandoff(sock)
	defer h.close()
	stopStarting := serveStarting(h.turn(), cfg.NodeName)
	n, err := node.New(ctx, cfg, log)
	stopStarting()
	if err != nil {
		return err
	}
	ln := h.last()
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()
	log.Info("tether listening", "addr", ln.Addr().String(), "node", cfg.NodeName,
		"nats", natsMode(n), "data_dir", cfg.DataDir)
	if cfg.Dev {
		if err := printDev(stdout, n, ln.Addr()); err != nil {
			log.Warn("dev banner", "err", err)
		}
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			_ = n.Shutdown(context.Background())
			return err
		}
	}
	if cfg.DrainTimeout > 0 {
		drain(n, cfg.DrainTimeout, log)
	}
	log.Info("shutting down", "deadline", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = n.Shutdown(sctx)
	<-served
	if err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

// drain lets the node's operations and terminals finish for up to timeout
// before the shutdown; a second SIGINT or SIGTERM ends the drain at once.
func drain(n *node.Node, timeout time.Duration, log *slog.Logger) {
	log.Info("draining: starting nothing new; send the signal again to stop at once", "timeout", timeout)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	defer cancelT()
	n.Drain(ctx)
}

func natsMode(n *node.Node) string {
	if n.Backbone.Embedded() {
		if u := n.Backbone.ClientURL(); u != "" {
			return "embedded, backends at " + u
		}
		return "embedded"
	}
	return "external"
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redactAttr keeps tokens out of every log line, whatever logged them: a
// string or error value that holds something shaped like a token, or a
// credential parameter, is logged with it replaced (auth.Redact). The
// places that log URLs and headers redact them already; this is the net
// under every other one (an error that quotes a request, a library's
// message).
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); auth.Redact(s) != s {
			a.Value = slog.StringValue(auth.Redact(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if s, r := err.Error(), auth.Redact(err.Error()); r != s {
				a.Value = slog.StringValue(r)
			}
		}
	}
	return a
}

// self is how the user invoked this binary, so that printed examples can be
// pasted as they are (`go run ./cmd/tether` leaves a binary in a temp dir).
func self() string {
	exe := os.Args[0]
	if strings.Contains(exe, "go-build") {
		return "go run ./cmd/tether"
	}
	if !strings.Contains(exe, "/") {
		return exe
	}
	if abs, err := filepath.Abs(exe); err == nil {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
				return "./" + rel
			}
		}
	}
	return exe
}

func printDev(w io.Writer, n *node.Node, addr net.Addr) error {
	if n.Secret == nil {
		fmt.Fprintln(w, "dev mode: tokens are verified with a public key here, so no token can be minted")
		return nil
	}
	tok, err := auth.Mint(n.Secret, auth.MintClaims{
		Subject: "dev", Roles: []string{auth.RoleAdmin, auth.RoleAgent}, Channels: []string{"*"}, TTL: 24 * time.Hour,
		Issuer: n.Config.JWTIssuer, Audience: n.Config.JWTAudience,
	})
	if err != nil {
		return err
	}
	host := "localhost"
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		host = ta.IP.String()
	}
	base := fmt.Sprintf("%s:%d", host, addr.(*net.TCPAddr).Port)
	cmd := self()
	secretNote, mint := secretSource(n, cmd)
	fmt.Fprintf(w, `
Tether is running in development mode (secret %s).

  Console        http://%[2]s/
  Messaging      ws://%[2]s/ws/agent
  Operations     ws://%[2]s/ws/agent-guidance
  Health         http://%[2]s/healthz   metrics: http://%[2]s/metrics

A token for user "dev" with roles admin and agent, valid for 24 hours:

  %[3]s

Try it from another terminal:

  echo '{"type":"ping","id":1}' | %[4]s connect ws://%[2]s/ws/agent --token %[3]s

Mint tokens for other users with: %[5]s
`, secretNote, base, tok, cmd, mint)
	return nil
}

// secretSource says where the dev banner's secret came from, and how
// `tether token` finds the same secret.
func secretSource(n *node.Node, cmd string) (note, mint string) {
	mint = cmd + " token --sub alice"
	file := filepath.Join(n.Config.DataDir, node.DevSecretFile)
	origin := n.Config.Origin("jwt-secret")
	switch {
	case n.GeneratedSecret:
		return "generated and stored in " + file, mint + " --data-dir " + n.Config.DataDir
	case n.Config.JWTSecret == "":
		return "read from " + file + ", generated by an earlier run", mint + " --data-dir " + n.Config.DataDir
	case strings.HasPrefix(origin, "--"):
		return "from " + origin, mint + " --jwt-secret SECRET"
	case strings.HasPrefix(origin, "TETHER_"):
		return "from " + origin, mint + " (it reads " + origin + " too)"
	default:
		return "from " + origin, mint + " --config " + n.Config.ConfigFile
	}
}

// Token runs `tether token`.
func Token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tether token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	sub := fs.String("sub", "", "subject (user id); required")
	roles := fs.String("roles", "", "comma-separated roles, e.g. admin,agent")
	chans := fs.String("channels", "", "comma-separated channel patterns, e.g. room:*")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	cfgFile := fs.String("config", "", "YAML configuration file (for jwt-secret, issuer, audience)")
	secret := fs.String("jwt-secret", "", "HMAC secret (default: TETHER_JWT_SECRET, the config file, or the dev secret under --data-dir)")
	dataDir := fs.String("data-dir", "", "data directory holding a dev secret (default ./data)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return fmt.Errorf("--sub is required")
	}
	// Resolve the secret with the same precedence as serve.
	cargs := []string{"--dev"}
	for name, v := range map[string]string{"config": *cfgFile, "jwt-secret": *secret, "data-dir": *dataDir} {
		if v != "" {
			cargs = append(cargs, "--"+name, v)
		}
	}
	cfg, err := config.Load(cargs, os.Environ())
	if err != nil {
		return err
	}
	key := []byte(cfg.JWTSecret)
	if len(key) == 0 {
		if cfg.JWTPublicKey != "" || cfg.JWKSURL != "" {
			return fmt.Errorf("this configuration verifies tokens with a public key; mint them with your identity provider")
		}
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, node.DevSecretFile))
		if err != nil {
			return fmt.Errorf("no secret: set --jwt-secret or TETHER_JWT_SECRET, or run `tether serve --dev` once with this --data-dir")
		}
		key = []byte(strings.TrimSpace(string(b)))
	}
	tok, err := auth.Mint(key, auth.MintClaims{
		Subject: *sub, Roles: split(*roles), Channels: split(*chans), TTL: *ttl,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
