package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"
)

// slashPlusReader yields bytes whose base64 is full of '+' and '/', so that
// connection ids need URL escaping; a counter keeps them unique.
type slashPlusReader struct {
	mu sync.Mutex
	n  byte
}

func (r *slashPlusReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range p {
		p[i] = []byte{0xfb, 0xff, 0xbf}[i%3] // "+/+/"
	}
	r.n++
	p[len(p)-1] = r.n
	return len(p), nil
}

// connectedID dials and returns the socket and its connection id.
func connectedID(t *testing.T, s *Server, fn *fakeLambda) (*websocket.Conn, string) {
	t.Helper()
	conn := dial(t, s, "", http.Header{"User-Agent": {"mgmt-test/2.0"}})
	ev := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindConnect))
	return conn, ev.RequestContext.ConnectionID
}

func TestGetConnection(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	before := time.Now().Add(-time.Second)
	_, id := connectedID(t, s, fn)

	out, err := fn.mgmt.GetConnection(context.Background(), &apigatewaymanagementapi.GetConnectionInput{
		ConnectionId: aws.String(id),
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		give any
		want any
	}{
		{"sourceIp", aws.ToString(out.Identity.SourceIp), "127.0.0.1"},
		{"userAgent", aws.ToString(out.Identity.UserAgent), "mgmt-test/2.0"},
		{"connectedAt", out.ConnectedAt != nil && out.ConnectedAt.After(before), true},
		{"lastActiveAt", out.LastActiveAt != nil && !out.LastActiveAt.Before(*out.ConnectedAt), true},
	}
	for _, c := range checks {
		if c.give != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.give, c.want)
		}
	}
}

func TestManagementErrors(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	ctx := context.Background()
	conn, id := connectedID(t, s, fn)

	post := func(id string, data []byte) error {
		_, err := fn.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id), Data: data,
		})
		return err
	}
	var tooLarge *types.PayloadTooLargeException
	if err := post(id, make([]byte, 128<<10+1)); !errors.As(err, &tooLarge) {
		t.Errorf("post over 128 KiB: %v, want PayloadTooLargeException", err)
	}
	if err := post(id, []byte(strings.Repeat("b", 128<<10))); err != nil {
		t.Errorf("post of 128 KiB: %v", err)
	} else if got := readText(t, conn); len(got) != 128<<10 {
		t.Errorf("client got %d bytes", len(got))
	}

	var gone *types.GoneException
	if err := post("AAAAAAAAAAAAAAA=", []byte("x")); !errors.As(err, &gone) {
		t.Errorf("post to unknown id: %v, want GoneException", err)
	}

	// After the client closes, every operation is Gone.
	if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	fn.next(t, kindDisconnect)
	ops := []struct {
		name string
		call func() error
	}{
		{"PostToConnection", func() error { return post(id, []byte("late")) }},
		{"GetConnection", func() error {
			_, err := fn.mgmt.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
			return err
		}},
		{"DeleteConnection", func() error {
			_, err := fn.mgmt.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			var gone *types.GoneException
			if err := op.call(); !errors.As(err, &gone) {
				t.Errorf("%s after close: %v, want GoneException", op.name, err)
			}
		})
	}
}

func TestGoneDuringConnectAndDisconnect(t *testing.T) {
	fn := newFakeLambda()
	results := make(chan error, 2)
	postBack := func(ctx context.Context, payload []byte) ([]byte, error) {
		var ev events.APIGatewayWebsocketProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		_, err := fn.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(ev.RequestContext.ConnectionID), Data: []byte("too early or too late"),
		})
		results <- err
		return []byte(`{"statusCode":200}`), nil
	}
	fn.on(kindConnect, postBack)
	fn.on(kindDisconnect, postBack)
	s := startServer(t, testConfig(), fn)

	conn := dial(t, s, "", nil)
	if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"$connect", "$disconnect"} {
		var gone *types.GoneException
		select {
		case err := <-results:
			if !errors.As(err, &gone) {
				t.Errorf("PostToConnection during %s: %v, want GoneException", when, err)
			}
		case <-time.After(waitFor):
			t.Fatalf("no %s", when)
		}
	}
}

func TestDeleteConnection(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	conn, id := connectedID(t, s, fn)

	_, err := fn.mgmt.DeleteConnection(context.Background(), &apigatewaymanagementapi.DeleteConnectionInput{
		ConnectionId: aws.String(id),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, conn); ce.Code != websocket.StatusNormalClosure {
		t.Errorf("close %v, want 1000", ce.Code)
	}
	ev := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindDisconnect))
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1000 {
		t.Errorf("DISCONNECT %s %d, want %s 1000", ev.RequestContext.ConnectionID,
			ev.RequestContext.DisconnectStatusCode, id)
	}
}

func TestManagementPaths(t *testing.T) {
	fn := newFakeLambda()
	cfg := testConfig()
	cfg.Rand = &slashPlusReader{}
	s := startServer(t, cfg, fn)
	conn, id := connectedID(t, s, fn)
	if !strings.ContainsAny(id, "+/") {
		t.Fatalf("id %q has no character that needs escaping", id)
	}
	base := "http://" + s.wsLn.Addr().String()
	escaped := url.PathEscape(id) // '/' -> %2F, '+' stays

	// The SDK escapes the id itself: '/' and '+' must survive the trip.
	if _, err := fn.mgmt.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(id), Data: []byte("via sdk"),
	}); err != nil {
		t.Fatalf("sdk post to %q: %v", id, err)
	}
	if got := readText(t, conn); got != "via sdk" {
		t.Fatalf("got %q", got)
	}

	tests := []struct {
		name        string
		method      string
		path        string
		wantStatus  int
		wantErrType string
		wantMessage string // on the socket
	}{
		{"post without stage", http.MethodPost, "/@connections/" + escaped, 200, "", "hello"},
		{"post with stage", http.MethodPost, "/local/@connections/" + escaped, 200, "", "hello"},
		{"post with %2B", http.MethodPost, "/@connections/" + strings.ReplaceAll(escaped, "+", "%2B"), 200, "", "hello"},
		{"get", http.MethodGet, "/local/@connections/" + escaped, 200, "", ""},
		{"unknown id", http.MethodGet, "/@connections/nope", 410, "GoneException", ""},
		{"empty id", http.MethodPost, "/@connections/", 400, "BadRequestException", ""},
		{"unescaped slash", http.MethodPost, "/@connections/a/b", 400, "BadRequestException", ""},
		{"bad method", http.MethodPut, "/@connections/" + escaped, 400, "BadRequestException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Amzn-Errortype") != tt.wantErrType {
				t.Fatalf("%d %q %s, want %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body,
					tt.wantStatus, tt.wantErrType)
			}
			if tt.wantErrType != "" && !json.Valid(body) {
				t.Errorf("error body %q is not JSON", body)
			}
			if tt.wantMessage != "" {
				if got := readText(t, conn); got != tt.wantMessage {
					t.Errorf("socket got %q, want %q", got, tt.wantMessage)
				}
			}
		})
	}
}

func TestBadRequestThroughSDK(t *testing.T) {
	fn := newFakeLambda()
	startServer(t, testConfig(), fn)
	_, err := fn.mgmt.GetConnection(context.Background(), &apigatewaymanagementapi.GetConnectionInput{
		ConnectionId: aws.String(""),
	})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "BadRequestException" {
		t.Errorf("got %v, want BadRequestException", err)
	}
}
