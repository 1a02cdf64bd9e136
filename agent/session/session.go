// Package session keeps the agent's tunnel up: it dials the service's
// WebSocket API, claims a subdomain with hello, serves the requests that
// arrive, pings, reconnects with backoff when the socket is lost, and
// replaces the socket before API Gateway's maximum connection life ends
// (make-before-break), so that the public URL never changes and no request
// is lost.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdatunnel/lambdatunnel/agent/backoff"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// Handler answers one whole public request (chunk 0 carrying the complete
// base64 body) with one whole response. It must return a response, never
// nil, and is called concurrently.
type Handler interface {
	Serve(ctx context.Context, req *protocol.Request) *protocol.Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *protocol.Request) *protocol.Response

// Serve calls f.
func (f HandlerFunc) Serve(ctx context.Context, req *protocol.Request) *protocol.Response {
	return f(ctx, req)
}

// Events hears what a person at the console should know. Calls come from
// the manager's goroutine, one at a time.
type Events interface {
	// Connecting: the first dial is under way.
	Connecting(server string)
	// Ready: the first socket is live; r.URL is the public URL.
	Ready(r *protocol.Ready)
	// Lost: the socket ended; the manager dials again after retryIn.
	Lost(reason string, retryIn time.Duration)
	// RetryFailed: a reconnect attempt failed; the next is after retryIn.
	RetryFailed(err error, retryIn time.Duration)
	// Reconnected: a new socket is live after a loss.
	Reconnected(r *protocol.Ready, sameURL bool)
	// Rotated: a new socket replaced an old one ahead of the maximum
	// connection life; the old one drains.
	Rotated(r *protocol.Ready, sameURL bool)
	// Stopping: shutdown began with inFlight requests still running.
	Stopping(inFlight int)
}

// Config sets up a Manager. Zero values take the defaults shown.
type Config struct {
	// Server is the WebSocket API URL, e.g. ws://127.0.0.1:8001 or
	// wss://abc.execute-api.eu-west-1.amazonaws.com/prod.
	Server string
	// Token is sent as the token query parameter when set.
	Token string
	// Subdomain is the name to ask for; empty for a random one.
	Subdomain string
	// ReclaimKey goes with Subdomain in the first hello: the key a ready
	// gave for that name earlier (kept across runs), which takes the name
	// back even while the service still reserves it.
	ReclaimKey string
	// Fallback, when set, makes the first hello fall back to a random
	// name when the service refuses Subdomain (in use, or no longer
	// valid): the manager calls it with the refusal and asks again at
	// once without a name. When nil the refusal ends Run.
	Fallback func(refused *ServiceError)
	// Version is sent in hello and the User-Agent of the handshake.
	Version string

	Handler Handler
	Events  Events       // default: none
	Logger  *slog.Logger // default: discard

	// MaxInFlight bounds the requests being served at once, over all
	// sockets; more get an immediate 503. Default 256.
	MaxInFlight int
	// MaxRequestBytes bounds a reassembled request body; default 10 MiB
	// (API Gateway's HTTP API payload limit). Larger ones get 413.
	MaxRequestBytes int
	// MaxMessageBytes and MaxFrameBytes are API Gateway's WebSocket limits
	// for what the agent writes; defaults 128 KiB and 32 KiB.
	MaxMessageBytes int
	MaxFrameBytes   int
	// PingInterval is how often the agent pings (default 1 min; API
	// Gateway closes sockets idle for 10 min); PongTimeout is how long it
	// waits for the pong before it gives the socket up (default 20 s).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// HelloTimeout bounds dialling and waiting for ready; default 15 s.
	HelloTimeout time.Duration
	// MaxConnectionLife is API Gateway's limit (default 2 h); the manager
	// rotates to a new socket at RotateAfter of it.
	MaxConnectionLife time.Duration
	// Drain is how long a rotated-out socket keeps serving requests that
	// still arrive on it (default and minimum 3 s: the forward function
	// caches routes for 2 s); it stays open longer while requests on it
	// are in flight, up to MaxDrain (default 1 min).
	Drain    time.Duration
	MaxDrain time.Duration
	// ShutdownGrace is how long in-flight requests may finish after the
	// context of Run ends; default 5 s.
	ShutdownGrace time.Duration
	// Backoff spaces out reconnects; zero value: 1 s doubling to 30 s.
	Backoff backoff.Backoff
	// HTTPClient dials; default http.DefaultClient.
	HTTPClient *http.Client
}

