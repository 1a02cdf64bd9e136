package main

import (
	"context"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only with --pprof-addr
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/urfave/cli/v2"

	"github.com/lambdatunnel/lambdatunnel/pkg/apigw"
	"github.com/lambdatunnel/lambdatunnel/pkg/local"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the whole service on this machine (API Gateway, the handlers and state), no AWS needed",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "http-addr", Value: "127.0.0.1:8000", Usage: "public HTTP API address; tunnels are http://<name>.localhost:<port>/", EnvVars: []string{"TUNNEL_HTTP_ADDR"}},
			&cli.StringFlag{Name: "ws-addr", Value: "127.0.0.1:8001", Usage: "WebSocket API (agents) and @connections address", EnvVars: []string{"TUNNEL_WS_ADDR"}},
			&cli.StringFlag{Name: "store", Value: "memory", Usage: "where state lives: memory or dynamodb", EnvVars: []string{"TUNNEL_STORE"}},
			&cli.StringFlag{Name: "dynamodb-endpoint", Usage: "DynamoDB endpoint for --store dynamodb, e.g. http://127.0.0.1:5000 (moto_server); empty: AWS", EnvVars: []string{"TUNNEL_DYNAMODB_ENDPOINT"}},
			&cli.BoolFlag{Name: "create-tables", Usage: "create the DynamoDB tables first if they do not exist", EnvVars: []string{"TUNNEL_CREATE_TABLES"}},
			&cli.StringFlag{Name: "token-secret", Usage: "require agent tokens minted with this secret (see `lambda token`); empty: anyone may connect", EnvVars: []string{"TUNNEL_TOKEN_SECRET"}},
			&cli.DurationFlag{Name: "deadline", Usage: "how long a public request waits for the agent (default 28s)", EnvVars: []string{"TUNNEL_RESPONSE_DEADLINE"}},
			&cli.DurationFlag{Name: "reclaim-grace", Usage: "how long a name stays reserved for its agent after a disconnect (default 10m)"},
			&cli.IntFlag{Name: "max-frame-bytes", Usage: "WebSocket frame limit (AWS: 32 KiB)"},
			&cli.IntFlag{Name: "max-message-bytes", Usage: "WebSocket message limit (AWS: 128 KiB)"},
			&cli.DurationFlag{Name: "idle-timeout", Usage: "close sockets idle this long (AWS: 10m)"},
			&cli.DurationFlag{Name: "max-connection-life", Usage: "close sockets this old (AWS: 2h)"},
			&cli.DurationFlag{Name: "integration-timeout", Usage: "answer 503 after this long (AWS: 30s)"},
			&cli.IntFlag{Name: "max-request-bytes", Usage: "HTTP API payload limit (AWS: 10 MB)"},
			&cli.IntFlag{Name: "max-lambda-payload", Usage: "Lambda event and result limit (AWS: 6 MB)"},
			&cli.StringFlag{Name: "pprof-addr", Usage: "serve Go's net/http/pprof profiles on this address (for profiling serve)", Hidden: true},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"TUNNEL_LOG_LEVEL"}},
		},
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	log := newLogger(c.String("log-format"), c.String("log-level"))
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if addr := c.String("pprof-addr"); addr != "" {
		go func() { log.Error("pprof server", "err", http.ListenAndServe(addr, nil)) }()
	}
	st, err := openStore(ctx, c.String("store"), c.String("dynamodb-endpoint"), c.Bool("create-tables"))
	if err != nil {
		return err
	}
	svc, err := local.New(local.Config{
		Gateway: apigw.Config{
			HTTPAddr:           c.String("http-addr"),
			WSAddr:             c.String("ws-addr"),
			MaxFrameBytes:      c.Int("max-frame-bytes"),
			MaxMessageBytes:    c.Int("max-message-bytes"),
			IdleTimeout:        c.Duration("idle-timeout"),
			MaxConnectionLife:  c.Duration("max-connection-life"),
			IntegrationTimeout: c.Duration("integration-timeout"),
			MaxRequestBytes:    c.Int("max-request-bytes"),
			MaxLambdaPayload:   c.Int("max-lambda-payload"),
		},
		Deadline:     c.Duration("deadline"),
		ReclaimGrace: c.Duration("reclaim-grace"),
		Store:        st,
		TokenSecret:  []byte(c.String("token-secret")),
		Logger:       log,
	})
	if err != nil {
		return err
	}
	auth := "anyone may connect"
	if c.String("token-secret") != "" {
		auth = "agents need a token (lambda token --secret ...)"
	}
	fmt.Fprintf(os.Stderr, `lambdatunnel serve %s: the whole service on this machine, no AWS (state: %s).
  public HTTP API  %s   tunnels at %s
  WebSocket API    %s   %s
Connect an agent:  go run ./agent --port 8080 --server %s
Stop with Ctrl-C.
`, version, c.String("store"), svc.HTTPURL(), svc.PublicURL("<name>")+"/", svc.WSURL(), auth, svc.WSURL())
	return svc.Run(ctx)
}

// openStore returns the store serve keeps state in.
func openStore(ctx context.Context, kind, endpoint string, create bool) (store.Store, error) {
	switch kind {
	case "memory":
		return nil, nil // local.New makes one
	case "dynamodb":
		client, err := dynamoClient(ctx, endpoint)
		if err != nil {
			return nil, err
		}
		tables := dynamo.TablesFromEnv()
		if create {
			if err := dynamo.CreateTables(ctx, client, tables); err != nil {
				return nil, err
			}
		}
		return dynamo.New(client, tables), nil
	}
	return nil, fmt.Errorf("--store %q: choose memory or dynamodb", kind)
}

// dynamoClient returns a DynamoDB client for AWS, or for a local endpoint
// with placeholder credentials when none are configured.
func dynamoClient(ctx context.Context, endpoint string) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if endpoint == "" {
		return dynamo.NewClient(cfg), nil
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
	}
	return dynamo.NewClient(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) }), nil
}
