package tunnel

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// TestForwardTranslation checks both directions of the payload 2.0
// translation through the handlers: what the agent receives for an event,
// and what the public client gets for the agent's response.
func TestForwardTranslation(t *testing.T) {
	binary := []byte{0, 1, 2, 0xfd, 0xfe, 0xff, 0x80, 0x81}
	tests := []struct {
		name       string
		cfg        Config
		give       func() events.APIGatewayV2HTTPRequest
		wantURI    string
		wantHeader map[string][]string // on the request the agent sees
		wantBody   []byte
		respond    *protocol.Response
		respBody   []byte
		want       events.APIGatewayV2HTTPResponse
	}{
		{
			name: "query repeats and escapes, repeated headers, cookies",
			give: func() events.APIGatewayV2HTTPRequest {
				ev := httpEvent("GET", "myapp.tunnel.example.com", "/api/items", "a=1&a=2&b=%2F")
				ev.Headers["x-repeated"] = "one,two" // as API Gateway joins repeats
				ev.Headers["connection"] = "keep-alive, x-hop"
				ev.Headers["x-hop"] = "drop me"
				ev.Headers["keep-alive"] = "timeout=5"
				ev.Cookies = []string{"session=abc123", "theme=dark"}
				return ev
			},
			wantURI: "/api/items?a=1&a=2&b=%2F",
			wantHeader: map[string][]string{
				"X-Repeated":        {"one,two"},
				"Cookie":            {"session=abc123; theme=dark"},
				"X-Forwarded-For":   {"198.51.100.23"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"myapp.tunnel.example.com"},
				"Connection":        nil,
				"X-Hop":             nil,
				"Keep-Alive":        nil,
			},
			respond: &protocol.Response{StatusCode: 200, Headers: protocol.Headers{
				"Content-Type":      {"text/plain"},
				"X-Multi":           {"a", "b"},
				"Set-Cookie":        {"a=1; Path=/", "b=2; HttpOnly"},
				"Transfer-Encoding": {"chunked"},
			}},
			respBody: []byte("hello"),
			want: events.APIGatewayV2HTTPResponse{StatusCode: 200,
				Headers:         map[string]string{"content-type": "text/plain", "x-multi": "a,b"},
				Cookies:         []string{"a=1; Path=/", "b=2; HttpOnly"},
				Body:            base64.StdEncoding.EncodeToString([]byte("hello")),
				IsBase64Encoded: true},
		},
		{
			name: "binary body both ways",
			give: func() events.APIGatewayV2HTTPRequest {
				ev := httpEvent("POST", "myapp.tunnel.example.com", "/upload", "")
				ev.Headers["content-type"] = "application/octet-stream"
				ev.Headers["content-length"] = "8"
				ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(binary), true
				return ev
			},
			wantURI:    "/upload",
			wantHeader: map[string][]string{"Content-Type": {"application/octet-stream"}, "Content-Length": nil},
			wantBody:   binary,
			respond:    &protocol.Response{StatusCode: 201, Headers: protocol.Headers{"Content-Type": {"image/png"}}},
			respBody:   binary,
			want: events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"content-type": "image/png"},
				Body: base64.StdEncoding.EncodeToString(binary), IsBase64Encoded: true},
		},
		{
			name: "text body arrives as text",
			give: func() events.APIGatewayV2HTTPRequest {
				ev := httpEvent("PUT", "myapp.tunnel.example.com", "/doc", "")
				ev.Body = `{"a":"é"}`
				return ev
			},
			wantURI:  "/doc",
			wantBody: []byte(`{"a":"é"}`),
			respond:  &protocol.Response{StatusCode: 204},
			want:     events.APIGatewayV2HTTPResponse{StatusCode: 204, Headers: map[string]string{}},
		},
		{
			name: "HEAD keeps content-length, no body",
			give: func() events.APIGatewayV2HTTPRequest {
				return httpEvent("HEAD", "myapp.tunnel.example.com", "/big", "")
			},
			wantURI: "/big",
			respond: &protocol.Response{StatusCode: 200, Headers: protocol.Headers{"Content-Length": {"1048576"}}},
			want:    events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"content-length": "1048576"}},
		},
		{
			name: "304 without body",
			give: func() events.APIGatewayV2HTTPRequest {
				ev := httpEvent("GET", "myapp.tunnel.example.com", "/", "")
				ev.Headers["if-none-match"] = `"v1"`
				return ev
			},
			wantURI:    "/",
			wantHeader: map[string][]string{"If-None-Match": {`"v1"`}},
			respond:    &protocol.Response{StatusCode: 304, Headers: protocol.Headers{"Etag": {`"v1"`}}},
			want:       events.APIGatewayV2HTTPResponse{StatusCode: 304, Headers: map[string]string{"etag": `"v1"`}},
		},
		{
			name: "302 passed through",
			give: func() events.APIGatewayV2HTTPRequest {
				return httpEvent("GET", "myapp.tunnel.example.com", "/login", "next=%2Fhome")
			},
			wantURI: "/login?next=%2Fhome",
			respond: &protocol.Response{StatusCode: 302, Headers: protocol.Headers{"Location": {"/home"}}},
			want:    events.APIGatewayV2HTTPResponse{StatusCode: 302, Headers: map[string]string{"location": "/home"}},
		},
		{
			name: "path style strips the name",
			cfg:  Config{PublicURL: "https://qwerty9876.execute-api.us-east-1.amazonaws.com"},
			give: func() events.APIGatewayV2HTTPRequest {
				return httpEvent("GET", "qwerty9876.execute-api.us-east-1.amazonaws.com", "/myapp/a/b%20c", "x=1")
			},
			wantURI:    "/a/b%20c?x=1",
			wantHeader: map[string][]string{"X-Forwarded-Prefix": {"/myapp"}},
			respond:    &protocol.Response{StatusCode: 200},
			want:       events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{}},
		},
		{
			name: "path style root without slash",
			cfg:  Config{PublicURL: "https://qwerty9876.execute-api.us-east-1.amazonaws.com/"},
			give: func() events.APIGatewayV2HTTPRequest {
				return httpEvent("OPTIONS", "qwerty9876.execute-api.us-east-1.amazonaws.com", "/myapp", "")
			},
			wantURI: "/",
			respond: &protocol.Response{StatusCode: 204, Headers: protocol.Headers{"Allow": {"GET, OPTIONS"}}},
			want:    events.APIGatewayV2HTTPResponse{StatusCode: 204, Headers: map[string]string{"allow": "GET, OPTIONS"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, func(*protocol.Request, []byte) (*protocol.Response, []byte) {
				r := *tt.respond
				return &r, tt.respBody
			})
			got, err := f.svc.Forward(context.Background(), tt.give())
			if err != nil {
				t.Fatal(err)
			}
			req := <-f.agent("C1=").seen
			if req.URI != tt.wantURI || req.Method != tt.give().RequestContext.HTTP.Method {
				t.Errorf("agent saw %s %s, want %s %s", req.Method, req.URI, tt.give().RequestContext.HTTP.Method, tt.wantURI)
			}
			for k, want := range tt.wantHeader {
				if gotV := req.Headers[k]; strings.Join(gotV, "|") != strings.Join(want, "|") || (want == nil) != (gotV == nil) {
					t.Errorf("agent saw header %s = %q, want %q", k, gotV, want)
				}
			}
			body, _ := protocol.DecodeBody(req.Body)
			if !bytes.Equal(body, tt.wantBody) {
				t.Errorf("agent saw body %q, want %q", body, tt.wantBody)
			}
			if got.StatusCode != tt.want.StatusCode || got.Body != tt.want.Body || got.IsBase64Encoded != tt.want.IsBase64Encoded ||
				strings.Join(got.Cookies, "|") != strings.Join(tt.want.Cookies, "|") || !sameMap(got.Headers, tt.want.Headers) {
				t.Errorf("Forward = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestForwardLargeBodiesInChunks(t *testing.T) {
	f := newFixture(t, Config{})
	big := bytes.Repeat([]byte{0xAB, 0x00, 0x7F}, 700_000) // 2.1 MB
	f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, func(r *protocol.Request, body []byte) (*protocol.Response, []byte) {
		return &protocol.Response{StatusCode: 200}, body // echo
	})
	ev := httpEvent("POST", "myapp.tunnel.example.com", "/echo", "")
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(big), true
	got, err := f.svc.Forward(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := base64.StdEncoding.DecodeString(got.Body)
	if got.StatusCode != 200 || !bytes.Equal(out, big) {
		t.Fatalf("echo of 2.1 MB: status %d, %d bytes back", got.StatusCode, len(out))
	}
	var requests int
	for _, m := range f.gw.messages("C1=") {
		if _, ok := m.(*protocol.Request); ok {
			requests++
		}
	}
	if requests < 20 {
		t.Errorf("2.1 MB went in %d request messages; it needs more than 20 of 128 KiB", requests)
	}
}

func TestForwardErrors(t *testing.T) {
	echo := func(*protocol.Request, []byte) (*protocol.Response, []byte) {
		return &protocol.Response{StatusCode: 200}, []byte("ok")
	}
	tests := []struct {
		name     string
		cfg      Config
		setup    func(f *fixture)
		give     events.APIGatewayV2HTTPRequest
		want     int
		wantCode string
		wantText string
	}{
		{
			name:     "unknown subdomain",
			give:     httpEvent("GET", "nobody.tunnel.example.com", "/", ""),
			want:     http.StatusNotFound,
			wantCode: "no_tunnel",
			wantText: "No tunnel is connected at https://nobody.tunnel.example.com",
		},
		{
			name:     "bare domain",
			give:     httpEvent("GET", "tunnel.example.com", "/", ""),
			want:     http.StatusNotFound,
			wantCode: "no_tunnel",
		},
		{
			name: "agent gone",
			setup: func(f *fixture) {
				f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, echo)
				f.gw.setGone("C1=")
			},
			give:     httpEvent("GET", "myapp.tunnel.example.com", "/", ""),
			want:     http.StatusBadGateway,
			wantCode: "agent_gone",
		},
		{
			name:     "no answer before the deadline",
			cfg:      Config{Deadline: 100 * time.Millisecond},
			setup:    func(f *fixture) { f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, nil) },
			give:     httpEvent("GET", "myapp.tunnel.example.com", "/slow", ""),
			want:     http.StatusGatewayTimeout,
			wantCode: "agent_timeout",
			wantText: "did not answer within 100ms",
		},
		{
			name:  "request over the limit",
			cfg:   Config{MaxRequestBytes: 1000},
			setup: func(f *fixture) { f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, echo) },
			give: func() events.APIGatewayV2HTTPRequest {
				ev := httpEvent("POST", "myapp.tunnel.example.com", "/", "")
				ev.Body = strings.Repeat("x", 1001)
				return ev
			}(),
			want:     http.StatusRequestEntityTooLarge,
			wantCode: "request_too_large",
			wantText: "1001 bytes",
		},
		{
			name: "response over the Lambda limit",
			cfg:  Config{MaxResponsePayload: 64 * 1024},
			setup: func(f *fixture) {
				f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, func(*protocol.Request, []byte) (*protocol.Response, []byte) {
					return &protocol.Response{StatusCode: 200}, make([]byte, 100*1024)
				})
			},
			give:     httpEvent("GET", "myapp.tunnel.example.com", "/big", ""),
			want:     http.StatusBadGateway,
			wantCode: "response_too_large",
			wantText: "over AWS Lambda's 65536 byte response limit",
		},
		{
			name: "released name while its agent reconnects",
			setup: func(f *fixture) {
				f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, echo)
				if _, err := f.svc.Disconnect(context.Background(), disconnectEvent("C1=")); err != nil {
					f.t.Fatal(err)
				}
			},
			give:     httpEvent("GET", "myapp.tunnel.example.com", "/", ""),
			want:     http.StatusBadGateway,
			wantCode: "agent_offline",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			if tt.setup != nil {
				tt.setup(f)
			}
			got, err := f.svc.Forward(context.Background(), tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if got.StatusCode != tt.want || got.Headers["x-lambdatunnel-error"] != tt.wantCode || !strings.Contains(got.Body, tt.wantText) {
				t.Errorf("Forward = %d %q %q; want %d %q containing %q", got.StatusCode, got.Headers["x-lambdatunnel-error"], got.Body, tt.want, tt.wantCode, tt.wantText)
			}
		})
	}
}

