package tunnel

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/memory"
)

// gateway stands in for API Gateway's @connections API at this level (the
// emulator in pkg/apigw is the real one): it records what the handlers
// post and hands requests to a fake agent per connection.
type gateway struct {
	mu     sync.Mutex
	posted map[string][]protocol.Message
	gone   map[string]bool
	agents map[string]*fakeAgent
}

func newGateway() *gateway {
	return &gateway{posted: map[string][]protocol.Message{}, gone: map[string]bool{}, agents: map[string]*fakeAgent{}}
}

func (g *gateway) PostToConnection(_ context.Context, id string, data []byte) error {
	if len(data) > protocol.MaxMessageBytes {
		return fmt.Errorf("post of %d bytes: over the 128 KiB limit", len(data))
	}
	m, err := protocol.Decode(data)
	if err != nil {
		return fmt.Errorf("the service posted a bad message: %w", err)
	}
	g.mu.Lock()
	if g.gone[id] {
		g.mu.Unlock()
		return fmt.Errorf("post to %s: %w", id, ErrGone)
	}
	g.posted[id] = append(g.posted[id], m)
	a := g.agents[id]
	g.mu.Unlock()
	if r, ok := m.(*protocol.Request); ok && a != nil {
		a.receive(r)
	}
	return nil
}

func (g *gateway) messages(id string) []protocol.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]protocol.Message(nil), g.posted[id]...)
}

func (g *gateway) last(t *testing.T, id string) protocol.Message {
	t.Helper()
	ms := g.messages(id)
	if len(ms) == 0 {
		t.Fatalf("nothing was posted to %s", id)
	}
	return ms[len(ms)-1]
}

func (g *gateway) setGone(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gone[id] = true
}

// fakeAgent answers requests on one connection by sending response chunks
// through the service's Message handler, as the real agent's messages would
// arrive through the $default route.
type fakeAgent struct {
	t       *testing.T
	svc     *Service
	connID  string
	handle  func(req *protocol.Request, body []byte) (*protocol.Response, []byte)
	limit   int
	mu      sync.Mutex
	pending map[string]*pendingRequest
	seen    chan *protocol.Request // every complete request, for assertions
}

type pendingRequest struct {
	head *protocol.Request
	asm  protocol.Assembler
}

func (a *fakeAgent) receive(r *protocol.Request) {
	a.mu.Lock()
	p, ok := a.pending[r.RequestID]
	if !ok {
		p = &pendingRequest{head: r}
		a.pending[r.RequestID] = p
	}
	done, err := p.asm.Add(r.Seq, r.Final, r.Body)
	if done || err != nil {
		delete(a.pending, r.RequestID)
	}
	a.mu.Unlock()
	if err != nil {
		a.t.Errorf("agent: %v", err)
		return
	}
	if !done {
		return
	}
	b64, _ := p.asm.Body()
	head := *p.head
	head.Body = b64
	select {
	case a.seen <- &head:
	default:
	}
	if a.handle == nil {
		return
	}
	go a.respond(&head)
}

func (a *fakeAgent) respond(req *protocol.Request) {
	body, err := protocol.DecodeBody(req.Body)
	if err != nil {
		a.t.Errorf("agent: %v", err)
		return
	}
	resp, out := a.handle(req, body)
	resp.RequestID = req.RequestID
	chunks, err := protocol.SplitResponse(*resp, protocol.EncodeBody(out), a.limit)
	if err != nil {
		a.t.Errorf("agent: %v", err)
		return
	}
	// Concurrently, as API Gateway invokes $default once per message.
	var wg sync.WaitGroup
	for _, c := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := protocol.Encode(c)
			if _, err := a.svc.Message(context.Background(), messageEvent(a.connID, string(b))); err != nil {
				a.t.Errorf("agent: Message: %v", err)
			}
		}()
	}
	wg.Wait()
}

type fixture struct {
	t     *testing.T
	svc   *Service
	store store.Store
	gw    *gateway
}

func newFixture(t *testing.T, cfg Config, opts ...Option) *fixture {
	t.Helper()
	if cfg.Domain == "" && cfg.PublicURL == "" {
		cfg.Domain = "tunnel.example.com"
	}
	st := memory.New(nil)
	gw := newGateway()
	svc, err := New(cfg, st, gw, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, svc: svc, store: st, gw: gw}
}

func connectEvent(id, owner string) events.APIGatewayWebsocketProxyRequest {
	ev := events.APIGatewayWebsocketProxyRequest{}
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.EventType = "CONNECT"
	ev.RequestContext.RouteKey = "$connect"
	if owner != "" {
		ev.RequestContext.Authorizer = map[string]any{"principalId": owner, "owner": owner}
	}
	return ev
}

func messageEvent(id, body string) events.APIGatewayWebsocketProxyRequest {
	ev := events.APIGatewayWebsocketProxyRequest{Body: body}
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.EventType = "MESSAGE"
	ev.RequestContext.RouteKey = "$default"
	return ev
}

func disconnectEvent(id string) events.APIGatewayWebsocketProxyRequest {
	ev := events.APIGatewayWebsocketProxyRequest{}
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.EventType = "DISCONNECT"
	ev.RequestContext.RouteKey = "$disconnect"
	return ev
}

// connect runs $connect and hello for a connection and returns the ready
// message; the fake agent answers requests with handle (nil: never).
func (f *fixture) connect(id, owner string, hello *protocol.Hello, handle func(*protocol.Request, []byte) (*protocol.Response, []byte)) *protocol.Ready {
	f.t.Helper()
	ctx := context.Background()
	if r, err := f.svc.Connect(ctx, connectEvent(id, owner)); err != nil || r.StatusCode != 200 {
		f.t.Fatalf("Connect = %v, %v", r, err)
	}
	f.gw.mu.Lock()
	f.gw.agents[id] = &fakeAgent{t: f.t, svc: f.svc, connID: id, handle: handle, limit: protocol.MaxMessageBytes,
		pending: map[string]*pendingRequest{}, seen: make(chan *protocol.Request, 100)}
	f.gw.mu.Unlock()
	if hello == nil {
		hello = &protocol.Hello{}
	}
	b, _ := protocol.Encode(hello)
	if _, err := f.svc.Message(ctx, messageEvent(id, string(b))); err != nil {
		f.t.Fatal(err)
	}
	ready, ok := f.gw.last(f.t, id).(*protocol.Ready)
	if !ok {
		f.t.Fatalf("answer to hello: %#v, want ready", f.gw.last(f.t, id))
	}
	return ready
}

func (f *fixture) agent(id string) *fakeAgent {
	f.gw.mu.Lock()
	defer f.gw.mu.Unlock()
	return f.gw.agents[id]
}

func httpEvent(method, host, rawPath, rawQuery string) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: rawPath, RawQueryString: rawQuery,
		Headers: map[string]string{"host": host}}
	ev.RequestContext.DomainName = host
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.HTTP.Path = rawPath
	ev.RequestContext.HTTP.SourceIP = "198.51.100.23"
	ev.RequestContext.RequestID = "req-" + method
	return ev
}

// within fails the test when fn takes longer than d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	if took := time.Since(start); took > d {
		t.Errorf("%s took %v, want under %v", what, took, d)
	}
}
