// Package tunnel holds the five handlers of the service (connect,
// disconnect, response, forward, authorizer) as plain Go over small
// interfaces. It knows API Gateway's event shapes but nothing of HTTP
// servers or WebSockets: the dispatcher feeds it events on AWS, and the
// local emulator feeds it the same events in serve mode.
package tunnel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

// ErrGone is wrapped by a Poster's error when the connection no longer
// exists (API Gateway's GoneException).
var ErrGone = errors.New("connection is gone")

// Poster sends data to an agent's socket (API Gateway's PostToConnection).
type Poster interface {
	PostToConnection(ctx context.Context, connectionID string, data []byte) error
}

// Verifier checks an agent's token and returns its subject (the owner).
type Verifier interface {
	Verify(token string) (subject string, err error)
}

// AWS limits the handlers respect.
const (
	// MaxLambdaPayload is Lambda's synchronous request and response limit.
	MaxLambdaPayload = 6 * 1024 * 1024
	// MaxConnectionLife is API Gateway's maximum WebSocket connection life.
	MaxConnectionLife = 2 * time.Hour
	// MaxDeadline keeps forward's answer under API Gateway's 30 s
	// integration timeout.
	MaxDeadline = 29 * time.Second
)

// Config holds the settings of the handlers. The zero value of each field
// means its default.
type Config struct {
	// Domain is the wildcard domain of public URLs (https://<sub>.<Domain>).
	// A port may follow it in local mode. Empty: path-style URLs.
	Domain string
	// Scheme of public URLs; default "https".
	Scheme string
	// PublicURL is the base of path-style URLs (https://<host>/<sub>/),
	// used when Domain is empty.
	PublicURL string
	// Deadline is how long forward waits for the agent; default 28 s, at
	// most MaxDeadline.
	Deadline time.Duration
	// MaxMessageBytes bounds each message posted to an agent; default
	// protocol.MaxMessageBytes.
	MaxMessageBytes int
	// MaxRequestBytes bounds a public request body; default 6 MB, since no
	// larger event reaches a Lambda function.
	MaxRequestBytes int
	// MaxResponsePayload bounds forward's result; default MaxLambdaPayload.
	MaxResponsePayload int
	// ReclaimGrace is how long a name stays reserved for its owner after
	// its connection ends; default 10 minutes.
	ReclaimGrace time.Duration
	// ResponseTTL is how long response chunks are kept; default 5 minutes.
	ResponseTTL time.Duration
	// RouteCacheTTL is how long forward remembers which connection serves a
	// subdomain; default 2 s. A GoneException drops the entry at once.
	RouteCacheTTL time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Scheme == "" {
		c.Scheme = "https"
	}
	if c.Deadline == 0 {
		c.Deadline = 28 * time.Second
	}
	if c.Deadline < 0 || c.Deadline > MaxDeadline {
		return c, fmt.Errorf("response deadline %v must be between 0 and %v, under API Gateway's 30 s timeout", c.Deadline, MaxDeadline)
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = protocol.MaxMessageBytes
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = MaxLambdaPayload
	}
	if c.MaxResponsePayload == 0 {
		c.MaxResponsePayload = MaxLambdaPayload
	}
	if c.ReclaimGrace == 0 {
		c.ReclaimGrace = 10 * time.Minute
	}
	if c.ResponseTTL == 0 {
		c.ResponseTTL = 5 * time.Minute
	}
	if c.RouteCacheTTL == 0 {
		c.RouteCacheTTL = 2 * time.Second
	}
	if c.Domain == "" && c.PublicURL == "" {
		return c, errors.New("neither a domain nor a public URL is configured: public URLs cannot be made")
	}
	return c, nil
}

// Service runs the handlers.
type Service struct {
	cfg      Config
	store    store.Store
	poster   Poster
	verifier Verifier
	now      func() time.Time
	random   io.Reader
	log      *slog.Logger
	routes   *routeCache
}

// Option sets an optional collaborator of a Service.
type Option func(*Service)

// WithClock sets the time source (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRandom sets the source of ids, keys and random names (default
// crypto/rand).
func WithRandom(r io.Reader) Option { return func(s *Service) { s.random = r } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithVerifier sets the token verifier of the authorizer. Without one the
// authorizer denies every connection and says that it is not configured.
func WithVerifier(v Verifier) Option { return func(s *Service) { s.verifier = v } }

// New returns a Service over a store and a poster.
func New(cfg Config, st store.Store, poster Poster, opts ...Option) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:    cfg,
		store:  st,
		poster: poster,
		now:    time.Now,
		random: rand.Reader,
		log:    slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(s)
	}
	s.routes = newRouteCache(cfg.RouteCacheTTL, s.now)
	return s, nil
}

// post encodes m and sends it to a connection.
func (s *Service) post(ctx context.Context, connectionID string, m protocol.Message) error {
	b, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	return s.poster.PostToConnection(ctx, connectionID, b)
}
