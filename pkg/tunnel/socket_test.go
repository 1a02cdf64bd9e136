package tunnel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdatunnel/lambdatunnel/pkg/auth"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

func TestHelloReady(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		hello   *protocol.Hello
		wantURL string
		wantSub string
	}{
		{"named", Config{Domain: "tunnel.example.com"}, &protocol.Hello{Subdomain: "myapp"}, "https://myapp.tunnel.example.com", "myapp"},
		{"upper case folded", Config{Domain: "tunnel.example.com"}, &protocol.Hello{Subdomain: "MyApp"}, "https://myapp.tunnel.example.com", "myapp"},
		{"path style", Config{PublicURL: "https://qwerty.execute-api.us-east-1.amazonaws.com"}, &protocol.Hello{Subdomain: "myapp"},
			"https://qwerty.execute-api.us-east-1.amazonaws.com/myapp/", "myapp"},
		{"local mode", Config{Domain: "localhost:8000", Scheme: "http"}, &protocol.Hello{Subdomain: "myapp"}, "http://myapp.localhost:8000", "myapp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			ready := f.connect("C1=", "", tt.hello, nil)
			if ready.URL != tt.wantURL || ready.Subdomain != tt.wantSub || ready.ConnectionID != "C1=" || len(ready.ReclaimKey) < 32 {
				t.Errorf("ready = %+v, want url %s", ready, tt.wantURL)
			}
			c, err := f.store.GetConnection(context.Background(), "C1=")
			if err != nil || c.Subdomain != tt.wantSub {
				t.Errorf("connection = %+v, %v; want subdomain %s", c, err, tt.wantSub)
			}
		})
	}
}

func TestHelloRandomName(t *testing.T) {
	f := newFixture(t, Config{})
	seen := map[string]bool{}
	for i := range 50 {
		id := string(rune('A'+i%26)) + strings.Repeat("x", i/26) + "="
		ready := f.connect(id, "", nil, nil)
		if err := ValidateSubdomain(ready.Subdomain); err != nil || len(ready.Subdomain) < 10 {
			t.Fatalf("random name %q: %v", ready.Subdomain, err)
		}
		if seen[ready.Subdomain] {
			t.Fatalf("random name %q given twice", ready.Subdomain)
		}
		seen[ready.Subdomain] = true
	}
}

func TestHelloRefusals(t *testing.T) {
	tests := []struct {
		name     string
		hello    *protocol.Hello
		wantCode protocol.ErrorCode
		wantText string
	}{
		{"in use", &protocol.Hello{Subdomain: "taken"}, protocol.CodeSubdomainInUse, `subdomain "taken" is in use`},
		{"in use with a wrong key", &protocol.Hello{Subdomain: "taken", ReclaimKey: "guess"}, protocol.CodeSubdomainInUse, "in use"},
		{"reserved", &protocol.Hello{Subdomain: "www"}, protocol.CodeSubdomainDenied, "reserved"},
		{"bad characters", &protocol.Hello{Subdomain: "my_app"}, protocol.CodeSubdomainDenied, "only a-z, 0-9 and hyphens"},
		{"leading hyphen", &protocol.Hello{Subdomain: "-app"}, protocol.CodeSubdomainDenied, "hyphens"},
		{"too short", &protocol.Hello{Subdomain: "ab"}, protocol.CodeSubdomainDenied, "3 to 63"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			f.connect("HOLDER=", "alice", &protocol.Hello{Subdomain: "taken"}, nil)
			if _, err := f.svc.Connect(context.Background(), connectEvent("C2=", "bob")); err != nil {
				t.Fatal(err)
			}
			b, _ := protocol.Encode(tt.hello)
			if _, err := f.svc.Message(context.Background(), messageEvent("C2=", string(b))); err != nil {
				t.Fatal(err)
			}
			e, ok := f.gw.last(t, "C2=").(*protocol.Error)
			if !ok || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantText) {
				t.Errorf("answer = %#v, want error %s saying %q", f.gw.last(t, "C2="), tt.wantCode, tt.wantText)
			}
		})
	}
}

