package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

// Forward handles a public request (HTTP API payload 2.0): it finds the
// agent that serves the subdomain, sends it the request and returns the
// agent's response, or an error page a person can read.
func (s *Service) Forward(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := s.now()
	host := ev.Headers["host"]
	if host == "" {
		host = ev.RequestContext.DomainName
	}
	sub, path, pathStyle := s.subdomainOf(host, ev.RawPath)
	log := s.log.With("requestId", ev.RequestContext.RequestID, "subdomain", sub, "method", ev.RequestContext.HTTP.Method)
	if sub == "" || ValidateSubdomain(sub) != nil {
		return s.page(http.StatusNotFound, "no_tunnel", "No tunnel is connected here: the address names no tunnel. Tunnel URLs look like "+s.publicURL("<name>")+"."), nil
	}

	body := ev.Body
	if !ev.IsBase64Encoded {
		body = protocol.EncodeBody([]byte(ev.Body))
	}
	if n := protocol.DecodedLen(body); n > s.cfg.MaxRequestBytes {
		return s.page(http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("The request body (%d bytes) is over this tunnel's limit of %d bytes.", n, s.cfg.MaxRequestBytes)), nil
	}
	head := protocol.Request{Method: ev.RequestContext.HTTP.Method, URI: path, Headers: requestHeaders(ev, host, sub, pathStyle, s.cfg.Scheme)}
	if ev.RawQueryString != "" {
		head.URI += "?" + ev.RawQueryString
	}

	ctx, cancel := context.WithDeadline(ctx, start.Add(s.cfg.Deadline))
	defer cancel()
	connID, requestID, resp := s.send(ctx, log, sub, head, body)
	if resp != nil {
		return *resp, nil
	}
	log = log.With("connectionId", connID, "tunnelRequestId", requestID)

	chunks, err := s.store.WaitResponse(ctx, connID, requestID)
	switch {
	case errors.Is(err, store.ErrGone):
		s.routes.drop(sub, connID)
		log.Info("agent went away mid-request")
		return s.page(http.StatusBadGateway, "agent_disconnected", "The tunnel's agent disconnected before it answered this request."), nil
	case errors.Is(err, context.DeadlineExceeded):
		log.Info("no answer before the deadline", "deadline", s.cfg.Deadline)
		return s.page(http.StatusGatewayTimeout, "agent_timeout",
			fmt.Sprintf("The tunnel's agent did not answer within %v.", s.cfg.Deadline)), nil
	case err != nil:
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("forward %s: wait for the response: %w", requestID, err)
	}
	r, err := protocol.JoinResponse(chunks, 0)
	if err != nil {
		log.Warn("malformed response from agent", "err", err)
		return s.page(http.StatusBadGateway, "bad_response", "The tunnel's agent sent a malformed response: "+err.Error()), nil
	}
	out, tooLarge := s.toV2(r)
	if tooLarge != "" {
		log.Warn("response over the Lambda limit", "bytes", protocol.DecodedLen(r.Body))
		return s.page(http.StatusBadGateway, "response_too_large", tooLarge), nil
	}
	log.Debug("forwarded", "status", r.StatusCode, "bytes", protocol.DecodedLen(r.Body), "ms", s.now().Sub(start).Milliseconds())
	return out, nil
}

// send routes the request to the agent serving sub and posts it in chunks.
// It returns the connection and request id, or the response to give
// instead. A route from the cache that turns out to be gone is looked up
// once more in the store: the agent may just have moved to a new socket.
func (s *Service) send(ctx context.Context, log *slog.Logger, sub string, head protocol.Request, body string) (connID, requestID string, resp *events.APIGatewayV2HTTPResponse) {
	for attempt := 0; ; attempt++ {
		cached := false
		if attempt == 0 {
			connID, cached = s.routes.get(sub)
		}
		if !cached {
			claim, err := s.store.GetSubdomain(ctx, sub)
			switch {
			case errors.Is(err, store.ErrNotFound):
				r := s.page(http.StatusNotFound, "no_tunnel", fmt.Sprintf("No tunnel is connected at %s. Start one with: agent --port 8080 --subdomain %s", s.publicURL(sub), sub))
				return "", "", &r
			case err != nil:
				r := s.internalPage(log, "look up the tunnel", err)
				return "", "", &r
			case !claim.Held():
				r := s.page(http.StatusBadGateway, "agent_offline", fmt.Sprintf("The agent of %s is not connected right now; it may be reconnecting.", s.publicURL(sub)))
				return "", "", &r
			}
			connID = claim.ConnectionID
			s.routes.put(sub, connID)
		}
		var err error
		if requestID, err = newRequestID(s.random, connID); err != nil {
			r := s.internalPage(log, "make a request id", err)
			return "", "", &r
		}
		head.RequestID = requestID
		err = s.postRequest(ctx, connID, head, body)
		if err == nil {
			return connID, requestID, nil
		}
		if !errors.Is(err, ErrGone) {
			r := s.internalPage(log, "send the request to the agent", err)
			return "", "", &r
		}
		s.routes.drop(sub, connID)
		if cached {
			continue // the route may have moved; look it up once more
		}
		s.dropStale(ctx, sub, connID)
		log.Info("agent connection is gone", "connectionId", connID)
		r := s.page(http.StatusBadGateway, "agent_gone", fmt.Sprintf("The agent of %s has disconnected.", s.publicURL(sub)))
		return "", "", &r
	}
}

