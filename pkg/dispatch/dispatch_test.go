package dispatch_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdatunnel/lambdatunnel/pkg/auth"
	"github.com/lambdatunnel/lambdatunnel/pkg/dispatch"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/memory"
	"github.com/lambdatunnel/lambdatunnel/pkg/tunnel"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDetect(t *testing.T) {
	tests := []struct {
		give    string
		want    dispatch.Kind
		wantErr string
	}{
		{"ws-connect.json", dispatch.Connect, ""},
		{"ws-message-hello.json", dispatch.Response, ""},
		{"ws-disconnect.json", dispatch.Disconnect, ""},
		{"http-v2-get.json", dispatch.Forward, ""},
		{"http-v2-binary-post.json", dispatch.Forward, ""},
		{"authorizer-request.json", dispatch.Authorizer, ""},
		{"rest-v1.json", "", "REST API (payload 1.0)"},
		{"sqs.json", "", "unknown event shape: top-level keys [Records]"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := dispatch.Detect(fixture(t, tt.give))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Detect = %q, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := dispatch.Detect([]byte(`{"type":`)); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("Detect of malformed JSON: %v", err)
	}
}

func TestFixturesRoundTrip(t *testing.T) {
	// Each fixture decodes into its aws-lambda-go type and encodes back to
	// the same JSON document, so the fixtures and the types agree.
	for name, v := range map[string]any{
		"ws-connect.json":          &events.APIGatewayWebsocketProxyRequest{},
		"ws-message-hello.json":    &events.APIGatewayWebsocketProxyRequest{},
		"ws-disconnect.json":       &events.APIGatewayWebsocketProxyRequest{},
		"http-v2-get.json":         &events.APIGatewayV2HTTPRequest{},
		"http-v2-binary-post.json": &events.APIGatewayV2HTTPRequest{},
		"authorizer-request.json":  &events.APIGatewayCustomAuthorizerRequestTypeRequest{},
	} {
		t.Run(name, func(t *testing.T) {
			raw := fixture(t, name)
			if err := json.Unmarshal(raw, v); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			json.Unmarshal(raw, &want)
			json.Unmarshal(out, &got)
			if name == "authorizer-request.json" {
				// aws-lambda-go's authorizer type models the REST API's
				// requestContext, not the WebSocket fields API Gateway adds
				// there; the handler reads none of them.
				delete(want.(map[string]any), "requestContext")
			}
			if missing := lost(want, got, ""); missing != "" {
				t.Errorf("round trip lost %s", missing)
			}
		})
	}
}

// lost returns the path of the first value of want that got lacks.
func lost(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, _ := got.(map[string]any)
		for k, v := range w {
			if p := lost(v, g[k], path+"."+k); p != "" {
				return p
			}
		}
	case []any:
		g, _ := got.([]any)
		if len(g) != len(w) {
			return path
		}
		for i := range w {
			if p := lost(w[i], g[i], path); p != "" {
				return p
			}
		}
	case nil:
	default:
		if want != got {
			return path
		}
	}
	return ""
}

// recorder stands in for the @connections API: it keeps what was posted.
type recorder struct {
	mu     sync.Mutex
	posted map[string][][]byte
	onPost func(id string, data []byte)
}

func (r *recorder) PostToConnection(_ context.Context, id string, data []byte) error {
	r.mu.Lock()
	if r.posted == nil {
		r.posted = map[string][][]byte{}
	}
	r.posted[id] = append(r.posted[id], data)
	on := r.onPost
	r.mu.Unlock()
	if on != nil {
		on(id, data)
	}
	return nil
}

func (r *recorder) last(id string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.posted[id]) == 0 {
		return nil
	}
	return r.posted[id][len(r.posted[id])-1]
}

const secret = "0123456789abcdef0123456789abcdef"

