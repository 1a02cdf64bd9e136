package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// Close codes API Gateway uses.
const (
	closeNormal      = websocket.StatusNormalClosure   // 1000: DeleteConnection
	closeGoingAway   = websocket.StatusGoingAway       // 1001: idle, maximum life, shutdown
	closeUnsupported = websocket.StatusUnsupportedData // 1003: binary message
	closeAbnormal    = websocket.StatusAbnormalClosure // 1006: no close frame (reported only)
	closeTooBig      = websocket.StatusMessageTooBig   // 1009: frame or message over the limit
)

// wsConn is one WebSocket connection from the client's handshake to its
// DISCONNECT event.
type wsConn struct {
	s           *Server
	id          string
	ready       chan struct{}   // closed once the handshake is over, conn set or not
	conn        *websocket.Conn // set before ready is closed if the handshake completed
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	domainName  string
	authorizer  map[string]any // the REQUEST authorizer's output, if any
	lastActive  atomic.Int64   // unix milliseconds

	mu        sync.Mutex
	srvClosed bool // the server decided to close: srvCode/srvReason win
	srvCode   websocket.StatusCode
	srvReason string
}

// handshake is what the $connect (and authorizer) events carry from the
// client's upgrade request.
type handshake struct {
	time         time.Time
	headers      map[string]string
	multiHeaders map[string][]string
	query        map[string]string
	multiQuery   map[string][]string
}

// serveWS serves the WebSocket API and, on the same address, @connections.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if id, ok, err := connectionIDFromPath(r.URL.EscapedPath(), s.cfg.Stage); ok {
		s.serveConnections(w, r, id, err)
		return
	}
	s.serveHandshake(w, r)
}

func (s *Server) serveHandshake(w http.ResponseWriter, r *http.Request) {
	// Counted from before the hijack, when http.Server.Shutdown still waits
	// for this handler, so the count is never raised during shutdown's Wait.
	s.sessions.Add(1)
	defer s.sessions.Done()

	stage := "/" + s.cfg.Stage
	if p := r.URL.Path; p != "/" && p != stage && p != stage+"/" {
		writeGatewayError(w, http.StatusForbidden)
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		writeGatewayError(w, http.StatusUpgradeRequired)
		return
	}

	now := s.cfg.Now()
	c := &wsConn{
		s:           s,
		ready:       make(chan struct{}),
		id:          s.newID(),
		connectedAt: now,
		sourceIP:    remoteIP(r),
		userAgent:   r.UserAgent(),
		domainName:  r.Host,
	}
	c.lastActive.Store(now.UnixMilli())
	log := s.log.With("connectionId", c.id)
	h := s.newHandshake(r, c.sourceIP, now)

	if s.cfg.Authorizer {
		if status, err := s.authorize(r.Context(), c, h); err != nil {
			log.Info("websocket refused", "status", status, "err", err)
			writeGatewayError(w, status)
			return
		}
	}
	if status, err := s.connect(r.Context(), c, h); err != nil {
		log.Info("websocket refused", "status", status, "err", err)
		writeGatewayError(w, status)
		return
	}

	fw := &frameLimitWriter{
		ResponseWriter: w,
		maxFrame:       int64(s.cfg.MaxFrameBytes),
		onTrip:         func(reason string) { c.markClose(closeTooBig, reason) },
	}
	// Registered before the 101 goes out, so that the client can be posted
	// to as soon as its handshake completes; lookups wait for c.ready.
	registered := s.register(c)
	conn, err := websocket.Accept(fw, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // API Gateway does not check Origin
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		close(c.ready)
		s.unregister(c)
		// $connect succeeded, so the handlers hold state for c: end it.
		log.Warn("websocket handshake failed after $connect", "err", err)
		s.disconnect(c, closeAbnormal, "")
		return
	}
	conn.SetReadLimit(int64(s.cfg.MaxMessageBytes))
	c.conn = conn
	close(c.ready)
	if !registered {
		c.closeWith(closeGoingAway, "server shutting down")
	}
	s.runConn(c, log)
}