func TestReconnectKeepsName(t *testing.T) {
	f := newFixture(t, Config{})
	first := f.connect("C1=", "", &protocol.Hello{}, nil)
	if _, err := f.svc.Disconnect(context.Background(), disconnectEvent("C1=")); err != nil {
		t.Fatal(err)
	}
	again := f.connect("C2=", "", &protocol.Hello{Subdomain: first.Subdomain, ReclaimKey: first.ReclaimKey}, nil)
	if again.URL != first.URL || again.ReclaimKey != first.ReclaimKey {
		t.Errorf("reconnect got %+v, want the same URL and key as %+v", again, first)
	}
	// Someone else cannot have it in the grace period.
	if _, err := f.svc.Connect(context.Background(), connectEvent("C3=", "")); err != nil {
		t.Fatal(err)
	}
	b, _ := protocol.Encode(&protocol.Hello{Subdomain: first.Subdomain})
	f.svc.Message(context.Background(), messageEvent("C3=", string(b)))
	if e, ok := f.gw.last(t, "C3=").(*protocol.Error); !ok || e.Code != protocol.CodeSubdomainInUse {
		t.Errorf("a stranger's hello for the name: %#v, want subdomain_in_use", f.gw.last(t, "C3="))
	}
}

func TestMessageRejects(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantCode protocol.ErrorCode
		wantText string
		wantReq  string
	}{
		{"not json", `{"type":`, protocol.CodeBadMessage, "not a JSON message object", ""},
		{"unknown type", `{"type":"teleport"}`, protocol.CodeBadMessage, `unknown message type "teleport"`, ""},
		{"bad base64", `{"type":"response","requestId":"r1","statusCode":200,"body":"!!!!"}`, protocol.CodeBadMessage, "not valid base64", ""},
		{"agent sends a request", `{"type":"request","requestId":"r1","method":"GET","uri":"/","final":true}`, protocol.CodeBadMessage, `may not send "request"`, ""},
		{"unknown request id", `{"type":"response","requestId":"0123456789abcdef-deadbeef","statusCode":200,"final":true}`, protocol.CodeUnknownRequest, "was not sent on this connection", "0123456789abcdef-deadbeef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, nil)
			r, err := f.svc.Message(context.Background(), messageEvent("C1=", tt.give))
			if err != nil {
				t.Fatalf("Message returned an error for a bad message: %v", err)
			}
			if r.StatusCode != 200 {
				t.Errorf("status %d, want 200 (the error went back on the socket)", r.StatusCode)
			}
			e, ok := f.gw.last(t, "C1=").(*protocol.Error)
			if !ok || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantText) || e.RequestID != tt.wantReq {
				t.Errorf("answer = %#v, want %s saying %q", f.gw.last(t, "C1="), tt.wantCode, tt.wantText)
			}
		})
	}
}

func TestPingPong(t *testing.T) {
	f := newFixture(t, Config{})
	f.connect("C1=", "", nil, nil)
	f.svc.Message(context.Background(), messageEvent("C1=", `{"type":"ping"}`))
	if _, ok := f.gw.last(t, "C1=").(*protocol.Pong); !ok {
		t.Errorf("answer to ping = %#v, want pong", f.gw.last(t, "C1="))
	}
}

func TestConnectRecordsOwner(t *testing.T) {
	now := time.Now().Truncate(time.Second) // the store reads the real clock
	f := newFixture(t, Config{}, WithClock(func() time.Time { return now }))
	if _, err := f.svc.Connect(context.Background(), connectEvent("C1=", "alice")); err != nil {
		t.Fatal(err)
	}
	c, err := f.store.GetConnection(context.Background(), "C1=")
	if err != nil {
		t.Fatal(err)
	}
	if c.Owner != "alice" || !c.CreatedAt.Equal(now) || !c.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Errorf("connection = %+v, want owner alice expiring 2 h after %v", c, now)
	}
	if _, err := f.svc.Connect(context.Background(), events.APIGatewayWebsocketProxyRequest{}); err == nil {
		t.Error("Connect without a connection id succeeded")
	}
}

