package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

// Connect handles $connect: it records the connection, with the owner the
// authorizer vouched for. API Gateway cannot deliver data to the socket
// yet; the agent's hello comes next.
func (s *Service) Connect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := ev.RequestContext.ConnectionID
	if id == "" {
		return events.APIGatewayProxyResponse{}, errors.New("connect: event has no requestContext.connectionId")
	}
	now := s.now()
	c := store.Connection{ID: id, Owner: ownerOf(ev.RequestContext.Authorizer), CreatedAt: now, ExpiresAt: now.Add(MaxConnectionLife)}
	if err := s.store.PutConnection(ctx, c); err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("connect %s: %w", id, err)
	}
	s.log.Info("agent connected", "connectionId", id, "owner", c.Owner, "sourceIp", ev.RequestContext.Identity.SourceIP)
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

// ownerOf reads the token subject from the authorizer's output in a
// $connect event: the "owner" context value, else the principal id.
func ownerOf(authorizer any) string {
	m, ok := authorizer.(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range []string{"owner", "principalId"} {
		if v, ok := m[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// normalClosure is the WebSocket close status of a socket the client closed
// on purpose.
const normalClosure = 1000

// Disconnect handles $disconnect: it deletes the connection, which makes
// forward answer its in-flight requests with 502 at once, and releases its
// subdomain if this connection still holds it.
func (s *Service) Disconnect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := ev.RequestContext.ConnectionID
	c, err := s.store.GetConnection(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("disconnect %s: %w", id, err)
	}
	if err := s.store.DeleteConnection(ctx, id); err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("disconnect %s: %w", id, err)
	}
	if c.Subdomain != "" {
		// A socket that ends without the agent saying goodbye keeps its name
		// reserved for the grace period, for the agent's reconnect. A normal
		// closure (1000) is the agent stopping: the name is free at once.
		until := s.now().Add(s.cfg.ReclaimGrace)
		if ev.RequestContext.DisconnectStatusCode == normalClosure {
			until = s.now()
		}
		if err := s.store.ReleaseSubdomain(ctx, c.Subdomain, id, until); err != nil {
			return events.APIGatewayProxyResponse{}, fmt.Errorf("disconnect %s: release %q: %w", id, c.Subdomain, err)
		}
		s.routes.drop(c.Subdomain, id)
	}
	var reason string
	if r := ev.RequestContext.DisconnectReason; r != nil {
		reason = *r
	}
	s.log.Info("agent disconnected", "connectionId", id, "subdomain", c.Subdomain,
		"status", ev.RequestContext.DisconnectStatusCode, "reason", reason)
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

// Message handles the $default route: every message an agent sends. A bad
// message is answered with an error message and logged; it never fails the
// invocation, so API Gateway has nothing to retry.
func (s *Service) Message(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := ev.RequestContext.ConnectionID
	m, err := protocol.Decode([]byte(ev.Body))
	if err != nil {
		s.log.Warn("bad message from agent", "connectionId", id, "err", err)
		return s.reply(ctx, id, &protocol.Error{Code: protocol.CodeBadMessage, Message: err.Error()}), nil
	}
	switch m := m.(type) {
	case *protocol.Hello:
		return s.reply(ctx, id, s.hello(ctx, id, m)), nil
	case *protocol.Response:
		if err := s.storeChunk(ctx, id, m); err != nil {
			return s.reply(ctx, id, err), nil
		}
		return ok(), nil
	case *protocol.Ping:
		return s.reply(ctx, id, &protocol.Pong{}), nil
	default:
		err := &protocol.Error{Code: protocol.CodeBadMessage, Message: fmt.Sprintf("agents may not send %q messages", m.MessageType())}
		s.log.Warn("unexpected message from agent", "connectionId", id, "type", m.MessageType())
		return s.reply(ctx, id, err), nil
	}
}

func ok() events.APIGatewayProxyResponse { return events.APIGatewayProxyResponse{StatusCode: 200} }

// reply posts m to the connection; a failure is logged, since the agent
// that sent the message is the only one who could be told.
func (s *Service) reply(ctx context.Context, connectionID string, m protocol.Message) events.APIGatewayProxyResponse {
	if err := s.post(ctx, connectionID, m); err != nil {
		level := slog.LevelError
		if errors.Is(err, ErrGone) {
			level = slog.LevelInfo
		}
		s.log.Log(ctx, level, "reply to agent", "connectionId", connectionID, "type", m.MessageType(), "err", err)
		return events.APIGatewayProxyResponse{StatusCode: 500}
	}
	return ok()
}

// hello claims a subdomain for the connection and returns ready, or the
// error to send back.
func (s *Service) hello(ctx context.Context, connectionID string, h *protocol.Hello) protocol.Message {
	conn, err := s.store.GetConnection(ctx, connectionID)
	if err != nil {
		s.log.Error("hello from an unrecorded connection", "connectionId", connectionID, "err", err)
		return &protocol.Error{Code: protocol.CodeInternal, Message: "this connection is not recorded; reconnect"}
	}
	name := strings.ToLower(h.Subdomain)
	if name != "" {
		if err := ValidateSubdomain(name); err != nil {
			return &protocol.Error{Code: protocol.CodeSubdomainDenied, Message: err.Error()}
		}
	}
	key := h.ReclaimKey
	if key == "" || name == "" {
		if key, err = randomHex(s.random, 24); err != nil {
			return s.internal(connectionID, "reclaim key", err)
		}
	}
	claim := store.Claim{
		ConnectionID: connectionID,
		Owner:        conn.Owner,
		KeyHash:      store.HashKey(key),
		ExpiresAt:    conn.ExpiresAt.Add(s.cfg.ReclaimGrace),
	}
	if name != "" {
		claim.Subdomain = name
		err = s.store.ClaimSubdomain(ctx, claim)
	} else {
		err = s.claimRandom(ctx, &claim)
	}
	if errors.Is(err, store.ErrTaken) {
		return &protocol.Error{Code: protocol.CodeSubdomainInUse, Message: fmt.Sprintf("subdomain %q is in use", name)}
	}
	if err != nil {
		return s.internal(connectionID, "claim subdomain", err)
	}
	if err := s.store.SetConnectionSubdomain(ctx, connectionID, claim.Subdomain); err != nil {
		return s.internal(connectionID, "record subdomain", err)
	}
	if conn.Subdomain != "" && conn.Subdomain != claim.Subdomain {
		if err := s.store.ReleaseSubdomain(ctx, conn.Subdomain, connectionID, s.now().Add(s.cfg.ReclaimGrace)); err != nil {
			s.log.Error("release previous subdomain", "connectionId", connectionID, "subdomain", conn.Subdomain, "err", err)
		}
	}
	s.routes.put(claim.Subdomain, connectionID)
	url := s.publicURL(claim.Subdomain)
	s.log.Info("tunnel ready", "connectionId", connectionID, "subdomain", claim.Subdomain, "url", url,
		"reclaimed", h.ReclaimKey != "" && name != "", "agentVersion", h.Version)
	return &protocol.Ready{URL: url, Subdomain: claim.Subdomain, ReclaimKey: key, ConnectionID: connectionID}
}

// claimRandom claims a fresh random name, trying again on the rare
// collision.
func (s *Service) claimRandom(ctx context.Context, c *store.Claim) error {
	for range 5 {
		name, err := randomName(s.random)
		if err != nil {
			return err
		}
		if reserved[name] {
			continue
		}
		c.Subdomain = name
		err = s.store.ClaimSubdomain(ctx, *c)
		if !errors.Is(err, store.ErrTaken) {
			return err
		}
	}
	return errors.New("no free random subdomain after 5 tries")
}

func (s *Service) internal(connectionID, what string, err error) *protocol.Error {
	s.log.Error(what, "connectionId", connectionID, "err", err)
	return &protocol.Error{Code: protocol.CodeInternal, Message: "the service could not " + what + "; try again"}
}

// storeChunk stores one response chunk for forward to collect.
func (s *Service) storeChunk(ctx context.Context, connectionID string, r *protocol.Response) protocol.Message {
	if !sentOn(r.RequestID, connectionID) {
		s.log.Warn("response for a request not sent on this connection", "connectionId", connectionID, "requestId", r.RequestID)
		return &protocol.Error{Code: protocol.CodeUnknownRequest, RequestID: r.RequestID,
			Message: fmt.Sprintf("request %s was not sent on this connection", r.RequestID)}
	}
	if err := s.store.PutChunk(ctx, r, s.now().Add(s.cfg.ResponseTTL)); err != nil {
		m := s.internal(connectionID, "store a response chunk", err)
		m.RequestID = r.RequestID
		return m
	}
	return nil
}