// connect invokes $connect. Only a 2xx statusCode completes the handshake.
func (s *Server) connect(ctx context.Context, c *wsConn, h handshake) (int, error) {
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:                         h.headers,
		MultiValueHeaders:               h.multiHeaders,
		QueryStringParameters:           h.query,
		MultiValueQueryStringParameters: h.multiQuery,
		RequestContext:                  c.requestContext("$connect", "CONNECT", h.time),
		IsBase64Encoded:                 false,
	}
	out, err := s.invoke(ctx, ev)
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("$connect: %w", err)
	}
	var res struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("decode $connect result: %w", err)
	}
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return 0, nil
	case res.StatusCode >= 300 && res.StatusCode < 600:
		return res.StatusCode, fmt.Errorf("$connect answered %d", res.StatusCode)
	default:
		return http.StatusInternalServerError, fmt.Errorf("$connect result has statusCode %d", res.StatusCode)
	}
}

// runConn serves an open socket: every text message becomes a MESSAGE event
// (invoked in its own goroutine), and the end of the socket, clean or not,
// one DISCONNECT event.
func (s *Server) runConn(c *wsConn, log *slog.Logger) {
	log.Info("websocket connected", "sourceIp", c.sourceIP, "userAgent", c.userAgent)

	idle := time.AfterFunc(s.cfg.IdleTimeout, func() { c.closeWith(closeGoingAway, "Idle timeout") })
	life := time.AfterFunc(s.cfg.MaxConnectionLife, func() {
		c.closeWith(closeGoingAway, "Maximum connection duration reached")
	})

	var readErr error
	for {
		typ, rd, err := c.conn.Reader(context.Background())
		if err != nil {
			readErr = err
			break
		}
		if typ == websocket.MessageBinary {
			// API Gateway refuses binary frames.
			if c.markClose(closeUnsupported, "Binary frames are not supported") {
				_ = c.conn.Close(closeUnsupported, "Binary frames are not supported")
			}
			break
		}
		data, err := io.ReadAll(rd)
		if err != nil {
			readErr = err
			break
		}
		idle.Reset(s.cfg.IdleTimeout)
		now := s.cfg.Now()
		c.lastActive.Store(now.UnixMilli())

		s.inflight.Add(1) // before this goroutine ends: see shutdown
		go func() {
			defer s.inflight.Done()
			s.message(c, data, now, log)
		}()
	}
	idle.Stop()
	life.Stop()
	s.unregister(c)
	_ = c.conn.CloseNow() // no-op, or waits for a close handshake under way

	code, reason := c.disconnectStatus(readErr)
	log.Info("websocket disconnected", "code", int(code), "reason", reason,
		"duration", s.cfg.Now().Sub(c.connectedAt))
	s.disconnect(c, code, reason)
}

// message invokes the MESSAGE event for one text message. The route
// selection expression is $request.body.action; only $default is
// configured, so every message takes $default.
func (s *Server) message(c *wsConn, data []byte, now time.Time, log *slog.Logger) {
	rc := c.requestContext("$default", "MESSAGE", now)
	rc.MessageID = s.newID()
	ev := events.APIGatewayWebsocketProxyRequest{
		RequestContext:  rc,
		Body:            string(data),
		IsBase64Encoded: false,
	}
	if _, err := s.invoke(context.Background(), ev); err != nil {
		// API Gateway drops the result of $default; the client sees nothing.
		log.Warn("$default failed", "err", err)
	}
}

// disconnect invokes $disconnect, once the socket is gone.
func (s *Server) disconnect(c *wsConn, code websocket.StatusCode, reason string) {
	now := s.cfg.Now()
	rc := c.requestContext("$disconnect", "DISCONNECT", now)
	rc.DisconnectStatusCode = int64(code)
	rc.DisconnectReason = &reason
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers: map[string]string{
			"Host":            c.domainName,
			"X-Forwarded-For": c.sourceIP,
		},
		MultiValueHeaders: map[string][]string{
			"Host":            {c.domainName},
			"X-Forwarded-For": {c.sourceIP},
		},
		RequestContext:  rc,
		IsBase64Encoded: false,
	}
	if _, err := s.invoke(context.Background(), ev); err != nil {
		s.log.Warn("$disconnect failed", "connectionId", c.id, "err", err)
	}
}

