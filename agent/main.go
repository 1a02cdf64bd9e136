// Command agent exposes a local web app through a lambdatunnel service:
//
//	go run ./agent --port 8080
//
// It prints the public URL, forwards every request that reaches it to the
// local app and sends the answer back, reconnecting and renewing its
// connection as needed so that the URL stays the same. It remembers the
// URL in a state file, so that the next run for the same local app gets it
// back.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lambdatunnel/lambdatunnel/agent/console"
	"github.com/lambdatunnel/lambdatunnel/agent/forward"
	"github.com/lambdatunnel/lambdatunnel/agent/session"
	"github.com/lambdatunnel/lambdatunnel/agent/state"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newApp(os.Stdout, os.Stderr).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "agent: "+sentence(err))
		os.Exit(1)
	}
}

// sentence ends an error message like a sentence.
func sentence(err error) string {
	s := err.Error()
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

const tuning = "Tuning:"

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "agent",
		Usage:     "expose a local web app at a public URL through lambdatunnel",
		UsageText: "agent --port 8080 [--server wss://... --token ...] [--subdomain name]",
		Description: "The agent connects to the tunnel service (by default `lambda serve` on this machine),\n" +
			"prints the public URL, and forwards every request to that URL to the local app.\n" +
			"The URL is kept across restarts: the agent remembers, in a state file, the name each\n" +
			"local app (host:port) last had on each server and the key that takes it back, so running\n" +
			"it again, even after a crash, gives the same URL. --new-url asks for a fresh one;\n" +
			"--no-state turns the state file off.\n" +
			"Every flag can also be set with an environment variable (TUNNEL_PORT, TUNNEL_SERVER, ...).\n\n" +
			"Examples:\n" +
			"   agent --port 8080\n" +
			"   agent --port 8080 --new-url\n" +
			"   agent --port 3000 --subdomain myapp --server wss://abc123.execute-api.eu-west-1.amazonaws.com/prod --token $TOKEN\n" +
			"   agent --port 8443 --local-https --insecure-skip-verify --host-header rewrite",
		Version:         version,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Flags:           flags(),
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%v (see agent --help)", err)
		},
		Action: func(c *cli.Context) error { return run(c, stdout, stderr) },
	}
}

func flags() []cli.Flag {
	env := func(name string) []string { return []string{"TUNNEL_" + name} }
	return []cli.Flag{
		&cli.IntFlag{Name: "port", Aliases: []string{"p"}, EnvVars: env("PORT"), Usage: "port of the local app", DefaultText: "required"},
		&cli.StringFlag{Name: "host", Value: "127.0.0.1", EnvVars: env("HOST"), Usage: "host of the local app"},
		&cli.BoolFlag{Name: "local-https", EnvVars: env("LOCAL_HTTPS"), Usage: "talk to the local app over HTTPS"},
		&cli.BoolFlag{Name: "insecure-skip-verify", EnvVars: env("INSECURE_SKIP_VERIFY"), Usage: "with --local-https: accept any certificate (self-signed)"},
		&cli.StringFlag{Name: "server", Value: "ws://127.0.0.1:8001", EnvVars: env("SERVER"), Usage: "tunnel service WebSocket URL: that of lambda serve, or the stack's ServerURL output (wss://...)"},
		&cli.StringFlag{Name: "token", EnvVars: env("TOKEN"), Usage: "agent token, if the service requires one (mint one with: lambda token)"},
		&cli.StringFlag{Name: "subdomain", Aliases: []string{"s"}, EnvVars: env("SUBDOMAIN"), Usage: "ask for this name instead of a random one"},
		&cli.BoolFlag{Name: "new-url", EnvVars: env("NEW_URL"), Usage: "ask for a new random URL instead of the one this local app had last time"},
		&cli.StringFlag{Name: "state-file", EnvVars: env("STATE_FILE"), DefaultText: defaultStatePath(),
			Usage: "where the agent remembers its URLs and the keys that take them back (a JSON file, mode 0600); --no-state turns it off"},
		&cli.BoolFlag{Name: "no-state", EnvVars: env("NO_STATE"), Usage: "neither read nor write the state file: every run gets a new random URL unless --subdomain"},
		&cli.StringFlag{Name: "host-header", Value: forward.HostPreserve, EnvVars: env("HOST_HEADER"), Usage: "Host header for the local app: preserve (the public host), rewrite (host:port of the local app) or a literal value"},
		&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: env("LOG_FORMAT"), Usage: "text or json"},
		&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: env("LOG_LEVEL"), Usage: "diagnostics on stderr: debug, info, warn or error"},

		&cli.DurationFlag{Name: "max-connection-life", Value: session.DefaultMaxConnectionLife, EnvVars: env("MAX_CONNECTION_LIFE"), Category: tuning,
			Usage: "the service's maximum WebSocket life (API Gateway: 2h); the agent renews its connection before it"},
		&cli.DurationFlag{Name: "ping-interval", Value: session.DefaultPingInterval, EnvVars: env("PING_INTERVAL"), Category: tuning, Usage: "how often to ping the service"},
		&cli.DurationFlag{Name: "pong-timeout", Value: session.DefaultPongTimeout, EnvVars: env("PONG_TIMEOUT"), Category: tuning, Usage: "reconnect when a ping is not answered within this"},
		&cli.DurationFlag{Name: "drain", Value: session.DefaultDrain, EnvVars: env("DRAIN"), Category: tuning, Usage: "how long a renewed-out connection keeps serving (at least 3s)"},
		&cli.DurationFlag{Name: "local-timeout", Value: forward.DefaultTimeout, EnvVars: env("LOCAL_TIMEOUT"), Category: tuning, Usage: "answer 504 when the local app takes longer (keep it under the service's deadline)"},
		&cli.IntFlag{Name: "max-in-flight", Value: session.DefaultMaxInFlight, EnvVars: env("MAX_IN_FLIGHT"), Category: tuning, Usage: "requests served at once; more get 503"},
		&cli.IntFlag{Name: "max-response-bytes", Value: forward.DefaultMaxResponseBytes, EnvVars: env("MAX_RESPONSE_BYTES"), Category: tuning, Usage: "largest local response body; larger ones get 502 (AWS Lambda: 6 MB once base64-encoded)"},
	}
}