func TestDisconnectReleasesOnlyItsOwnName(t *testing.T) {
	f := newFixture(t, Config{})
	ready := f.connect("OLD=", "", &protocol.Hello{Subdomain: "myapp"}, nil)
	f.connect("NEW=", "", &protocol.Hello{Subdomain: "myapp", ReclaimKey: ready.ReclaimKey}, nil)
	if _, err := f.svc.Disconnect(context.Background(), disconnectEvent("OLD=")); err != nil {
		t.Fatal(err)
	}
	c, err := f.store.GetSubdomain(context.Background(), "myapp")
	if err != nil || c.ConnectionID != "NEW=" {
		t.Errorf("after the old socket's disconnect the claim is %+v, %v; want held by NEW=", c, err)
	}
	if _, err := f.svc.Disconnect(context.Background(), disconnectEvent("NEW=")); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.store.GetSubdomain(context.Background(), "myapp"); c.Held() {
		t.Errorf("after the holder's disconnect the claim is still held: %+v", c)
	}
	if _, err := f.store.GetConnection(context.Background(), "NEW="); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("connection after disconnect: %v, want ErrNotFound", err)
	}
	// A disconnect for an unknown connection is not an error.
	if _, err := f.svc.Disconnect(context.Background(), disconnectEvent("NEVER=")); err != nil {
		t.Errorf("Disconnect of an unknown connection: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tokens, err := auth.New([]byte("0123456789abcdef0123456789abcdef"), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	good, _ := tokens.Mint("alice", time.Hour)
	past, _ := auth.New([]byte("0123456789abcdef0123456789abcdef"), func() time.Time { return now.Add(-2 * time.Hour) })
	expired, _ := past.Mint("alice", time.Hour)
	ev := func(token string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
		return events.APIGatewayCustomAuthorizerRequestTypeRequest{Type: "REQUEST",
			MethodArn:             "arn:aws:execute-api:us-east-1:123456789012:abc/live/$connect",
			QueryStringParameters: map[string]string{"token": token}}
	}
	tests := []struct {
		name       string
		verifier   Verifier
		token      string
		wantEffect string
		wantOwner  string
	}{
		{"valid", tokens, good, "Allow", "alice"},
		{"expired", tokens, expired, "Deny", ""},
		{"garbage", tokens, "not-a-token", "Deny", ""},
		{"missing", tokens, "", "Deny", ""},
		{"not configured", nil, good, "Deny", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.verifier != nil {
				opts = append(opts, WithVerifier(tt.verifier))
			}
			f := newFixture(t, Config{}, opts...)
			got, err := f.svc.Authorize(context.Background(), ev(tt.token))
			if err != nil {
				t.Fatal(err)
			}
			st := got.PolicyDocument.Statement
			if len(st) != 1 || st[0].Effect != tt.wantEffect || st[0].Resource[0] != ev("").MethodArn {
				t.Errorf("policy = %+v, want %s on the method ARN", got.PolicyDocument, tt.wantEffect)
			}
			if owner, _ := got.Context["owner"].(string); owner != tt.wantOwner {
				t.Errorf("context owner = %q, want %q", owner, tt.wantOwner)
			}
		})
	}
}

func TestConfigRejectsDeadlinePastAPIGateway(t *testing.T) {
	if _, err := New(Config{Domain: "x.example.com", Deadline: 31 * time.Second}, nil, nil); err == nil {
		t.Error("a 31 s deadline was accepted; API Gateway gives up at 30 s")
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("a config with neither domain nor public URL was accepted")
	}
}

func TestDisconnectNormalClosureFreesName(t *testing.T) {
	tests := []struct {
		name     string
		status   int64
		wantFree bool
	}{
		{"agent stopped (1000)", 1000, true},
		{"socket dropped (1006)", 1006, false},
		{"idle timeout (1001)", 1001, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			f.connect("C1=", "", &protocol.Hello{Subdomain: "myapp"}, nil)
			ev := disconnectEvent("C1=")
			ev.RequestContext.DisconnectStatusCode = tt.status
			if _, err := f.svc.Disconnect(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Connect(context.Background(), connectEvent("C2=", "")); err != nil {
				t.Fatal(err)
			}
			b, _ := protocol.Encode(&protocol.Hello{Subdomain: "myapp"})
			f.svc.Message(context.Background(), messageEvent("C2=", string(b)))
			_, got := f.gw.last(t, "C2=").(*protocol.Ready)
			if got != tt.wantFree {
				t.Errorf("another agent's hello for the name got %#v; want ready: %v", f.gw.last(t, "C2="), tt.wantFree)
			}
		})
	}
}
