package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"
)

// waitFor bounds every wait on the server in these tests.
const waitFor = 10 * time.Second

// Event kinds, as a dispatcher tells them apart.
const (
	kindAuthorizer = "AUTHORIZER"
	kindConnect    = "CONNECT"
	kindMessage    = "MESSAGE"
	kindDisconnect = "DISCONNECT"
	kindHTTP       = "HTTP"
)

// eventKind detects an event's shape the way the dispatcher does: an
// authorizer by type+methodArn (its requestContext says CONNECT too), an HTTP
// API v2 event by requestContext.http, WebSocket events by eventType.
func eventKind(payload []byte) string {
	var probe struct {
		Type           string `json:"type"`
		MethodArn      string `json:"methodArn"`
		RequestContext struct {
			EventType string          `json:"eventType"`
			HTTP      json.RawMessage `json:"http"`
		} `json:"requestContext"`
	}
	if json.Unmarshal(payload, &probe) != nil {
		return ""
	}
	switch {
	case probe.Type == "REQUEST" && probe.MethodArn != "":
		return kindAuthorizer
	case probe.RequestContext.HTTP != nil:
		return kindHTTP
	default:
		return probe.RequestContext.EventType
	}
}

// fakeLambda is the Invoker of these tests: it records every event and
// answers as the tunnel's handlers would, unless a test overrides a kind.
// On MESSAGE it echoes the body back through the real @connections API with
// the real SDK client.
type fakeLambda struct {
	events chan []byte
	mgmt   *apigatewaymanagementapi.Client // set before Run

	mu        sync.Mutex
	overrides map[string]func(ctx context.Context, payload []byte) ([]byte, error)
}

func newFakeLambda() *fakeLambda {
	return &fakeLambda{
		events:    make(chan []byte, 1024),
		overrides: make(map[string]func(context.Context, []byte) ([]byte, error)),
	}
}

// on makes the fake answer events of kind with fn.
func (f *fakeLambda) on(kind string, fn func(ctx context.Context, payload []byte) ([]byte, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.overrides[kind] = fn
}

func (f *fakeLambda) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	kind := eventKind(payload)
	select {
	case f.events <- payload:
	default:
		return nil, errors.New("fake lambda: event log full")
	}
	f.mu.Lock()
	fn := f.overrides[kind]
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, payload)
	}
	switch kind {
	case kindAuthorizer:
		return f.authorize(payload)
	case kindMessage:
		return f.echo(ctx, payload)
	case kindConnect, kindDisconnect:
		return []byte(`{"statusCode":200}`), nil
	case kindHTTP:
		return []byte(`{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"ok"}`), nil
	}
	return nil, fmt.Errorf("fake lambda: unknown event %s", payload)
}

// echo posts a MESSAGE event's body back to its connection.
func (f *fakeLambda) echo(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	_, err := f.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(ev.RequestContext.ConnectionID),
		Data:         []byte(ev.Body),
	})
	if err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	return []byte(`{"statusCode":200}`), nil
}

// authorize allows token "good" with a context, denies any other.
func (f *fakeLambda) authorize(payload []byte) ([]byte, error) {
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	effect := "Deny"
	if ev.QueryStringParameters["token"] == "good" {
		effect = "Allow"
	}
	return json.Marshal(map[string]any{
		"principalId": "user-1",
		"policyDocument": map[string]any{
			"Version": "2012-10-17",
			"Statement": []map[string]any{
				{"Action": "execute-api:Invoke", "Effect": effect, "Resource": ev.MethodArn},
			},
		},
		"context": map[string]any{"sub": "user-1", "plan": "free", "n": 7},
	})
}

// next returns the next event, which must be of kind.
func (f *fakeLambda) next(t *testing.T, kind string) []byte {
	t.Helper()
	select {
	case payload := <-f.events:
		if got := eventKind(payload); got != kind {
			t.Fatalf("next event is %s, want %s: %s", got, kind, payload)
		}
		return payload
	case <-time.After(waitFor):
		t.Fatalf("no %s event within %v", kind, waitFor)
		return nil
	}
}

// none checks that no event is pending.
func (f *fakeLambda) none(t *testing.T) {
	t.Helper()
	select {
	case payload := <-f.events:
		t.Fatalf("unexpected %s event: %s", eventKind(payload), payload)
	default:
	}
}