func run(c *cli.Context, stdout, stderr io.Writer) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see agent --help)", c.Args().First())
	}
	if !c.IsSet("port") {
		return errors.New("give the local app's port, e.g. --port 8080 (see agent --help)")
	}
	format := c.String("log-format")
	if format != "text" && format != "json" {
		return fmt.Errorf("--log-format %q: choose text or json", format)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level %q: choose debug, info, warn or error", c.String("log-level"))
	}
	if c.Bool("new-url") && c.String("subdomain") != "" {
		return errors.New("--new-url asks for a random name: leave out --subdomain")
	}
	if c.Bool("insecure-skip-verify") && !c.Bool("local-https") {
		return errors.New("--insecure-skip-verify only applies with --local-https")
	}
	fwd, err := forward.New(forward.Config{
		Host:               c.String("host"),
		Port:               c.Int("port"),
		HTTPS:              c.Bool("local-https"),
		InsecureSkipVerify: c.Bool("insecure-skip-verify"),
		HostHeader:         c.String("host-header"),
		Timeout:            c.Duration("local-timeout"),
		MaxResponseBytes:   c.Int("max-response-bytes"),
	})
	if err != nil {
		return err
	}
	defer fwd.Close()

	var logger *slog.Logger
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		logger = slog.New(slog.NewJSONHandler(stderr, opts))
	} else {
		logger = slog.New(slog.NewTextHandler(stderr, opts))
	}
	con := console.New(stdout, stderr, format, fwd.Target())
	target := net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))
	mem := openMemory(con, c.String("state-file"), c.Bool("no-state"), c.String("server"), target)
	defer mem.release()
	cfg := session.Config{
		Server:            c.String("server"),
		Token:             c.String("token"),
		Subdomain:         c.String("subdomain"),
		Version:           version,
		Handler:           logged{fwd: fwd, con: con},
		Events:            remembering{Console: con, mem: mem},
		Logger:            logger,
		MaxInFlight:       c.Int("max-in-flight"),
		PingInterval:      c.Duration("ping-interval"),
		PongTimeout:       c.Duration("pong-timeout"),
		MaxConnectionLife: c.Duration("max-connection-life"),
		Drain:             c.Duration("drain"),
	}
	mem.plan(&cfg, c.Bool("new-url"))
	mgr, err := session.New(cfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the agent at once
	}()
	if err := mgr.Run(ctx); err != nil {
		return err
	}
	con.Status("stopped")
	return nil
}

// defaultStatePath is the state file's default, for --help.
func defaultStatePath() string {
	p, err := state.DefaultPath()
	if err != nil {
		return "none: the user config dir is unknown"
	}
	return p
}

// logged forwards a request and prints its line on the console.
type logged struct {
	fwd *forward.Forwarder
	con *console.Console
}

func (l logged) Serve(ctx context.Context, req *protocol.Request) *protocol.Response {
	start := time.Now()
	resp := l.fwd.Serve(ctx, req)
	l.con.Request(start, req.Method, req.URI, resp.StatusCode, time.Since(start), protocol.DecodedLen(resp.Body))
	return resp
}