// TestInvokeFixtures feeds the fixtures as bytes through Invoke, in the
// order API Gateway would send them: authorizer, $connect, hello, a public
// request answered by the agent, $disconnect.
func TestInvokeFixtures(t *testing.T) {
	ctx := context.Background()
	tokens, _ := auth.New([]byte(secret), nil)
	rec := &recorder{}
	svc, err := tunnel.New(tunnel.Config{Domain: "tunnel.example.com"}, memory.New(nil), rec, tunnel.WithVerifier(tokens))
	if err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(svc, "")
	const conn = "CbVb1dD7oAMCJbg="

	// Authorizer: the fixture with a real token.
	token, _ := tokens.Mint("alice", time.Hour)
	out, err := d.Invoke(ctx, bytes.ReplaceAll(fixture(t, "authorizer-request.json"), []byte("REPLACED_BY_TEST"), []byte(token)))
	if err != nil {
		t.Fatal(err)
	}
	var policy events.APIGatewayCustomAuthorizerResponse
	json.Unmarshal(out, &policy)
	if policy.PrincipalID != "alice" || policy.PolicyDocument.Statement[0].Effect != "Allow" {
		t.Fatalf("authorizer answered %s", out)
	}

	for _, name := range []string{"ws-connect.json", "ws-message-hello.json"} {
		out, err := d.Invoke(ctx, fixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var r events.APIGatewayProxyResponse
		if err := json.Unmarshal(out, &r); err != nil || r.StatusCode != 200 {
			t.Fatalf("%s answered %s", name, out)
		}
	}
	m, err := protocol.Decode(rec.last(conn))
	if err != nil {
		t.Fatal(err)
	}
	if ready, ok := m.(*protocol.Ready); !ok || ready.URL != "https://myapp.tunnel.example.com" {
		t.Fatalf("hello answered %#v", m)
	}

	// The agent answers requests through the $default route.
	rec.mu.Lock()
	rec.onPost = func(id string, data []byte) {
		m, err := protocol.Decode(data)
		req, ok := m.(*protocol.Request)
		if err != nil || !ok {
			return
		}
		go func() {
			resp, _ := protocol.Encode(&protocol.Response{RequestID: req.RequestID, Final: true, StatusCode: 200,
				Headers: protocol.Headers{"Set-Cookie": {"a=1", "b=2"}, "Content-Type": {"application/json"}},
				Body:    protocol.EncodeBody([]byte(req.Method + " " + req.URI + " " + req.Headers["Cookie"][0]))})
			ev := events.APIGatewayWebsocketProxyRequest{Body: string(resp)}
			ev.RequestContext.ConnectionID, ev.RequestContext.EventType, ev.RequestContext.RouteKey = id, "MESSAGE", "$default"
			b, _ := json.Marshal(ev)
			if _, err := d.Invoke(ctx, b); err != nil {
				t.Error(err)
			}
		}()
	}
	rec.mu.Unlock()
	out, err = d.Invoke(ctx, fixture(t, "http-v2-get.json"))
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	body, _ := base64.StdEncoding.DecodeString(resp.Body)
	if resp.StatusCode != 200 || string(body) != "GET /api/items?a=1&a=2&b=%2F session=abc123; theme=dark" ||
		strings.Join(resp.Cookies, "|") != "a=1|b=2" || !resp.IsBase64Encoded {
		t.Fatalf("forward answered %s (body %q)", out, body)
	}

	if _, err := d.Invoke(ctx, fixture(t, "ws-disconnect.json")); err != nil {
		t.Fatal(err)
	}
	out, _ = d.Invoke(ctx, fixture(t, "http-v2-get.json"))
	json.Unmarshal(out, &resp)
	// The fixture's socket closed normally (1000): the agent stopped, and
	// its name is free at once.
	if resp.StatusCode != 404 {
		t.Errorf("after the agent's normal close the public URL answered %d, want 404 (no tunnel)", resp.StatusCode)
	}
}

func TestInvokeErrors(t *testing.T) {
	svc, _ := tunnel.New(tunnel.Config{Domain: "tunnel.example.com"}, memory.New(nil), &recorder{})
	tests := []struct {
		name  string
		fixed dispatch.Kind
		give  []byte
		want  string
	}{
		{"malformed", "", []byte(`{"requestContext":`), "not a JSON object"},
		{"unknown shape", "", fixture(t, "sqs.json"), "unknown event shape"},
		{"env mismatch", dispatch.Forward, fixture(t, "ws-connect.json"), "TUNNEL_HANDLER=forward, but the event is a connect event"},
		{"env mismatch ws", dispatch.Disconnect, fixture(t, "ws-connect.json"), "TUNNEL_HANDLER=disconnect, but the event is a connect event"},
		{"env mismatch authorizer", dispatch.Authorizer, fixture(t, "http-v2-get.json"), "TUNNEL_HANDLER=authorizer, but the event is a forward event"},
		{"env with bad json", dispatch.Forward, []byte(`[1,2]`), "forward handler: the event is not valid JSON of its type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := dispatch.New(svc, tt.fixed).Invoke(context.Background(), tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Invoke = %s, %v; want an error saying %q", out, err, tt.want)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range []string{"connect", "disconnect", "forward", "response", "authorizer", "", " Forward "} {
		if _, err := dispatch.ParseKind(k); err != nil {
			t.Errorf("ParseKind(%q): %v", k, err)
		}
	}
	if _, err := dispatch.ParseKind("message"); err == nil || !strings.Contains(err.Error(), "not one of") {
		t.Errorf("ParseKind(message): %v", err)
	}
}
