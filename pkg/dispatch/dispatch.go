// Package dispatch turns the one Lambda binary into each of the five
// handlers: it implements lambda.Handler, picks the handler from
// TUNNEL_HANDLER or, when that is unset, from the shape of the event, and
// decodes the event into the handler's aws-lambda-go type.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
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
		// Detect and decode WebSocket events in one pass: their bodies are
		// the agent's response chunks, up to 128 KB of base64 each.
		p, k, err := probeEvent(payload)
		if err != nil {
			return nil, err
		}
		if ev, ok := p.webSocketEvent(k); ok {
			return d.webSocket(ctx, k, ev)
		}
		kind = k
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
		return d.webSocket(ctx, kind, ev)
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

func (d *Dispatcher) webSocket(ctx context.Context, kind Kind, ev events.APIGatewayWebsocketProxyRequest) ([]byte, error) {
	switch kind {
	case Connect:
		return call(ctx, d.h.Connect, ev)
	case Disconnect:
		return call(ctx, d.h.Disconnect, ev)
	}
	return call(ctx, d.h.Message, ev)
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

// probe decodes a WebSocket event and, in the same pass, the fields that
// tell the other event types apart: an authorizer event's type and
// methodArn, a payload 2.0 event's requestContext.http, a REST API event's
// httpMethod.
type probe struct {
	events.APIGatewayWebsocketProxyRequest
	Type           string `json:"type"`
	MethodArn      string `json:"methodArn"`
	HTTPMethod     string `json:"httpMethod"` // shadows the embedded field
	RequestContext struct {
		events.APIGatewayWebsocketProxyRequestContext
		HTTP json.RawMessage `json:"http"`
	} `json:"requestContext"` // shadows the embedded field
	decodeErr error // a field of another event type that did not fit
}

func probeEvent(payload []byte) (*probe, Kind, error) {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return nil, "", fmt.Errorf("the event is not a JSON object: %w", err)
		}
		p.decodeErr = err
	}
	k, err := p.kind(payload)
	return &p, k, err
}

// webSocketEvent returns the probed event as a WebSocket event when it is
// one and decoded cleanly.
func (p *probe) webSocketEvent(k Kind) (events.APIGatewayWebsocketProxyRequest, bool) {
	if (k != Connect && k != Disconnect && k != Response) || p.decodeErr != nil {
		return events.APIGatewayWebsocketProxyRequest{}, false
	}
	ev := p.APIGatewayWebsocketProxyRequest
	ev.HTTPMethod = p.HTTPMethod
	ev.RequestContext = p.RequestContext.APIGatewayWebsocketProxyRequestContext
	return ev, true
}

func (p *probe) kind(payload []byte) (Kind, error) {
	rc := p.RequestContext
	switch {
	case p.Type == "REQUEST" && p.MethodArn != "":
		return Authorizer, nil
	case p.Type == "TOKEN":
		return "", fmt.Errorf("the event is from a TOKEN authorizer; configure a REQUEST authorizer with the token query string as identity source")
	case len(rc.HTTP) > 0 && string(rc.HTTP) != "null":
		return Forward, nil
	case rc.EventType != "":
		for k, t := range eventTypes {
			if t == rc.EventType {
				return k, nil
			}
		}
		return "", fmt.Errorf("the event is a WebSocket event of unknown eventType %q", rc.EventType)
	case p.HTTPMethod != "":
		return "", fmt.Errorf("the event is an API Gateway REST API (payload 1.0) event; route public traffic through an HTTP API with payload format 2.0")
	}
	return "", fmt.Errorf("unknown event shape: top-level keys %v", keysOf(payload))
}

// Detect tells which handler an event is for from its shape: a REQUEST
// authorizer event (type and methodArn), an HTTP API payload 2.0 event
// (requestContext.http: such events also carry routeKey "$default"), or a
// WebSocket event (requestContext.eventType). The error names what it saw.
func Detect(payload []byte) (Kind, error) {
	_, k, err := probeEvent(payload)
	return k, err
}

func keysOf(payload []byte) []string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(payload, &m)
	return slices.Sorted(maps.Keys(m))
}