// postRequest sends the request to the agent in chunks that each fit in a
// WebSocket message.
func (s *Service) postRequest(ctx context.Context, connID string, head protocol.Request, body string) error {
	chunks, err := protocol.SplitRequest(head, body, s.cfg.MaxMessageBytes)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if err := s.post(ctx, connID, c); err != nil {
			return fmt.Errorf("post chunk %d of %d: %w", c.Seq, len(chunks), err)
		}
	}
	return nil
}

// dropStale removes a connection that API Gateway says is gone and frees
// its name for the owner's reconnect, as a missed $disconnect would have.
func (s *Service) dropStale(ctx context.Context, sub, connID string) {
	if err := s.store.DeleteConnection(ctx, connID); err != nil {
		s.log.Error("delete stale connection", "connectionId", connID, "err", err)
	}
	if err := s.store.ReleaseSubdomain(ctx, sub, connID, s.now().Add(s.cfg.ReclaimGrace)); err != nil {
		s.log.Error("release stale subdomain", "connectionId", connID, "subdomain", sub, "err", err)
	}
}

func (s *Service) internalPage(log *slog.Logger, what string, err error) events.APIGatewayV2HTTPResponse {
	log.Error("forward: "+what, "err", err)
	return s.page(http.StatusBadGateway, "internal", "The tunnel service could not "+what+".")
}

// page is an error answer of the service itself: one plain sentence for a
// person, and a header naming the error for a program.
func (s *Service) page(status int, code, text string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers: map[string]string{
			"content-type":           "text/plain; charset=utf-8",
			"cache-control":          "no-store",
			"x-lambdatunnel-error":   code,
			"x-content-type-options": "nosniff",
		},
		Body: fmt.Sprintf("%d %s: %s\n", status, http.StatusText(status), text),
	}
}

// hopByHop are the headers that belong to one connection, not to the
// message, and are never forwarded (RFC 9110 section 7.6.1).
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authenticate": true, "proxy-authorization": true,
	"proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// hopHeaders returns the lower-case names of the headers not to forward:
// the hop-by-hop ones and those the Connection header names. It is built
// once per message rather than splitting Connection for every header.
func hopHeaders(connection string) map[string]bool {
	if connection == "" {
		return hopByHop
	}
	drop := maps.Clone(hopByHop)
	for _, t := range strings.Split(connection, ",") {
		drop[strings.ToLower(strings.TrimSpace(t))] = true
	}
	return drop
}

// requestHeaders rebuilds the request's headers from a payload 2.0 event:
// the Cookie header from cookies, hop-by-hop headers dropped, and the
// X-Forwarded-* headers set. API Gateway has already joined repeated
// headers with commas, which HTTP defines as the same field (RFC 9110
// section 5.3), so each value is passed on as one.
func requestHeaders(ev events.APIGatewayV2HTTPRequest, host, sub string, pathStyle bool, scheme string) protocol.Headers {
	h := make(protocol.Headers, len(ev.Headers)+4)
	drop := hopHeaders(ev.Headers["connection"])
	for k, v := range ev.Headers {
		if drop[strings.ToLower(k)] || k == "content-length" || k == "cookie" {
			continue
		}
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if len(ev.Cookies) > 0 {
		h["Cookie"] = []string{strings.Join(ev.Cookies, "; ")}
	}
	if _, ok := h["X-Forwarded-For"]; !ok && ev.RequestContext.HTTP.SourceIP != "" {
		h["X-Forwarded-For"] = []string{ev.RequestContext.HTTP.SourceIP}
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		h["X-Forwarded-Proto"] = []string{scheme}
	}
	if host != "" {
		h["X-Forwarded-Host"] = []string{host}
	}
	if pathStyle {
		h["X-Forwarded-Prefix"] = []string{"/" + sub}
	}
	return h
}

// toV2 turns the agent's response into a payload 2.0 result: Set-Cookie
// headers into cookies, repeated headers joined, hop-by-hop headers
// dropped, the body left in base64. When the result would be over Lambda's
// response limit it says so in tooLarge instead.
func (s *Service) toV2(r *protocol.Response) (out events.APIGatewayV2HTTPResponse, tooLarge string) {
	out = events.APIGatewayV2HTTPResponse{StatusCode: r.StatusCode, Headers: make(map[string]string, len(r.Headers))}
	var conn string
	for k, v := range r.Headers {
		if strings.EqualFold(k, "connection") {
			conn = strings.Join(v, ",")
		}
	}
	drop := hopHeaders(conn)
	for k, v := range r.Headers {
		switch {
		case drop[strings.ToLower(k)]:
		case strings.EqualFold(k, "set-cookie"):
			out.Cookies = append(out.Cookies, v...)
		default:
			out.Headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
	}
	if r.Body != "" {
		out.Body, out.IsBase64Encoded = r.Body, true
	}
	headOnly := out
	headOnly.Body = ""
	b, _ := json.Marshal(headOnly) // strings and numbers only: cannot fail
	if n := len(b) + len(out.Body); n > s.cfg.MaxResponsePayload {
		return out, fmt.Sprintf("The local app's response (%d bytes of body, %d bytes once encoded) is over AWS Lambda's %d byte response limit.",
			protocol.DecodedLen(r.Body), n, s.cfg.MaxResponsePayload)
	}
	return out, ""
}