// testConfig shortens nothing: tests set only what they exercise.
func testConfig() Config {
	return Config{HTTPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0"}
}

// startServer runs a Server on loopback ports until the test ends.
func startServer(t *testing.T, cfg Config, fn *fakeLambda) *Server {
	t.Helper()
	s := New(cfg, fn)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	fn.mgmt = newMgmtClient(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(2 * waitFor):
			t.Errorf("Run did not return after shutdown")
		}
	})
	return s
}

// newMgmtClient is the real SDK client for the server's @connections API.
func newMgmtClient(s *Server) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(s.ManagementEndpoint()),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDLOCAL", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

// dial opens a WebSocket to the server; rawQuery is appended to its URL.
func dial(t *testing.T, s *Server, rawQuery string, header http.Header) *websocket.Conn {
	t.Helper()
	conn, resp, err := dialRaw(s, rawQuery, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	conn.SetReadLimit(-1)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

func dialRaw(s *Server, rawQuery string, header http.Header) (*websocket.Conn, *http.Response, error) {
	u := s.WSURL()
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header})
}

// readText reads one message, which must be text.
func readText(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	typ, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v, want text", typ)
	}
	return string(b)
}

// readClose reads until the server closes and returns its close frame.
func readClose(t *testing.T, conn *websocket.Conn) websocket.CloseError {
	t.Helper()
	ce, err := closeOf(conn)
	if err != nil {
		t.Fatal(err)
	}
	return ce
}

// closeOf reads until the connection ends and returns the close frame.
func closeOf(conn *websocket.Conn) (websocket.CloseError, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		_, _, err := conn.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			return ce, fmt.Errorf("read ended without a close frame: %w", err)
		}
		return ce, nil
	}
}

func writeText(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func decode[T any](t *testing.T, payload []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(payload, &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, payload)
	}
	return v
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	tests := []struct {
		name string
		give any
		want any
	}{
		{"HTTPAddr", got.HTTPAddr, "127.0.0.1:8000"},
		{"WSAddr", got.WSAddr, "127.0.0.1:8001"},
		{"Stage", got.Stage, "local"},
		{"MaxFrameBytes", got.MaxFrameBytes, 32768},
		{"MaxMessageBytes", got.MaxMessageBytes, 131072},
		{"IdleTimeout", got.IdleTimeout, 10 * time.Minute},
		{"MaxConnectionLife", got.MaxConnectionLife, 2 * time.Hour},
		{"IntegrationTimeout", got.IntegrationTimeout, 30 * time.Second},
		{"MaxRequestBytes", got.MaxRequestBytes, 10 << 20},
		{"MaxHeaderBytes", got.MaxHeaderBytes, 10240},
		{"MaxLambdaPayload", got.MaxLambdaPayload, 6291456},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give != tt.want {
				t.Errorf("got %v, want %v", tt.give, tt.want)
			}
		})
	}
}

func TestURLs(t *testing.T) {
	s := startServer(t, testConfig(), newFakeLambda())
	wsHost := s.wsLn.Addr().String()
	tests := []struct {
		name string
		give string
		want string
	}{
		{"HTTPURL", s.HTTPURL(), "http://" + s.httpLn.Addr().String()},
		{"WSURL", s.WSURL(), "ws://" + wsHost + "/local"},
		{"ManagementEndpoint", s.ManagementEndpoint(), "http://" + wsHost + "/local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give != tt.want {
				t.Errorf("got %q, want %q", tt.give, tt.want)
			}
		})
	}
}

func TestShutdownClosesSocketsAndSendsDisconnect(t *testing.T) {
	fn := newFakeLambda()
	s := New(testConfig(), fn)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	fn.mgmt = newMgmtClient(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(cancel)

	conn := dial(t, s, "", nil)
	fn.next(t, kindConnect)

	type closeResult struct {
		ce  websocket.CloseError
		err error
	}
	closed := make(chan closeResult, 1)
	go func() {
		ce, err := closeOf(conn)
		closed <- closeResult{ce, err}
	}()
	cancel()

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * waitFor):
		t.Fatal("Run did not return")
	}
	// Run returns only after DISCONNECT: it is already recorded.
	ev := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindDisconnect))
	if got := ev.RequestContext.DisconnectStatusCode; got != 1001 {
		t.Errorf("disconnectStatusCode %d, want 1001", got)
	}
	if r := <-closed; r.err != nil || r.ce.Code != websocket.StatusGoingAway {
		t.Errorf("client saw close %v (%v), want 1001", r.ce.Code, r.err)
	}
}