func TestForwardGoneDeletesStaleConnection(t *testing.T) {
	f := newFixture(t, Config{})
	f.connect("C1=", "alice", &protocol.Hello{Subdomain: "myapp"}, nil)
	f.gw.setGone("C1=")
	if got, _ := f.svc.Forward(context.Background(), httpEvent("GET", "myapp.tunnel.example.com", "/", "")); got.StatusCode != 502 {
		t.Fatalf("status %d, want 502", got.StatusCode)
	}
	if _, err := f.store.GetConnection(context.Background(), "C1="); err == nil {
		t.Error("the stale connection is still recorded")
	}
	claim, err := f.store.GetSubdomain(context.Background(), "myapp")
	if err != nil || claim.Held() {
		t.Errorf("claim after GoneException = %+v, %v; want released for the owner's reconnect", claim, err)
	}
}

func TestForwardAgentDisconnectsMidRequest(t *testing.T) {
	f := newFixture(t, Config{Deadline: 20 * time.Second})
	f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, nil)
	go func() {
		<-f.agent("C1=").seen // the request reached the agent; now its socket drops
		if _, err := f.svc.Disconnect(context.Background(), disconnectEvent("C1=")); err != nil {
			t.Error(err)
		}
	}()
	var got events.APIGatewayV2HTTPResponse
	within(t, 5*time.Second, "a request whose agent dropped", func() {
		got, _ = f.svc.Forward(context.Background(), httpEvent("GET", "myapp.tunnel.example.com", "/", ""))
	})
	if got.StatusCode != 502 || got.Headers["x-lambdatunnel-error"] != "agent_disconnected" {
		t.Errorf("Forward = %d %s, want 502 agent_disconnected", got.StatusCode, got.Body)
	}
}

