// Package apigw is API Gateway on one machine: the local stand-in that
// `lambda serve` runs instead of AWS.
//
// It serves three things and reaches the Lambda handlers only through an
// [Invoker], with the same event JSON that AWS would build:
//
//   - the public HTTP API (payload format 2.0, route "$default") on
//     Config.HTTPAddr;
//   - the WebSocket API ($connect with an optional REQUEST authorizer,
//     $default, $disconnect) on Config.WSAddr;
//   - the @connections management API on Config.WSAddr, good enough for the
//     real aws-sdk-go-v2 apigatewaymanagementapi client.
//
// It enforces the AWS limits listed in Config, answering as API Gateway does
// (for example 413 {"message":"Request Entity Too Large"}, close 1009, 410
// GoneException), so that code that passes here does not break on AWS for a
// size or a timeout.
//
// How it answers, and where AWS leaves room the choice made here:
//
//   - HTTP API: handler error, malformed result or result over 6 MB -> 500
//     {"message":"Internal Server Error"}; no result within the integration
//     timeout -> 503 {"message":"Service Unavailable"}; body over 10 MB or
//     event over 6 MB -> 413 {"message":"Request Entity Too Large"}; request
//     line + headers over 10240 bytes -> 431 {"message":"Request Header
//     Fields Too Large"} (AWS documents the quota, not the status; 431 is
//     the HTTP status for it). A result without statusCode is a 200
//     application/json response with that JSON as body, as on AWS.
//   - WebSocket handshake: missing token with the authorizer on -> 401
//     without invoking it; Deny -> 403; authorizer error -> 500; $connect
//     answering a non-2xx statusCode -> that status; $connect error, timeout
//     or result without a statusCode -> 500. No DISCONNECT follows a refused
//     handshake; a PostToConnection during $connect is Gone.
//   - Closes: frame over 32 KB ("Frame size too large") or message over
//     128 KB -> 1009; binary message -> 1003; idle ("Idle timeout"), maximum
//     life ("Maximum connection duration reached") and shutdown -> 1001;
//     DeleteConnection -> 1000. The DISCONNECT event carries the server's
//     code and reason when the server closed, the client's close frame
//     otherwise, and 1006 when there was none.
package apigw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Invoker runs a Lambda function: the event as JSON in, the result as JSON
// out (lambda.Handler's Invoke). The server calls it concurrently, each event
// in its own goroutine, and cancels ctx at the integration timeout.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Config sets up a Server. Zero values take the AWS defaults shown.
type Config struct {
	HTTPAddr string // public HTTP API; default "127.0.0.1:8000"
	WSAddr   string // WebSocket API and @connections; default "127.0.0.1:8001"
	Stage    string // WebSocket stage name in events and URLs; default "local"

	// Authorizer runs the REQUEST authorizer before $connect. Its identity
	// source is the `token` query string parameter: a handshake without it is
	// refused with 401 and the authorizer is not invoked, as on AWS.
	Authorizer bool

	MaxFrameBytes      int           // client WebSocket frame; default 32 KiB
	MaxMessageBytes    int           // WebSocket message and PostToConnection data; default 128 KiB
	IdleTimeout        time.Duration // no message from the client; default 10 min
	MaxConnectionLife  time.Duration // default 2 h
	IntegrationTimeout time.Duration // default 30 s
	MaxRequestBytes    int           // HTTP API payload; default 10 MB
	MaxHeaderBytes     int           // HTTP API request line + headers; default 10240
	MaxLambdaPayload   int           // Lambda event and result; default 6 MB (6291456)

	Region         string // in ARNs; default "us-east-1"
	AccountID      string // default "123456789012"
	HTTPAPIID      string // apiId of the HTTP API; default "httpapiloc"
	WebSocketAPIID string // apiId of the WebSocket API; default "wsapilocal"

	Logger *slog.Logger     // default: discard
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // ids; default crypto/rand
}