// requestContext is the requestContext every event of c carries.
func (c *wsConn) requestContext(routeKey, eventType string, now time.Time) events.APIGatewayWebsocketProxyRequestContext {
	reqID := c.s.newID()
	rc := events.APIGatewayWebsocketProxyRequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: reqID,
		RequestTime:       clfTime(now),
		MessageDirection:  "IN",
		Stage:             c.s.cfg.Stage,
		ConnectedAt:       c.connectedAt.UnixMilli(),
		RequestTimeEpoch:  now.UnixMilli(),
		Identity: events.APIGatewayRequestIdentity{
			SourceIP:  c.sourceIP,
			UserAgent: c.userAgent,
		},
		RequestID:    reqID,
		DomainName:   c.domainName,
		ConnectionID: c.id,
		APIID:        c.s.cfg.WebSocketAPIID,
	}
	if c.authorizer != nil { // a nil map would encode as "authorizer": null
		rc.Authorizer = c.authorizer
	}
	return rc
}

// newHandshake collects the headers and query of the upgrade request as
// WebSocket events carry them: "headers" with the last value of each,
// "multiValueHeaders" with all, and the X-Forwarded-* headers API Gateway
// adds. Header names are Go's canonical form (AWS keeps the client's case;
// handlers must match names case-insensitively either way).
func (s *Server) newHandshake(r *http.Request, sourceIP string, now time.Time) handshake {
	mh := make(map[string][]string, len(r.Header)+5)
	for k, vs := range r.Header {
		mh[k] = append([]string(nil), vs...)
	}
	mh["Host"] = []string{r.Host}
	mh["X-Forwarded-For"] = append(mh["X-Forwarded-For"], sourceIP)
	mh["X-Forwarded-Proto"] = []string{"http"}
	if _, port, err := net.SplitHostPort(s.wsLn.Addr().String()); err == nil {
		mh["X-Forwarded-Port"] = []string{port}
	}
	mh["X-Amzn-Trace-Id"] = []string{fmt.Sprintf("Root=1-%08x-%s", now.Unix(), traceSuffix(s.newID()))}
	h := handshake{time: now, headers: lastValues(mh), multiHeaders: mh}

	// ParseQuery keeps the pairs that parse even when it returns an error.
	if q, _ := url.ParseQuery(r.URL.RawQuery); len(q) > 0 {
		h.multiQuery = q
		h.query = lastValues(q)
	}
	return h
}

func lastValues(m map[string][]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, vs := range m {
		if len(vs) > 0 {
			out[k] = vs[len(vs)-1]
		}
	}
	return out
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// markClose records that the server closes c with code and reason; the
// first decision wins. It reports whether this call decided.
func (c *wsConn) markClose(code websocket.StatusCode, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srvClosed {
		return false
	}
	c.srvClosed, c.srvCode, c.srvReason = true, code, reason
	return true
}

// closeWith closes c from the server side without waiting for the close
// handshake. The read loop sees the socket end and sends DISCONNECT.
func (c *wsConn) closeWith(code websocket.StatusCode, reason string) {
	if !c.markClose(code, reason) {
		return
	}
	go func() {
		<-c.ready
		if c.conn != nil {
			_ = c.conn.Close(code, reason)
		}
	}()
}

// disconnectStatus is the disconnectStatusCode and disconnectReason: the
// server's own close if it closed, else the client's close frame, else 1006.
func (c *wsConn) disconnectStatus(readErr error) (websocket.StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srvClosed {
		return c.srvCode, c.srvReason
	}
	if errors.Is(readErr, websocket.ErrMessageTooBig) {
		return closeTooBig, "Message too big"
	}
	var ce websocket.CloseError
	if errors.As(readErr, &ce) {
		return ce.Code, ce.Reason
	}
	return closeAbnormal, ""
}

// register adds c to the open connections unless the server is shutting down.
func (s *Server) register(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.conns[c.id] = c
	return true
}

func (s *Server) unregister(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
}

// lookup returns the open connection id, or nil if there is none.
func (s *Server) lookup(ctx context.Context, id string) *wsConn {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil
	}
	if c.conn == nil {
		return nil
	}
	return c
}