// TestForwardFollowsRotation: the agent rotates to a new socket and closes
// the old one; a warm forward whose cache still names the old socket must
// find the new one rather than fail.
func TestForwardFollowsRotation(t *testing.T) {
	f := newFixture(t, Config{RouteCacheTTL: time.Hour})
	answer := func(id string) func(*protocol.Request, []byte) (*protocol.Response, []byte) {
		return func(*protocol.Request, []byte) (*protocol.Response, []byte) {
			return &protocol.Response{StatusCode: 200}, []byte(id)
		}
	}
	ready := f.connect("OLD=", "", &protocol.Hello{Subdomain: "myapp"}, answer("old"))
	ev := httpEvent("GET", "myapp.tunnel.example.com", "/", "")
	if got, _ := f.svc.Forward(context.Background(), ev); got.Body != protocol.EncodeBody([]byte("old")) {
		t.Fatalf("first request answered %q", got.Body)
	}
	f.connect("NEW=", "", &protocol.Hello{Subdomain: "myapp", ReclaimKey: ready.ReclaimKey}, answer("new"))
	f.gw.setGone("OLD=")
	got, _ := f.svc.Forward(context.Background(), ev)
	if got.StatusCode != 200 || got.Body != protocol.EncodeBody([]byte("new")) {
		t.Fatalf("after rotation: %d %q, want 200 from the new socket", got.StatusCode, got.Body)
	}
	if _, err := f.store.GetConnection(context.Background(), "NEW="); err != nil {
		t.Errorf("the new connection was dropped: %v", err)
	}
	if c, _ := f.store.GetSubdomain(context.Background(), "myapp"); c.ConnectionID != "NEW=" {
		t.Errorf("holder = %q, want NEW=", c.ConnectionID)
	}
}