func (c Config) withDefaults() Config {
	setString := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
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
	setString(&c.HTTPAddr, "127.0.0.1:8000")
	setString(&c.WSAddr, "127.0.0.1:8001")
	setString(&c.Stage, "local")
	setInt(&c.MaxFrameBytes, 32<<10)
	setInt(&c.MaxMessageBytes, 128<<10)
	setDur(&c.IdleTimeout, 10*time.Minute)
	setDur(&c.MaxConnectionLife, 2*time.Hour)
	setDur(&c.IntegrationTimeout, 30*time.Second)
	setInt(&c.MaxRequestBytes, 10<<20)
	setInt(&c.MaxHeaderBytes, 10240)
	setInt(&c.MaxLambdaPayload, 6<<20)
	setString(&c.Region, "us-east-1")
	setString(&c.AccountID, "123456789012")
	setString(&c.HTTPAPIID, "httpapiloc")
	setString(&c.WebSocketAPIID, "wsapilocal")
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// Server is the local API Gateway. Create it with New, bind with Listen and
// serve with Run.
type Server struct {
	cfg Config
	fn  Invoker
	log *slog.Logger

	httpLn, wsLn net.Listener
	httpSrv      *http.Server
	wsSrv        *http.Server

	randMu sync.Mutex // cfg.Rand need not be safe for concurrent use

	mu           sync.Mutex
	conns        map[string]*wsConn // open sockets by connection id
	shuttingDown bool

	sessions sync.WaitGroup // socket goroutines, each ends with its DISCONNECT
	inflight sync.WaitGroup // Invoker calls
}

// New returns a Server that invokes fn for every event.
func New(cfg Config, fn Invoker) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:   cfg,
		fn:    fn,
		log:   cfg.Logger,
		conns: make(map[string]*wsConn),
	}
	s.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTPAPI),
		ReadHeaderTimeout: 30 * time.Second,
		// net/http adds 4096 bytes of slack to this; the exact AWS limit is
		// checked in serveHTTPAPI, this only bounds what is read at all.
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	s.wsSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serveWS),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s
}

// Listen binds both listeners, so that the URLs are known before Run.
func (s *Server) Listen() error {
	if s.httpLn != nil {
		return errors.New("apigw: already listening")
	}
	hl, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http api: %w", err)
	}
	wl, err := net.Listen("tcp", s.cfg.WSAddr)
	if err != nil {
		hl.Close()
		return fmt.Errorf("listen websocket api: %w", err)
	}
	s.httpLn, s.wsLn = hl, wl
	return nil
}

// Run serves until ctx ends, then shuts down: it stops accepting, closes
// every socket with 1001 (going away), waits for the DISCONNECT events and
// for in-flight invocations (each bounded by the integration timeout), and
// returns. It calls Listen if that has not been done.
func (s *Server) Run(ctx context.Context) error {
	if s.httpLn == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.log.Info("api gateway listening", "http", s.HTTPURL(), "websocket", s.WSURL(),
		"management", s.ManagementEndpoint())

	errc := make(chan error, 2)
	serve := func(srv *http.Server, ln net.Listener) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}
	go serve(s.httpSrv, s.httpLn)
	go serve(s.wsSrv, s.wsLn)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc: // a listener failed: shut down the rest
	}
	s.shutdown()
	return runErr
}

func (s *Server) shutdown() {
	s.mu.Lock()
	s.shuttingDown = true
	open := make([]*wsConn, 0, len(s.conns))
	for _, c := range s.conns {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.closeWith(closeGoingAway, "server shutting down")
	}

	grace := s.cfg.IntegrationTimeout + 5*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("http api shutdown", "err", err)
	}
	if err := s.wsSrv.Shutdown(ctx); err != nil {
		s.log.Warn("websocket api shutdown", "err", err)
	}
	if !waitTimeout(&s.sessions, grace) {
		s.log.Warn("sockets still open after shutdown grace")
	}
	if !waitTimeout(&s.inflight, grace) {
		s.log.Warn("invocations still running after shutdown grace")
	}
	s.log.Info("api gateway stopped")
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// HTTPURL is the base URL of the public HTTP API, e.g. "http://127.0.0.1:8000".
func (s *Server) HTTPURL() string { return "http://" + addrOf(s.httpLn, s.cfg.HTTPAddr) }

// WSURL is the URL WebSocket clients dial, e.g. "ws://127.0.0.1:8001/local".
func (s *Server) WSURL() string {
	return "ws://" + addrOf(s.wsLn, s.cfg.WSAddr) + "/" + s.cfg.Stage
}

// ManagementEndpoint is the @connections endpoint to use as the SDK client's
// BaseEndpoint, e.g. "http://127.0.0.1:8001/local" (on AWS:
// https://{api-id}.execute-api.{region}.amazonaws.com/{stage}).
func (s *Server) ManagementEndpoint() string {
	return "http://" + addrOf(s.wsLn, s.cfg.WSAddr) + "/" + s.cfg.Stage
}

func addrOf(ln net.Listener, fallback string) string {
	if ln == nil {
		return fallback
	}
	return ln.Addr().String()
}

// newID returns an API Gateway-style id: 11 random bytes in standard base64,
// 16 characters ending in "=", like "L0SM9cOFvHcCIhw=".
func (s *Server) newID() string {
	var b [11]byte
	s.randMu.Lock()
	_, err := io.ReadFull(s.cfg.Rand, b[:])
	s.randMu.Unlock()
	if err != nil {
		// Only an injected reader can fail; fall back to the system source.
		_, _ = rand.Read(b[:])
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// clfTime formats t as API Gateway's requestTime: "21/Apr/2020:15:08:21 +0000".
func clfTime(t time.Time) string { return t.UTC().Format("02/Jan/2006:15:04:05 -0700") }