// Defaults of Config.
const (
	DefaultMaxInFlight       = 256
	DefaultMaxRequestBytes   = 10 << 20
	DefaultPingInterval      = time.Minute
	DefaultPongTimeout       = 20 * time.Second
	DefaultHelloTimeout      = 15 * time.Second
	DefaultMaxConnectionLife = 2 * time.Hour
	DefaultDrain             = 3 * time.Second
	DefaultMaxDrain          = time.Minute
	DefaultShutdownGrace     = 5 * time.Second
	// quiet is how long a draining socket must have been silent (no
	// request in, no response out) before it closes: the service stores a
	// response chunk a moment after it arrives, and a close too soon after
	// could overtake it.
	quiet = 500 * time.Millisecond
)

func (c Config) withDefaults() (Config, error) {
	if c.Server == "" {
		return c, errors.New("no server URL")
	}
	if c.Handler == nil {
		return c, errors.New("no handler")
	}
	if c.Events == nil {
		c.Events = noEvents{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	setInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	setInt(&c.MaxInFlight, DefaultMaxInFlight)
	setInt(&c.MaxRequestBytes, DefaultMaxRequestBytes)
	setInt(&c.MaxMessageBytes, protocol.MaxMessageBytes)
	setInt(&c.MaxFrameBytes, protocol.MaxFrameBytes)
	setDur(&c.PingInterval, DefaultPingInterval)
	setDur(&c.PongTimeout, DefaultPongTimeout)
	setDur(&c.HelloTimeout, DefaultHelloTimeout)
	setDur(&c.MaxConnectionLife, DefaultMaxConnectionLife)
	setDur(&c.Drain, DefaultDrain)
	setDur(&c.MaxDrain, DefaultMaxDrain)
	setDur(&c.ShutdownGrace, DefaultShutdownGrace)
	c.Drain = max(c.Drain, DefaultDrain)
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	return c, nil
}

// RotateAfter is when, in a socket's life, the manager opens its
// replacement: five minutes before the limit, or at 80% of a short one,
// and early enough that the old socket's drain ends before the limit.
func RotateAfter(life, drain time.Duration) time.Duration {
	at := max(life-5*time.Minute, life*8/10)
	if room := life - drain - 2*time.Second; at > room {
		at = room
	}
	return max(at, life/2)
}

// Manager keeps one tunnel up across sockets.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	backoff backoff.Backoff

	slots    chan struct{} // one per request being served
	stopping atomic.Bool   // shutdown began: new requests get 503

	// Set from each ready: what the next hello asks for.
	subdomain, reclaimKey, url string

	mu      sync.Mutex
	sockets map[*socket]bool // live sockets: the current one and draining ones
}

// New returns a Manager for cfg.
func New(cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Manager{
		cfg:        cfg,
		log:        cfg.Logger,
		backoff:    cfg.Backoff,
		slots:      make(chan struct{}, cfg.MaxInFlight),
		subdomain:  cfg.Subdomain,
		reclaimKey: cfg.ReclaimKey,
		sockets:    make(map[*socket]bool),
	}, nil
}

// Run keeps the tunnel up until ctx ends, then stops taking requests, lets
// the ones in flight finish for ShutdownGrace, closes its sockets with 1000
// and returns nil. It returns an error when the first connection fails
// (the service is unreachable, refuses the token, or refuses the
// subdomain and Config.Fallback is nil) or a reconnect meets an error no
// retry can fix.
func (m *Manager) Run(ctx context.Context) error {
	// Handlers run on work, which outlives ctx by the shutdown grace.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()

	m.cfg.Events.Connecting(m.cfg.Server)
	cur, err := m.open(ctx)
	var se *ServiceError
	if err != nil && m.cfg.Fallback != nil && m.subdomain != "" && errors.As(err, &se) &&
		(se.Code == protocol.CodeSubdomainInUse || se.Code == protocol.CodeSubdomainDenied) {
		m.cfg.Fallback(se)
		m.subdomain, m.reclaimKey = "", ""
		cur, err = m.open(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	m.url = cur.ready.URL
	m.cfg.Events.Ready(cur.ready)
	m.start(work, cur)

	life := m.cfg.MaxConnectionLife
	rotateAt := cur.opened.Add(RotateAfter(life, m.cfg.Drain))
	for {
		rotate := time.NewTimer(time.Until(rotateAt))
		select {
		case <-ctx.Done():
			rotate.Stop()
			m.shutdown(stopWork)
			return nil

		case <-cur.dead:
			rotate.Stop()
			if time.Since(cur.opened) >= min(30*time.Second, life/2) {
				m.backoff.Reset() // that one was healthy: start over
			}
			next, err := m.reconnect(ctx, cur.lossReason())
			if err != nil {
				m.shutdown(stopWork)
				return err
			}
			if next == nil { // ctx ended
				m.shutdown(stopWork)
				return nil
			}
			cur = next
			m.start(work, cur)
			rotateAt = cur.opened.Add(RotateAfter(life, m.cfg.Drain))

		case <-rotate.C:
			next, err := m.open(ctx)
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				retry := m.backoff.Next()
				m.log.Warn("could not open a replacement socket ahead of the connection-life limit; the current one keeps serving",
					"err", err, "retryIn", retry)
				rotateAt = time.Now().Add(retry)
				continue
			}
			m.backoff.Reset()
			same := next.ready.URL == m.url
			m.url = next.ready.URL
			m.cfg.Events.Rotated(next.ready, same)
			m.log.Debug("rotated", "from", cur.ready.ConnectionID, "to", next.ready.ConnectionID)
			m.start(work, next)
			go m.drain(cur)
			cur = next
			rotateAt = cur.opened.Add(RotateAfter(life, m.cfg.Drain))
		}
	}
}

// reconnect dials until a socket is ready, backing off between attempts.
// It returns nil, nil when ctx ends first, and an error when retrying
// cannot help.
func (m *Manager) reconnect(ctx context.Context, reason string) (*socket, error) {
	delay := m.backoff.Next()
	m.cfg.Events.Lost(reason, delay)
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		s, err := m.open(ctx)
		if err == nil {
			same := s.ready.URL == m.url
			m.url = s.ready.URL
			m.cfg.Events.Reconnected(s.ready, same)
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		var se *ServiceError
		var refused *RefusedError
		if errors.As(err, &se) && se.Code == protocol.CodeSubdomainDenied || errors.As(err, &refused) {
			return nil, err
		}
		delay = m.backoff.Next()
		m.cfg.Events.RetryFailed(err, delay)
	}
}

// start runs a ready socket's goroutines and tracks it.
func (m *Manager) start(work context.Context, s *socket) {
	m.mu.Lock()
	m.sockets[s] = true
	m.mu.Unlock()
	go s.readLoop(work)
	go s.writeLoop()
	go s.pingLoop(m.cfg.PingInterval, m.cfg.PongTimeout)
	go func() {
		<-s.dead
		m.mu.Lock()
		delete(m.sockets, s)
		m.mu.Unlock()
	}()
}

// drain keeps a replaced socket serving for the drain period and until
// the requests on it are answered, then closes it with 1000.
func (m *Manager) drain(s *socket) {
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		elapsed := time.Since(start)
		if elapsed >= m.cfg.MaxDrain {
			m.log.Warn("closing a replaced socket with requests still in flight", "connectionId", s.ready.ConnectionID, "inFlight", s.busy.Load())
			break
		}
		if elapsed >= m.cfg.Drain && s.busy.Load() == 0 && s.quietFor() >= quiet {
			break
		}
		select {
		case <-s.dead:
			return
		case <-tick.C:
		}
	}
	s.close("replaced by a new connection")
}

// shutdown stops taking requests, waits up to ShutdownGrace for those in
// flight, cancels the rest and closes every socket with 1000.
func (m *Manager) shutdown(stopWork context.CancelFunc) {
	m.stopping.Store(true)
	if n := m.inFlight(); n > 0 {
		m.cfg.Events.Stopping(n)
		deadline := time.Now().Add(m.cfg.ShutdownGrace)
		for m.inFlight() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopWork()
	m.mu.Lock()
	live := make([]*socket, 0, len(m.sockets))
	for s := range m.sockets {
		live = append(live, s)
	}
	m.mu.Unlock()
	for _, s := range live {
		s.close("agent shutting down")
	}
	for _, s := range live {
		select {
		case <-s.dead:
		case <-time.After(5 * time.Second):
			s.conn.CloseNow()
		}
	}
}

// inFlight counts the requests received on live sockets and not yet
// answered.
func (m *Manager) inFlight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for s := range m.sockets {
		n += int(s.busy.Load())
	}
	return n
}

// ServiceError is an error message from the service in answer to hello.
type ServiceError struct {
	Code    protocol.ErrorCode
	Message string
}

func (e *ServiceError) Error() string { return e.Message }

type noEvents struct{}

func (noEvents) Connecting(string)                 {}
func (noEvents) Ready(*protocol.Ready)             {}
func (noEvents) Lost(string, time.Duration)        {}
func (noEvents) RetryFailed(error, time.Duration)  {}
func (noEvents) Reconnected(*protocol.Ready, bool) {}
func (noEvents) Rotated(*protocol.Ready, bool)     {}
func (noEvents) Stopping(int)                      {}

var errNoReady = errors.New("the service did not answer hello")

func describeTimeout(d time.Duration) error {
	return fmt.Errorf("%w within %v", errNoReady, d)
}
