// Package dispatch turns the one Lambda binary into each of the five
// handlers: it implements lambda.Handler, picks the handler from
// TUNNEL_HANDLER or, when that is unset, from the shape of the event, and
// decodes the event into the handler's aws-lambda-go type.
package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// Kind names a handler; the values are those of TUNNEL_HANDLER.
type Kind string

// The handlers.
const (
	Connect    Kind = "connect"
	Disconnect Kind = "disconnect"
	Forward    Kind = "forward"
	Response   Kind = "response"
	Authorizer Kind = "authorizer"
)

// Kinds lists every handler.
var Kinds = []Kind{Connect, Disconnect, Forward, Response, Authorizer}

// ParseKind checks a TUNNEL_HANDLER value; "" means detect from the event.
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if k == "" || slices.Contains(Kinds, k) {
		return k, nil
	}
	return "", fmt.Errorf("TUNNEL_HANDLER=%q is not one of connect, disconnect, forward, response, authorizer (or unset to detect from the event)", s)
}

// Handlers are the five handlers (tunnel.Service implements them).
type Handlers interface {
	Connect(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
	Disconnect(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
	Message(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
	Forward(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	Authorize(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error)
}

// Dispatcher is the Lambda handler of the binary.
type Dispatcher struct {
	h     Handlers
	fixed Kind
}

var _ lambda.Handler = (*Dispatcher)(nil)

// New returns a Dispatcher that always runs the fixed handler, or detects
// the handler from each event when fixed is "".
func New(h Handlers, fixed Kind) *Dispatcher { return &Dispatcher{h: h, fixed: fixed} }

// Invoke runs the handler for one event.
func (d *Dispatcher) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	kind := d.fixed
	if kind == "" {
		var err error
		if kind, err = Detect(payload); err != nil {
			return nil, err
		}
	}
	switch kind {
	case Connect, Disconnect, Response:
		var ev events.APIGatewayWebsocketProxyRequest
		if err := decode(payload, &ev, kind); err != nil {
			return nil, err
		}
		if want := eventTypes[kind]; ev.RequestContext.EventType != want {
			return nil, mismatch(kind, payload)
		}
		handle := d.h.Message
		if kind == Connect {
			handle = d.h.Connect
		} else if kind == Disconnect {
			handle = d.h.Disconnect
		}
		return call(ctx, handle, ev)
	case Forward:
		var ev events.APIGatewayV2HTTPRequest
		if err := decode(payload, &ev, kind); err != nil {
			return nil, err
		}
		if ev.RequestContext.HTTP.Method == "" {
			return nil, mismatch(kind, payload)
		}
		return call(ctx, d.h.Forward, ev)
	case Authorizer:
		var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := decode(payload, &ev, kind); err != nil {
			return nil, err
		}
		if ev.Type != "REQUEST" {
			return nil, mismatch(kind, payload)
		}
		return call(ctx, d.h.Authorize, ev)
	}
	return nil, fmt.Errorf("no handler %q", kind)
}

var eventTypes = map[Kind]string{Connect: "CONNECT", Disconnect: "DISCONNECT", Response: "MESSAGE"}

func call[E, R any](ctx context.Context, handle func(context.Context, E) (R, error), ev E) ([]byte, error) {
	r, err := handle(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

func decode(payload []byte, v any, kind Kind) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%s handler: the event is not valid JSON of its type: %w", kind, err)
	}
	return nil
}

func mismatch(kind Kind, payload []byte) error {
	seen, err := Detect(payload)
	if err != nil {
		return fmt.Errorf("TUNNEL_HANDLER=%s, but %w", kind, err)
	}
	return fmt.Errorf("TUNNEL_HANDLER=%s, but the event is a %s event", kind, seen)
}

// probe mirrors the few fields that tell the event types apart.
type probe struct {
	Type           string `json:"type"`
	MethodArn      string `json:"methodArn"`
	HTTPMethod     string `json:"httpMethod"`
	RequestContext *struct {
		EventType string          `json:"eventType"`
		HTTP      json.RawMessage `json:"http"`
	} `json:"requestContext"`
}

// Detect tells which handler an event is for from its shape: a REQUEST
// authorizer event (type and methodArn), an HTTP API payload 2.0 event
// (requestContext.http: such events also carry routeKey "$default"), or a
// WebSocket event (requestContext.eventType). The error names what it saw.
func Detect(payload []byte) (Kind, error) {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", fmt.Errorf("the event is not a JSON object: %w", err)
	}
	switch {
	case p.Type == "REQUEST" && p.MethodArn != "":
		return Authorizer, nil
	case p.Type == "TOKEN":
		return "", fmt.Errorf("the event is from a TOKEN authorizer; configure a REQUEST authorizer with the token query string as identity source")
	case p.RequestContext != nil && len(p.RequestContext.HTTP) > 0 && string(p.RequestContext.HTTP) != "null":
		return Forward, nil
	case p.RequestContext != nil && p.RequestContext.EventType != "":
		for k, t := range eventTypes {
			if t == p.RequestContext.EventType {
				return k, nil
			}
		}
		return "", fmt.Errorf("the event is a WebSocket event of unknown eventType %q", p.RequestContext.EventType)
	case p.HTTPMethod != "":
		return "", fmt.Errorf("the event is an API Gateway REST API (payload 1.0) event; route public traffic through an HTTP API with payload format 2.0")
	}
	return "", fmt.Errorf("unknown event shape: top-level keys %v", keysOf(payload))
}

func keysOf(payload []byte) []string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(payload, &m)
	return slices.Sorted(maps.Keys(m))
}
