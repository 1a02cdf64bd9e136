package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// connectionIDPattern is what API Gateway connection ids look like.
var connectionIDPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{15}=$`)

func TestWebSocketLifecycle(t *testing.T) {
	fn := newFakeLambda()
	cfg := testConfig()
	cfg.Authorizer = true
	s := startServer(t, cfg, fn)

	header := http.Header{"User-Agent": {"lifecycle-test/1.0"}, "X-Custom": {"v1", "v2"}}
	conn := dial(t, s, "token=good&a=1&a=2&b=%2F", header)

	// The REQUEST authorizer runs first.
	authRaw := fn.next(t, kindAuthorizer)
	auth := decode[events.APIGatewayCustomAuthorizerRequestTypeRequest](t, authRaw)
	authCtx := decode[struct {
		RequestContext events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
	}](t, authRaw).RequestContext
	wsHost := strings.TrimPrefix(s.WSURL(), "ws://")
	wsHost = strings.TrimSuffix(wsHost, "/local")
	wantArn := "arn:aws:execute-api:us-east-1:123456789012:wsapilocal/local/$connect"
	checks := []struct {
		name string
		give any
		want any
	}{
		{"authorizer type", auth.Type, "REQUEST"},
		{"authorizer methodArn", auth.MethodArn, wantArn},
		{"authorizer token", auth.QueryStringParameters["token"], "good"},
		{"authorizer multi query", auth.MultiValueQueryStringParameters["a"], []string{"1", "2"}},
		{"authorizer header", auth.Headers["X-Custom"], "v2"},
		{"authorizer stage", auth.RequestContext.Stage, "local"},
		{"authorizer apiId", auth.RequestContext.APIID, "wsapilocal"},
		{"authorizer routeKey", authCtx.RouteKey, "$connect"},
		{"authorizer eventType", authCtx.EventType, "CONNECT"},
	}

	// Then $connect, with the authorizer's output in requestContext.authorizer.
	connect := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindConnect))
	rc := connect.RequestContext
	id := rc.ConnectionID
	if !connectionIDPattern.MatchString(id) {
		t.Errorf("connectionId %q does not look like API Gateway's", id)
	}
	checks = append(checks, []struct {
		name string
		give any
		want any
	}{
		{"authorizer connectionId", authCtx.ConnectionID, id},
		{"connect routeKey", rc.RouteKey, "$connect"},
		{"connect eventType", rc.EventType, "CONNECT"},
		{"connect messageDirection", rc.MessageDirection, "IN"},
		{"connect stage", rc.Stage, "local"},
		{"connect apiId", rc.APIID, "wsapilocal"},
		{"connect domainName", rc.DomainName, wsHost},
		{"connect sourceIp", rc.Identity.SourceIP, "127.0.0.1"},
		{"connect userAgent", rc.Identity.UserAgent, "lifecycle-test/1.0"},
		{"connect requestId set", rc.RequestID != "", true},
		{"connect extendedRequestId", rc.ExtendedRequestID, rc.RequestID},
		{"connect connectedAt set", rc.ConnectedAt > 0, true},
		{"connect requestTimeEpoch", rc.RequestTimeEpoch >= rc.ConnectedAt, true},
		{"connect requestTime", parsesAsCLF(rc.RequestTime), true},
		{"connect isBase64Encoded", connect.IsBase64Encoded, false},
		{"connect query", connect.QueryStringParameters, map[string]string{"token": "good", "a": "2", "b": "/"}},
		{"connect multi query", connect.MultiValueQueryStringParameters,
			map[string][]string{"token": {"good"}, "a": {"1", "2"}, "b": {"/"}}},
		{"connect header", connect.Headers["X-Custom"], "v2"},
		{"connect multi header", connect.MultiValueHeaders["X-Custom"], []string{"v1", "v2"}},
		{"connect Host", connect.Headers["Host"], wsHost},
		{"connect X-Forwarded-For", connect.Headers["X-Forwarded-For"], "127.0.0.1"},
		{"connect Upgrade", connect.Headers["Upgrade"], "websocket"},
		{"connect authorizer", rc.Authorizer, map[string]any{
			"principalId": "user-1", "sub": "user-1", "plan": "free", "n": float64(7),
			"integrationLatency": rc.Authorizer.(map[string]any)["integrationLatency"],
		}},
	}...)

	// $default: the fake echoes through @connections.
	writeText(t, conn, `{"action":"sendmessage","data":"hi"}`)
	if got := readText(t, conn); got != `{"action":"sendmessage","data":"hi"}` {
		t.Errorf("echo %q", got)
	}
	msg := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindMessage))
	mrc := msg.RequestContext
	checks = append(checks, []struct {
		name string
		give any
		want any
	}{
		{"message routeKey", mrc.RouteKey, "$default"},
		{"message eventType", mrc.EventType, "MESSAGE"},
		{"message messageDirection", mrc.MessageDirection, "IN"},
		{"message connectionId", mrc.ConnectionID, id},
		{"message connectedAt", mrc.ConnectedAt, rc.ConnectedAt},
		{"message messageId set", mrc.MessageID != nil && mrc.MessageID != "", true},
		{"message body", msg.Body, `{"action":"sendmessage","data":"hi"}`},
		{"message isBase64Encoded", msg.IsBase64Encoded, false},
		{"message authorizer principalId", mrc.Authorizer.(map[string]any)["principalId"], "user-1"},
		{"message new requestId", mrc.RequestID != rc.RequestID, true},
	}...)

	// The client closes: one DISCONNECT with its status and reason.
	if err := conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	disc := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindDisconnect))
	drc := disc.RequestContext
	reason := "<nil>"
	if drc.DisconnectReason != nil {
		reason = *drc.DisconnectReason
	}
	checks = append(checks, []struct {
		name string
		give any
		want any
	}{
		{"disconnect routeKey", drc.RouteKey, "$disconnect"},
		{"disconnect eventType", drc.EventType, "DISCONNECT"},
		{"disconnect connectionId", drc.ConnectionID, id},
		{"disconnect status", drc.DisconnectStatusCode, int64(1000)},
		{"disconnect reason", reason, "bye"},
		{"disconnect Host", disc.Headers["Host"], wsHost},
	}...)

	for _, c := range checks {
		if !reflect.DeepEqual(c.give, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.give, c.want)
		}
	}
	fn.none(t)
}

func parsesAsCLF(s string) bool {
	_, err := time.Parse("02/Jan/2006:15:04:05 -0700", s)
	return err == nil
}

func TestEventJSONShape(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	conn := dial(t, s, "", nil)
	connect := fn.next(t, kindConnect)
	writeText(t, conn, "x")
	readText(t, conn)
	message := fn.next(t, kindMessage)
	_ = conn.Close(websocket.StatusNormalClosure, "")
	disconnect := fn.next(t, kindDisconnect)

	tests := []struct {
		name     string
		give     []byte
		wantKeys []string
		noKeys   []string
	}{
		{"connect", connect, []string{"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"},
			[]string{"body", "queryStringParameters", "authorizer"}},
		{"message", message, []string{"requestContext", "body", "isBase64Encoded"},
			[]string{"headers", "authorizer"}},
		{"disconnect", disconnect, []string{"headers", "requestContext", "isBase64Encoded"},
			[]string{"body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var top map[string]json.RawMessage
			if err := json.Unmarshal(tt.give, &top); err != nil {
				t.Fatal(err)
			}
			var rc map[string]json.RawMessage
			if err := json.Unmarshal(top["requestContext"], &rc); err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.wantKeys {
				if top[k] == nil {
					t.Errorf("missing %q in %s", k, tt.give)
				}
			}
			for _, k := range tt.noKeys {
				if top[k] != nil || rc[k] != nil {
					t.Errorf("unexpected %q in %s", k, tt.give)
				}
			}
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	answer := func(out string, err error) func(context.Context, []byte) ([]byte, error) {
		return func(context.Context, []byte) ([]byte, error) { return []byte(out), err }
	}
	tests := []struct {
		name       string
		authorizer bool
		query      string
		kind       string // the event kind whose answer is overridden
		answer     func(context.Context, []byte) ([]byte, error)
		wantStatus int
		wantEvents []string
	}{
		{"connect 401", false, "", kindConnect, answer(`{"statusCode":401}`, nil), 401, []string{kindConnect}},
		{"connect 403", false, "", kindConnect, answer(`{"statusCode":403}`, nil), 403, []string{kindConnect}},
		{"connect 500", false, "", kindConnect, answer(`{"statusCode":500}`, nil), 500, []string{kindConnect}},
		{"connect error", false, "", kindConnect, answer("", errors.New("boom")), 500, []string{kindConnect}},
		{"connect without statusCode", false, "", kindConnect, answer(`{}`, nil), 500, []string{kindConnect}},
		{"connect not JSON", false, "", kindConnect, answer(`nope`, nil), 500, []string{kindConnect}},
		{"authorizer deny", true, "token=bad", "", nil, 403, []string{kindAuthorizer}},
		{"missing token", true, "", "", nil, 401, nil},
		{"empty token", true, "token=", "", nil, 401, nil},
		{"authorizer error", true, "token=good", kindAuthorizer, answer("", errors.New("boom")), 500,
			[]string{kindAuthorizer}},
		{"authorizer garbage", true, "token=good", kindAuthorizer, answer(`[1,2]`, nil), 500,
			[]string{kindAuthorizer}},
		{"authorizer allows another resource", true, "token=good", kindAuthorizer, answer(
			`{"principalId":"u","policyDocument":{"Version":"2012-10-17","Statement":[`+
				`{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:*:*:other/*"}]}}`, nil),
			403, []string{kindAuthorizer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := newFakeLambda()
			if tt.answer != nil {
				fn.on(tt.kind, tt.answer)
			}
			cfg := testConfig()
			cfg.Authorizer = tt.authorizer
			s := startServer(t, cfg, fn)

			conn, resp, err := dialRaw(s, tt.query, nil)
			if err == nil {
				conn.CloseNow()
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("dial: %v, response %+v, want status %d", err, resp, tt.wantStatus)
			}
			for _, k := range tt.wantEvents {
				fn.next(t, k)
			}
			fn.none(t) // in particular no DISCONNECT for a refused handshake
		})
	}
}

func TestAuthorizerPolicy(t *testing.T) {
	const arn = "arn:aws:execute-api:us-east-1:123456789012:wsapilocal/local/$connect"
	tests := []struct {
		name string
		give string
		want bool
	}{
		{"allow exact", `[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"` + arn + `"}]`, true},
		{"allow lists", `[{"Effect":"Allow","Action":["execute-api:Invoke"],"Resource":["x","` + arn + `"]}]`, true},
		{"allow wildcard", `[{"Effect":"Allow","Action":"execute-api:*","Resource":"arn:aws:execute-api:*:*:wsapilocal/*"}]`, true},
		{"allow star", `[{"Effect":"Allow","Action":"*","Resource":"*"}]`, true},
		{"deny wins", `[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*"}]`, false},
		{"deny", `[{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"` + arn + `"}]`, false},
		{"other action", `[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]`, false},
		{"other stage", `[{"Effect":"Allow","Action":"*","Resource":"arn:aws:execute-api:*:*:wsapilocal/prod/*"}]`, false},
		{"no statements", `[]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res authorizerResult
			doc := `{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":` + tt.give + `}}`
			if err := json.Unmarshal([]byte(doc), &res); err != nil {
				t.Fatal(err)
			}
			if got := res.allows(arn); got != tt.want {
				t.Errorf("allows = %v, want %v", got, tt.want)
			}
		})
	}
}

// frames writes msg as one message split into frames of at most frameSize
// bytes (coder/websocket sends each Writer.Write as one frame).
func writeFrames(conn *websocket.Conn, msg []byte, frameSize int) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	w, err := conn.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(frameSize, len(msg))
		if _, err := w.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return w.Close()
}

func TestSizeLimits(t *testing.T) {
	const kib = 1024
	tests := []struct {
		name      string
		size      int
		frameSize int
		wantClose websocket.StatusCode // 0: the message passes and is echoed
		wantFrame bool                 // closed by the frame limit, not the message limit
	}{
		{"frame at 32 KiB", 32 * kib, 32 * kib, 0, false},
		{"frame over 32 KiB", 32*kib + 1, 32*kib + 1, websocket.StatusMessageTooBig, true},
		{"large frame in a small message", 40 * kib, 40 * kib, websocket.StatusMessageTooBig, true},
		{"several frames at 32 KiB", 64*kib + 1, 32 * kib, 0, false}, // 32K + 32K + 1
		{"message at 128 KiB", 128 * kib, 32 * kib, 0, false},
		{"message over 128 KiB", 128*kib + 1, 32 * kib, websocket.StatusMessageTooBig, false},
		{"message far over 128 KiB", 512 * kib, 16 * kib, websocket.StatusMessageTooBig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := newFakeLambda()
			s := startServer(t, testConfig(), fn)
			conn := dial(t, s, "", nil)
			fn.next(t, kindConnect)

			msg := []byte(strings.Repeat("a", tt.size))
			writeErr := make(chan error, 1)
			go func() { writeErr <- writeFrames(conn, msg, tt.frameSize) }()

			if tt.wantClose == 0 {
				if err := <-writeErr; err != nil {
					t.Fatalf("write: %v", err)
				}
				if got := readText(t, conn); len(got) != tt.size {
					t.Fatalf("echo of %d bytes, want %d", len(got), tt.size)
				}
				ev := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindMessage))
				if len(ev.Body) != tt.size {
					t.Errorf("MESSAGE body of %d bytes, want %d", len(ev.Body), tt.size)
				}
				return
			}
			ce := readClose(t, conn)
			<-writeErr // may fail: the server stopped reading
			if ce.Code != tt.wantClose {
				t.Errorf("close %v %q, want %v", ce.Code, ce.Reason, tt.wantClose)
			}
			if byFrame := ce.Reason == "Frame size too large"; byFrame != tt.wantFrame {
				t.Errorf("close reason %q: closed by the frame limit = %v, want %v", ce.Reason, byFrame, tt.wantFrame)
			}
			ev := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindDisconnect))
			if got := ev.RequestContext.DisconnectStatusCode; got != int64(tt.wantClose) {
				t.Errorf("disconnectStatusCode %d, want %d", got, tt.wantClose)
			}
			fn.none(t) // the oversized message was never invoked
		})
	}
}

func TestBinaryMessageCloses1003(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	conn := dial(t, s, "", nil)
	fn.next(t, kindConnect)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, conn); ce.Code != websocket.StatusUnsupportedData {
		t.Errorf("close %v, want 1003", ce.Code)
	}
	ev := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindDisconnect))
	if got := ev.RequestContext.DisconnectStatusCode; got != 1003 {
		t.Errorf("disconnectStatusCode %d, want 1003", got)
	}
	fn.none(t)
}

func TestConnectionTimeouts(t *testing.T) {
	tests := []struct {
		name       string
		idle, life time.Duration
		keepAlive  int // messages sent 100 ms apart before going quiet
		wantReason string
	}{
		{"idle timeout", 400 * time.Millisecond, time.Minute, 4, "Idle timeout"},
		{"maximum connection life", time.Minute, 500 * time.Millisecond, 0, "Maximum connection duration reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := newFakeLambda()
			cfg := testConfig()
			cfg.IdleTimeout = tt.idle
			cfg.MaxConnectionLife = tt.life
			s := startServer(t, cfg, fn)
			start := time.Now() // before the server can start its timers
			conn := dial(t, s, "", nil)
			fn.next(t, kindConnect)

			// Messages keep the socket open past the idle timeout.
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < tt.keepAlive; i++ {
				<-tick.C
				writeText(t, conn, "ping")
				if got := readText(t, conn); got != "ping" {
					t.Fatalf("echo %q", got)
				}
				fn.next(t, kindMessage)
			}

			ce := readClose(t, conn)
			if ce.Code != websocket.StatusGoingAway || ce.Reason != tt.wantReason {
				t.Errorf("close %v %q, want 1001 %q", ce.Code, ce.Reason, tt.wantReason)
			}
			if el, min := time.Since(start), min(tt.idle, tt.life); el < min {
				t.Errorf("closed after %v, before %v", el, min)
			}
			ev := decode[events.APIGatewayWebsocketProxyRequest](t, fn.next(t, kindDisconnect))
			rc := ev.RequestContext
			if rc.DisconnectStatusCode != 1001 || rc.DisconnectReason == nil || *rc.DisconnectReason != tt.wantReason {
				t.Errorf("DISCONNECT %d %v, want 1001 %q", rc.DisconnectStatusCode, rc.DisconnectReason, tt.wantReason)
			}
		})
	}
}

func TestSlowMessageDoesNotBlockOthers(t *testing.T) {
	fn := newFakeLambda()
	release := make(chan struct{})
	defer close(release)
	echo := fn.echo
	fn.on(kindMessage, func(ctx context.Context, payload []byte) ([]byte, error) {
		var ev events.APIGatewayWebsocketProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		if ev.Body == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return echo(ctx, payload)
	})
	s := startServer(t, testConfig(), fn)
	slowConn := dial(t, s, "", nil)
	fn.next(t, kindConnect)
	writeText(t, slowConn, "slow")
	fn.next(t, kindMessage)

	// The same socket and another socket are both still served.
	writeText(t, slowConn, "fast")
	if got := readText(t, slowConn); got != "fast" {
		t.Errorf("same socket: got %q, want fast", got)
	}
	other := dial(t, s, "", nil)
	writeText(t, other, "other")
	if got := readText(t, other); got != "other" {
		t.Errorf("other socket: got %q", got)
	}
}

func TestUnknownPathForbidden(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	tests := []struct {
		name string
		path string
		want int
	}{
		{"other stage", "/prod", http.StatusForbidden},
		{"deeper path", "/local/x", http.StatusForbidden},
		{"plain GET on the stage", "/local", http.StatusUpgradeRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get("http://" + s.wsLn.Addr().String() + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	fn.none(t)
}
