package apigw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

type httpCase struct {
	name    string
	method  string
	path    string // path and query, as sent
	host    string
	header  http.Header
	body    []byte
	chunked bool // send the body without a Content-Length
}

func (c httpCase) do(t *testing.T, s *Server) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
		if c.chunked {
			body = io.MultiReader(body) // hides the length from net/http
		}
	}
	req, err := http.NewRequest(c.method, s.HTTPURL()+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestHTTPEvent(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	port := s.httpLn.Addr().String()[strings.LastIndex(s.httpLn.Addr().String(), ":")+1:]

	tests := []struct {
		give httpCase
		want func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage)
	}{
		{
			give: httpCase{
				name: "repeats, escapes and cookies", method: http.MethodGet,
				path: "/a%2Fb/c?a=1&a=2&b=%2F", host: "k3x9q2.localhost:8000",
				header: http.Header{
					"X-Rep":      {"1", "2"},
					"Cookie":     {"a=1; b=2", "c=3"},
					"User-Agent": {"event-test/1"},
				},
			},
			want: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				rc := ev.RequestContext
				checkAll(t, []check{
					{"version", ev.Version, "2.0"},
					{"routeKey", ev.RouteKey, "$default"},
					{"rawPath", ev.RawPath, "/a%2Fb/c"},
					{"rawQueryString", ev.RawQueryString, "a=1&a=2&b=%2F"},
					{"queryStringParameters", ev.QueryStringParameters, map[string]string{"a": "1,2", "b": "/"}},
					{"repeated header", ev.Headers["x-rep"], "1,2"},
					{"cookies", ev.Cookies, []string{"a=1", "b=2", "c=3"}},
					{"no cookie header", ev.Headers["cookie"], ""},
					{"host header", ev.Headers["host"], "k3x9q2.localhost:8000"},
					{"user-agent header", ev.Headers["user-agent"], "event-test/1"},
					{"x-forwarded-for", ev.Headers["x-forwarded-for"], "127.0.0.1"},
					{"x-forwarded-proto", ev.Headers["x-forwarded-proto"], "http"},
					{"x-forwarded-port", ev.Headers["x-forwarded-port"], port},
					{"x-amzn-trace-id", strings.HasPrefix(ev.Headers["x-amzn-trace-id"], "Root=1-"), true},
					{"accountId", rc.AccountID, "123456789012"},
					{"apiId", rc.APIID, "httpapiloc"},
					{"domainName", rc.DomainName, "k3x9q2.localhost:8000"},
					{"domainPrefix", rc.DomainPrefix, "k3x9q2"},
					{"http.method", rc.HTTP.Method, "GET"},
					{"http.path", rc.HTTP.Path, "/a/b/c"},
					{"http.protocol", rc.HTTP.Protocol, "HTTP/1.1"},
					{"http.sourceIp", rc.HTTP.SourceIP, "127.0.0.1"},
					{"http.userAgent", rc.HTTP.UserAgent, "event-test/1"},
					{"requestId", len(rc.RequestID), 16},
					{"routeKey in context", rc.RouteKey, "$default"},
					{"stage", rc.Stage, "$default"},
					{"time", parsesAsCLF(rc.Time), true},
					{"timeEpoch", rc.TimeEpoch > 0, true},
					{"isBase64Encoded", ev.IsBase64Encoded, false},
					{"no body key", raw["body"] == nil, true},
					{"isBase64Encoded key", raw["isBase64Encoded"] != nil, true},
				})
				var rcRaw map[string]json.RawMessage
				_ = json.Unmarshal(raw["requestContext"], &rcRaw)
				if rcRaw["authentication"] != nil {
					t.Errorf("requestContext.authentication present without mTLS")
				}
			},
		},
		{
			give: httpCase{name: "no query", method: http.MethodGet, path: "/"},
			want: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				checkAll(t, []check{
					{"rawQueryString", ev.RawQueryString, ""},
					{"no queryStringParameters", raw["queryStringParameters"] == nil, true},
					{"no cookies", raw["cookies"] == nil, true},
				})
			},
		},
		{
			give: httpCase{name: "binary body", method: http.MethodPost, path: "/up",
				header: http.Header{"Content-Type": {"application/octet-stream"}}, body: []byte{0, 1, 2, 0xff}},
			want: bodyWant("AAEC/w==", true),
		},
		{
			give: httpCase{name: "json body", method: http.MethodPost, path: "/up",
				header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"a":1}`)},
			want: bodyWant(`{"a":1}`, false),
		},
		{
			give: httpCase{name: "utf-8 text body", method: http.MethodPut, path: "/up",
				header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, body: []byte("héllo")},
			want: bodyWant("héllo", false),
		},
		{
			give: httpCase{name: "text type with invalid utf-8", method: http.MethodPost, path: "/up",
				header: http.Header{"Content-Type": {"text/plain"}}, body: []byte{0xff, 0xfe}},
			want: bodyWant("//4=", true),
		},
		{
			give: httpCase{name: "no content type", method: http.MethodPost, path: "/up", body: []byte("abc")},
			want: bodyWant("YWJj", true),
		},
		{
			give: httpCase{name: "chunked body", method: http.MethodPost, path: "/up", chunked: true,
				header: http.Header{"Content-Type": {"application/vnd.api+json"}}, body: []byte(`{"x":true}`)},
			want: bodyWant(`{"x":true}`, false),
		},
		{
			give: httpCase{name: "HEAD", method: http.MethodHead, path: "/h"},
			want: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, _ map[string]json.RawMessage) {
				checkAll(t, []check{{"method", ev.RequestContext.HTTP.Method, "HEAD"}})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.give.name, func(t *testing.T) {
			resp, _ := tt.give.do(t, s)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			payload := fn.next(t, kindHTTP)
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(payload, &raw); err != nil {
				t.Fatal(err)
			}
			tt.want(t, decode[events.APIGatewayV2HTTPRequest](t, payload), raw)
		})
	}
}

type check struct {
	name       string
	give, want any
}

func checkAll(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		if !reflect.DeepEqual(c.give, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.give, c.want)
		}
	}
}

func bodyWant(body string, b64 bool) func(*testing.T, events.APIGatewayV2HTTPRequest, map[string]json.RawMessage) {
	return func(t *testing.T, ev events.APIGatewayV2HTTPRequest, _ map[string]json.RawMessage) {
		checkAll(t, []check{{"body", ev.Body, body}, {"isBase64Encoded", ev.IsBase64Encoded, b64}})
	}
}

func TestHTTPResponse(t *testing.T) {
	fn := newFakeLambda()
	// The test's answer travels in the X-Answer header: the fake returns it.
	fn.on(kindHTTP, func(_ context.Context, payload []byte) ([]byte, error) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		return []byte(ev.Headers["x-answer"]), nil
	})
	s := startServer(t, testConfig(), fn)

	tests := []struct {
		name       string
		method     string
		give       string // the function's result
		wantStatus int
		wantHeader http.Header
		wantBody   string
	}{
		{
			name: "several cookies", method: http.MethodGet,
			give:       `{"statusCode":200,"headers":{"content-type":"text/plain"},"cookies":["a=1; Path=/","b=2; HttpOnly"],"body":"hi"}`,
			wantStatus: 200,
			wantHeader: http.Header{"Set-Cookie": {"a=1; Path=/", "b=2; HttpOnly"}, "Content-Type": {"text/plain"}},
			wantBody:   "hi",
		},
		{
			name: "base64 body", method: http.MethodGet,
			give:       `{"statusCode":201,"headers":{"content-type":"application/octet-stream"},"body":"AAEC/w==","isBase64Encoded":true}`,
			wantStatus: 201, wantHeader: http.Header{"Content-Length": {"4"}}, wantBody: "\x00\x01\x02\xff",
		},
		{
			name: "204", method: http.MethodGet, give: `{"statusCode":204,"body":"dropped"}`,
			wantStatus: 204, wantBody: "",
		},
		{
			name: "multiValueHeaders", method: http.MethodGet,
			give:       `{"statusCode":200,"headers":{"x-one":"a, b"},"multiValueHeaders":{"x-multi":["1","2"]},"body":""}`,
			wantStatus: 200, wantHeader: http.Header{"X-One": {"a, b"}, "X-Multi": {"1", "2"}},
		},
		{
			name: "json without statusCode", method: http.MethodGet, give: `{"hello":"world"}`,
			wantStatus: 200, wantHeader: http.Header{"Content-Type": {"application/json"}}, wantBody: `{"hello":"world"}`,
		},
		{
			name: "HEAD has no body", method: http.MethodHead,
			give:       `{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"not sent"}`,
			wantStatus: 200, wantBody: "",
		},
		{
			name: "404 from the function", method: http.MethodGet,
			give:       `{"statusCode":404,"headers":{"content-type":"text/plain"},"body":"no such page"}`,
			wantStatus: 404, wantBody: "no such page",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := httpCase{name: tt.name, method: tt.method, path: "/r", header: http.Header{"X-Answer": {tt.give}}}
			resp, body := c.do(t, s)
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			for k, want := range tt.wantHeader {
				if got := resp.Header.Values(k); !reflect.DeepEqual(got, want) {
					t.Errorf("header %s: %q, want %q", k, got, want)
				}
			}
			if resp.Header.Get("Apigw-Requestid") == "" {
				t.Error("no Apigw-Requestid header")
			}
			fn.next(t, kindHTTP)
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	fn := newFakeLambda()
	fn.on(kindHTTP, func(ctx context.Context, payload []byte) ([]byte, error) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		switch ev.RawPath {
		case "/error":
			return nil, errors.New("handler failed")
		case "/panic":
			panic("handler panicked")
		case "/slow":
			<-ctx.Done()
			return nil, ctx.Err()
		case "/garbage":
			return []byte("not json"), nil
		case "/bad-base64":
			return []byte(`{"statusCode":200,"body":"***","isBase64Encoded":true}`), nil
		case "/no-status":
			return []byte(`{"statusCode":0}`), nil
		case "/big-result":
			return json.Marshal(map[string]any{"statusCode": 200, "body": strings.Repeat("r", 7000)})
		}
		return []byte(`{"statusCode":200,"body":"ok"}`), nil
	})
	cfg := testConfig()
	cfg.IntegrationTimeout = 300 * time.Millisecond
	cfg.MaxRequestBytes = 8192
	cfg.MaxLambdaPayload = 6000
	s := startServer(t, cfg, fn)

	const (
		internal    = `{"message":"Internal Server Error"}`
		unavailable = `{"message":"Service Unavailable"}`
		tooLarge    = `{"message":"Request Entity Too Large"}`
	)
	octet := http.Header{"Content-Type": {"application/octet-stream"}}
	tests := []struct {
		give        httpCase
		wantStatus  int
		wantBody    string
		wantInvoked bool
	}{
		{httpCase{name: "invoker error", method: "GET", path: "/error"}, 500, internal, true},
		{httpCase{name: "invoker panic", method: "GET", path: "/panic"}, 500, internal, true},
		{httpCase{name: "result not JSON", method: "GET", path: "/garbage"}, 500, internal, true},
		{httpCase{name: "bad base64 body", method: "GET", path: "/bad-base64"}, 500, internal, true},
		{httpCase{name: "statusCode 0", method: "GET", path: "/no-status"}, 500, internal, true},
		{httpCase{name: "integration timeout", method: "GET", path: "/slow"}, 503, unavailable, true},
		{httpCase{name: "body at the limit", method: "POST", path: "/ok", body: bytes.Repeat([]byte("a"), 4000),
			header: http.Header{"Content-Type": {"text/plain"}}}, 200, "ok", true},
		{httpCase{name: "body over the limit", method: "POST", path: "/ok", body: make([]byte, 8193)},
			413, tooLarge, false},
		{httpCase{name: "chunked body over the limit", method: "POST", path: "/ok", body: make([]byte, 8193),
			chunked: true}, 413, tooLarge, false},
		{httpCase{name: "event over the lambda limit", method: "POST", path: "/ok", body: make([]byte, 5000),
			header: octet}, 413, tooLarge, false},
		{httpCase{name: "result over the lambda limit", method: "GET", path: "/big-result"}, 500, internal, true},
	}
	for _, tt := range tests {
		t.Run(tt.give.name, func(t *testing.T) {
			start := time.Now()
			resp, body := tt.give.do(t, s)
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus != 200 && resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content-type %q", resp.Header.Get("Content-Type"))
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("answered after %v", el)
			}
			if tt.wantInvoked {
				fn.next(t, kindHTTP)
			}
			fn.none(t)
		})
	}
}

func TestHTTPHeaderLimit(t *testing.T) {
	fn := newFakeLambda()
	s := startServer(t, testConfig(), fn)
	tests := []struct {
		name       string
		giveBytes  int // of one header value; the rest of the request is under 200 bytes
		wantStatus int
		wantBody   string
	}{
		{"under 10240 bytes", 10240 - 200, 200, "ok"},
		{"over 10240 bytes", 10240, 431, `{"message":"Request Header Fields Too Large"}`},
		{"far over", 64 << 10, 431, ""}, // refused by net/http before the handler
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := httpCase{name: tt.name, method: http.MethodGet, path: "/h",
				header: http.Header{"X-Big": {strings.Repeat("h", tt.giveBytes)}}}
			resp, body := c.do(t, s)
			if resp.StatusCode != tt.wantStatus || (tt.wantBody != "" && string(body) != tt.wantBody) {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == 200 {
				fn.next(t, kindHTTP)
			}
			fn.none(t)
		})
	}
}

func TestHTTPSlowInvocationDoesNotBlock(t *testing.T) {
	fn := newFakeLambda()
	release := make(chan struct{})
	fn.on(kindHTTP, func(ctx context.Context, payload []byte) ([]byte, error) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		if ev.RawPath == "/slow" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return []byte(`{"statusCode":200,"body":"` + ev.RawPath + `"}`), nil
	})
	s := startServer(t, testConfig(), fn)

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.HTTPURL() + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	fn.next(t, kindHTTP) // the slow request is being handled

	resp, body := httpCase{name: "fast", method: http.MethodGet, path: "/fast"}.do(t, s)
	if resp.StatusCode != 200 || string(body) != "/fast" {
		t.Errorf("fast request: %d %q", resp.StatusCode, body)
	}
	close(release)
	if got := <-slow; got != "/slow" {
		t.Errorf("slow request: %q", got)
	}
}

func TestIsTextBody(t *testing.T) {
	tests := []struct {
		give string
		body []byte
		want bool
	}{
		{"text/html; charset=utf-8", []byte("<p>"), true},
		{"application/json", []byte("{}"), true},
		{"application/problem+json", []byte("{}"), true},
		{"application/atom+xml", []byte("<a/>"), true},
		{"application/x-www-form-urlencoded", []byte("a=1"), true},
		{"application/octet-stream", []byte("abc"), false},
		{"image/png", []byte("abc"), false},
		{"", []byte("abc"), false},
		{"text/plain", []byte{0xff}, false},
		{"not a media type;;", []byte("abc"), false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := isTextBody(tt.give, tt.body); got != tt.want {
				t.Errorf("isTextBody(%q, %q) = %v, want %v", tt.give, tt.body, got, tt.want)
			}
		})
	}
}
