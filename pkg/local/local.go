// Package local assembles the whole service on one machine: the API
// Gateway emulator, the dispatcher with the five handlers, the real
// @connections client pointed at the emulator, and a store. It is what
// `lambda serve` runs and what the end-to-end tests start.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lambdatunnel/lambdatunnel/pkg/apigw"
	"github.com/lambdatunnel/lambdatunnel/pkg/auth"
	"github.com/lambdatunnel/lambdatunnel/pkg/connections"
	"github.com/lambdatunnel/lambdatunnel/pkg/dispatch"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/memory"
	"github.com/lambdatunnel/lambdatunnel/pkg/tunnel"
)

// Config sets up a local service. Zero values take the defaults of
// apigw.Config and tunnel.Config (AWS's limits).
type Config struct {
	Gateway apigw.Config
	// Deadline is how long forward waits for an agent (tunnel.Config).
	Deadline time.Duration
	// ReclaimGrace is how long a name stays reserved after its agent leaves.
	ReclaimGrace time.Duration
	// Store holds the state; nil means a new in-memory store.
	Store store.Store
	// TokenSecret turns on the authorizer: agents then need a token minted
	// with this secret. Empty: anyone may connect (the local default).
	TokenSecret []byte
	Logger      *slog.Logger
}

// Service is the local service.
type Service struct {
	gw  *apigw.Server
	log *slog.Logger
}

// New binds the listeners and wires the handlers; Run serves.
func New(cfg Config) (*Service, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := cfg.Store
	if st == nil {
		st = memory.New(nil)
	}
	var opts []tunnel.Option
	if len(cfg.TokenSecret) > 0 {
		tokens, err := auth.New(cfg.TokenSecret, nil)
		if err != nil {
			return nil, err
		}
		opts = append(opts, tunnel.WithVerifier(tokens))
		cfg.Gateway.Authorizer = true
	}
	gcfg := cfg.Gateway
	gcfg.Logger = log.With("component", "apigw")

	// The handlers need the emulator's addresses and the emulator needs the
	// handlers: bind first, then wire.
	var d lateInvoker
	gw := apigw.New(gcfg, &d)
	if err := gw.Listen(); err != nil {
		return nil, err
	}
	port := portOf(gw.HTTPURL())
	poster, err := connections.New(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}, gw.ManagementEndpoint())
	if err != nil {
		return nil, err
	}
	svc, err := tunnel.New(tunnel.Config{
		Domain:       "localhost:" + port,
		Scheme:       "http",
		Deadline:     cfg.Deadline,
		ReclaimGrace: cfg.ReclaimGrace,
		// The emulator enforces the same limits as AWS; keep them in step
		// when a test shortens them.
		MaxMessageBytes:    gcfg.MaxMessageBytes,
		MaxResponsePayload: gcfg.MaxLambdaPayload,
	}, st, poster, append(opts, tunnel.WithLogger(log.With("component", "tunnel")))...)
	if err != nil {
		return nil, err
	}
	d.d = dispatch.New(svc, "")
	return &Service{gw: gw, log: log}, nil
}

// lateInvoker lets the emulator be built before the dispatcher it calls.
type lateInvoker struct{ d *dispatch.Dispatcher }

func (l *lateInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if l.d == nil {
		return nil, errors.New("handlers are not wired yet")
	}
	return l.d.Invoke(ctx, payload)
}

func portOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("apigw gave a bad URL %q: %v", rawURL, err)) // a bug, not an input
	}
	return u.Port()
}

// Run serves until ctx ends, then shuts down cleanly.
func (s *Service) Run(ctx context.Context) error { return s.gw.Run(ctx) }

// HTTPURL is the public HTTP API, e.g. http://127.0.0.1:8000.
func (s *Service) HTTPURL() string { return s.gw.HTTPURL() }

// WSURL is what agents connect to (their --server).
func (s *Service) WSURL() string { return s.gw.WSURL() }

// PublicURL is the URL of a tunnel named sub.
func (s *Service) PublicURL(sub string) string {
	return "http://" + sub + ".localhost:" + portOf(s.gw.HTTPURL())
}
