package forward

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// seen is what the local app received.
type seen struct {
	host, requestURI string
	header           http.Header
}

func newOrigin(t *testing.T, h http.HandlerFunc) (port int, got chan seen) {
	t.Helper()
	got = make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- seen{r.Host, r.RequestURI, r.Header.Clone()}:
		default:
		}
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port, got
}

func newForwarder(t *testing.T, cfg Config) *Forwarder {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func request(uri string, h protocol.Headers) *protocol.Request {
	return &protocol.Request{RequestID: "r1", Method: "GET", URI: uri, Headers: h, Final: true}
}

func TestHostHeaderModes(t *testing.T) {
	port, got := newOrigin(t, nil)
	local := "127.0.0.1:" + strconv.Itoa(port)
	give := []struct {
		mode    string
		headers protocol.Headers
		want    string
	}{
		{"", protocol.Headers{"Host": {"abc.tunnel.example.com"}}, "abc.tunnel.example.com"},
		{HostPreserve, protocol.Headers{"Host": {"abc.tunnel.example.com"}}, "abc.tunnel.example.com"},
		{HostPreserve, protocol.Headers{"X-Forwarded-Host": {"fwd.example.com"}}, "fwd.example.com"},
		{HostPreserve, nil, local},
		{HostRewrite, protocol.Headers{"Host": {"abc.tunnel.example.com"}}, local},
		{"myapp.test:3000", protocol.Headers{"Host": {"abc.tunnel.example.com"}}, "myapp.test:3000"},
	}
	for _, tt := range give {
		t.Run(tt.mode+"/"+tt.want, func(t *testing.T) {
			f := newForwarder(t, Config{Port: port, HostHeader: tt.mode})
			resp := f.Serve(context.Background(), request("/", tt.headers))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if s := <-got; s.host != tt.want {
				t.Fatalf("Host %q, want %q", s.host, tt.want)
			}
		})
	}
}

func TestBadHostHeaderValue(t *testing.T) {
	if _, err := New(Config{Port: 80, HostHeader: "a b"}); err == nil {
		t.Fatal("a host header with a space was accepted")
	}
	if _, err := New(Config{Port: 0}); err == nil {
		t.Fatal("port 0 was accepted")
	}
}

func TestRequestPassesThroughExactly(t *testing.T) {
	port, got := newOrigin(t, nil)
	f := newForwarder(t, Config{Port: port})
	give := []string{"/", "/a%2Fb/c%20d?x=1&x=2&y=%2F", "/p?", "/p?a=1;b=2", "//double/slash?q", "/caf%C3%A9"}
	for _, uri := range give {
		t.Run(uri, func(t *testing.T) {
			f.Serve(context.Background(), request(uri, protocol.Headers{"X-A": {"1,2"}, "Cookie": {"a=1; b=2"}}))
			s := <-got
			if s.requestURI != uri {
				t.Fatalf("request URI %q, want %q", s.requestURI, uri)
			}
			if v := s.header["X-A"]; len(v) != 1 || v[0] != "1,2" {
				t.Fatalf("X-A %q", v)
			}
			if v := s.header.Get("Cookie"); v != "a=1; b=2" {
				t.Fatalf("Cookie %q", v)
			}
			for _, h := range []string{"User-Agent", "Accept-Encoding"} {
				if v, ok := s.header[h]; ok {
					t.Fatalf("the agent added %s: %q", h, v)
				}
			}
		})
	}
}

func TestClientUserAgentKept(t *testing.T) {
	port, got := newOrigin(t, nil)
	f := newForwarder(t, Config{Port: port})
	f.Serve(context.Background(), request("/", protocol.Headers{"User-Agent": {"curl/8"}, "Accept-Encoding": {"gzip"}}))
	s := <-got
	if s.header.Get("User-Agent") != "curl/8" || s.header.Get("Accept-Encoding") != "gzip" {
		t.Fatalf("headers %v", s.header)
	}
}

func TestResponsePassesThrough(t *testing.T) {
	port, _ := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Set-Cookie"] = []string{"a=1", "b=2"}
		w.Header()["X-Multi"] = []string{"x", "y"}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
		w.Write([]byte{0x1f, 0x8b, 0, 1, 2})
	})
	f := newForwarder(t, Config{Port: port})
	resp := f.Serve(context.Background(), request("/", nil))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d: the redirect was followed", resp.StatusCode)
	}
	if v := resp.Headers["Set-Cookie"]; len(v) != 2 {
		t.Fatalf("Set-Cookie %q", v)
	}
	if v := resp.Headers["X-Multi"]; len(v) != 2 || v[0] != "x" || v[1] != "y" {
		t.Fatalf("X-Multi %q", v)
	}
	body, _ := protocol.DecodeBody(resp.Body)
	if string(body) != "\x1f\x8b\x00\x01\x02" || resp.Headers["Content-Encoding"][0] != "gzip" {
		t.Fatalf("body %q encoding %q: not passed through", body, resp.Headers["Content-Encoding"])
	}
}

func TestFailures(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	slowPort, _ := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	bigPort, _ := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 2048))
	})
	give := []struct {
		name       string
		cfg        Config
		wantStatus int
		wantBody   string
	}{
		{"down", Config{Port: closedPort}, 502, "the agent could not reach the local app at http://127.0.0.1:" + strconv.Itoa(closedPort) + ": connection refused"},
		{"slow", Config{Port: slowPort, Timeout: 200 * time.Millisecond}, 504, "did not answer within 200ms"},
		{"too large", Config{Port: bigPort, MaxResponseBytes: 2047}, 502, "over the 2047 bytes"},
		{"just fits", Config{Port: bigPort, MaxResponseBytes: 2048}, 200, ""},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			f := newForwarder(t, tt.cfg)
			start := time.Now()
			resp := f.Serve(context.Background(), request("/", nil))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			body, _ := protocol.DecodeBody(resp.Body)
			if !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("body %q does not say %q", body, tt.wantBody)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

func TestRequestBodyAndMethod(t *testing.T) {
	port, _ := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 100)
		n, _ := r.Body.Read(buf)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Write(buf[:n])
	})
	f := newForwarder(t, Config{Port: port})
	req := request("/", nil)
	req.Method, req.Body = "PATCH", protocol.EncodeBody([]byte("hello"))
	resp := f.Serve(context.Background(), req)
	body, _ := protocol.DecodeBody(resp.Body)
	if string(body) != "hello" || resp.Headers["X-Method"][0] != "PATCH" || resp.Headers["X-Length"][0] != "5" {
		t.Fatalf("got %q %v", body, resp.Headers)
	}
}

func TestLocalHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	}))
	t.Cleanup(srv.Close)
	port, _ := strconv.Atoi(srv.URL[strings.LastIndex(srv.URL, ":")+1:])
	give := []struct {
		skip bool
		want int
	}{{true, 200}, {false, 502}}
	for _, tt := range give {
		f := newForwarder(t, Config{Port: port, HTTPS: true, InsecureSkipVerify: tt.skip})
		resp := f.Serve(context.Background(), request("/", nil))
		body, _ := protocol.DecodeBody(resp.Body)
		if resp.StatusCode != tt.want {
			t.Fatalf("skip verify %v: status %d %q, want %d", tt.skip, resp.StatusCode, body, tt.want)
		}
		if tt.want == 200 && string(body) != "HTTP/1.1" {
			t.Fatalf("spoke %q to the local app, want HTTP/1.1", body)
		}
	}
}
