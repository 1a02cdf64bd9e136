package session

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lambdatunnel/lambdatunnel/pkg/apigw"
	"github.com/lambdatunnel/lambdatunnel/pkg/local"
	"github.com/lambdatunnel/lambdatunnel/pkg/local/localtest"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// startService runs the whole service in this process on free ports.
func startService(t *testing.T, gw apigw.Config) *local.Service {
	t.Helper()
	return localtest.Start(t, local.Config{Gateway: gw})
}

// events records what the manager reports.
type events struct {
	noEvents
	mu    sync.Mutex
	ready chan *protocol.Ready
	lost  chan string
}

func newEvents() *events {
	return &events{ready: make(chan *protocol.Ready, 10), lost: make(chan string, 10)}
}

func (e *events) Ready(r *protocol.Ready)               { e.ready <- r }
func (e *events) Reconnected(r *protocol.Ready, _ bool) { e.ready <- r }
func (e *events) Lost(reason string, _ time.Duration)   { e.lost <- reason }

// runManager runs a manager until the test ends and returns its first
// ready.
func runManager(t *testing.T, cfg Config, ev *events) *protocol.Ready {
	t.Helper()
	cfg.Events = ev
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("manager did not stop within 15s")
		}
	})
	select {
	case r := <-ev.ready:
		return r
	case err := <-done:
		t.Fatalf("manager ended before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no ready within 10s")
	}
	return nil
}

// get sends a public request to a tunnel of svc.
func get(t *testing.T, svc *local.Service, publicURL, path string) (*http.Response, string) {
	t.Helper()
	u, err := url.Parse(publicURL)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", svc.HTTPURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = u.Host
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRotateAfter(t *testing.T) {
	give := []struct{ life, drain, want time.Duration }{
		{2 * time.Hour, 3 * time.Second, 115 * time.Minute},
		{20 * time.Minute, 3 * time.Second, 16 * time.Minute},
		{10 * time.Second, 3 * time.Second, 5 * time.Second},
		{8 * time.Second, 3 * time.Second, 4 * time.Second},
		{30 * time.Second, 3 * time.Second, 24 * time.Second},
	}
	for _, tt := range give {
		if got := RotateAfter(tt.life, tt.drain); got != tt.want {
			t.Errorf("RotateAfter(%v, %v) = %v, want %v", tt.life, tt.drain, got, tt.want)
		}
	}
}

// The emulator closes a socket with 1009 at a frame over 32 KiB: a large
// message written as the agent writes it passes, the same message in one
// frame does not.
func TestFramesStayWithinLimit(t *testing.T) {
	svc := startService(t, apigw.Config{})
	big := `{"type":"ping","pad":"` + strings.Repeat("x", 120<<10) + `"}`
	give := []struct {
		name     string
		write    func(ctx context.Context, c *websocket.Conn) error
		want1009 bool
	}{
		{"agent frames", func(ctx context.Context, c *websocket.Conn) error {
			return writeMessage(ctx, c, []byte(big), protocol.MaxFrameBytes)
		}, false},
		{"one frame", func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageText, []byte(big))
		}, true},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, svc.WSURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := tt.write(ctx, c); err != nil {
				t.Fatal(err)
			}
			// The padded ping is a valid ping (unknown fields are ignored):
			// a pong means the socket took it.
			_, data, err := c.Read(ctx)
			if tt.want1009 {
				if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
					t.Fatalf("read: %v (code %d), want close 1009", err, code)
				}
				return
			}
			if err != nil {
				t.Fatalf("socket closed: %v", err)
			}
			if m, err := protocol.Decode(data); err != nil || m.MessageType() != protocol.TypePong {
				t.Fatalf("answer %s (%v), want pong", data, err)
			}
		})
	}
}

// Requests beyond MaxInFlight get an immediate 503 from the agent.
func TestInFlightBound(t *testing.T) {
	svc := startService(t, apigw.Config{})
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	handler := HandlerFunc(func(ctx context.Context, req *protocol.Request) *protocol.Response {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &protocol.Response{RequestID: req.RequestID, StatusCode: 200, Final: true}
	})
	ready := runManager(t, Config{Server: svc.WSURL(), Handler: handler, MaxInFlight: 2}, newEvents())

	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, _ := get(t, svc, ready.URL, "/slow"); resp != nil {
				statuses <- resp.StatusCode
			}
		}()
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the first two requests did not reach the handler")
		}
	}
	start := time.Now()
	resp, body := get(t, svc, ready.URL, "/third")
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Lambdatunnel-Error") != "agent_busy" {
		t.Fatalf("third request: %v %q, want 503 agent_busy", resp, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the 503 took %v", d)
	}
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Fatalf("a request within the bound got %d", s)
		}
	}
}

// A socket whose pings go unanswered is given up and dialled again.
func TestNoPongReconnects(t *testing.T) {
	var mu sync.Mutex
	hellos := 0
	srv := newFakeService(t, func(ctx context.Context, c *websocket.Conn) {
		eachMessage(ctx, c, func(m protocol.Message) {
			if h, ok := m.(*protocol.Hello); ok {
				mu.Lock()
				hellos++
				mu.Unlock()
				b, _ := protocol.Encode(&protocol.Ready{URL: "http://x.test", Subdomain: "x", ReclaimKey: "k" + h.ReclaimKey})
				_ = c.Write(ctx, websocket.MessageText, b)
			}
			// pings are never answered
		})
	})
	ev := newEvents()
	runManager(t, Config{
		Server:       srv,
		Handler:      HandlerFunc(func(context.Context, *protocol.Request) *protocol.Response { return nil }),
		PingInterval: 100 * time.Millisecond,
		PongTimeout:  200 * time.Millisecond,
	}, ev)
	select {
	case reason := <-ev.lost:
		if !strings.Contains(reason, "no answer to a ping") {
			t.Fatalf("lost because %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent socket was not given up")
	}
	select {
	case r := <-ev.ready:
		if r.URL != "http://x.test" {
			t.Fatalf("reconnected to %q", r.URL)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect")
	}
}

func newFakeService(t *testing.T, serve func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		serve(r.Context(), c)
	})}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "ws://" + ln.Addr().String()
}

// The first connection's errors end Run with a sentence.
func TestFirstConnectErrors(t *testing.T) {
	svc := startService(t, apigw.Config{})
	holder := runManager(t, Config{Server: svc.WSURL(), Subdomain: "taken", Handler: HandlerFunc(func(context.Context, *protocol.Request) *protocol.Response { return nil })}, newEvents())
	_ = holder
	ln := listen(t)
	closed := "ws://" + ln.Addr().String()
	ln.Close()
	give := []struct {
		name, server, sub, want string
	}{
		{"in use", svc.WSURL(), "taken", `subdomain "taken" is in use`},
		{"invalid", svc.WSURL(), "-bad-", "subdomain"},
		{"unreachable", closed, "", "connection refused"},
		{"not websocket", "ftp://x", "", "use ws:// or wss://"},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{Server: tt.server, Subdomain: tt.sub, Handler: HandlerFunc(func(context.Context, *protocol.Request) *protocol.Response { return nil })})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = m.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want an error saying %q", err, tt.want)
			}
			var se *ServiceError
			if tt.name == "in use" && (!errors.As(err, &se) || se.Code != protocol.CodeSubdomainInUse) {
				t.Fatalf("error %T %v is not a subdomain_in_use ServiceError", err, err)
			}
		})
	}
}

// The service records the route before it posts ready, so a request can
// arrive before ready; it is served, not dropped.
func TestRequestBeforeReady(t *testing.T) {
	answered := make(chan *protocol.Response, 1)
	srv := newFakeService(t, func(ctx context.Context, c *websocket.Conn) {
		eachMessage(ctx, c, func(m protocol.Message) {
			switch m := m.(type) {
			case *protocol.Hello:
				req, _ := protocol.Encode(&protocol.Request{RequestID: "early-1", Method: "GET", URI: "/early", Final: true})
				ready, _ := protocol.Encode(&protocol.Ready{URL: "http://x.test", Subdomain: "x", ReclaimKey: "k"})
				_ = c.Write(ctx, websocket.MessageText, req)
				_ = c.Write(ctx, websocket.MessageText, ready)
			case *protocol.Response:
				answered <- m
			}
		})
	})
	handler := HandlerFunc(func(_ context.Context, req *protocol.Request) *protocol.Response {
		return &protocol.Response{RequestID: req.RequestID, StatusCode: 299, Final: true, Body: protocol.EncodeBody([]byte(req.URI))}
	})
	runManager(t, Config{Server: srv, Handler: handler}, newEvents())
	select {
	case r := <-answered:
		if r.RequestID != "early-1" || r.StatusCode != 299 || !r.Final {
			t.Fatalf("answer %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request that came before ready was not answered")
	}
}

// Malformed or out-of-order request chunks are answered with 400 (or 413
// past the size bound), never served, never a panic.
func TestBadRequestsAnswered(t *testing.T) {
	give := []struct {
		name     string
		messages []string
		wantID   string
		want     int
	}{
		{"gap", []string{
			`{"type":"request","requestId":"gap-1","seq":0,"final":false,"method":"POST","uri":"/","body":"AAAA"}`,
			`{"type":"request","requestId":"gap-1","seq":2,"final":true,"body":"AAAA"}`,
		}, "gap-1", 400},
		{"bad method", []string{`{"type":"request","requestId":"bad-1","seq":0,"final":true,"method":"G T","uri":"/"}`}, "bad-1", 400},
		{"bad base64", []string{`{"type":"request","requestId":"b64-1","seq":0,"final":true,"method":"GET","uri":"/","body":"!!"}`}, "b64-1", 400},
		{"too large", []string{
			`{"type":"request","requestId":"big-1","seq":0,"final":false,"method":"POST","uri":"/","body":"AAAAAAAA"}`,
			`{"type":"request","requestId":"big-1","seq":1,"final":true,"body":"AAAAAAAA"}`,
		}, "big-1", 413},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			answered := make(chan *protocol.Response, 1)
			srv := newFakeService(t, func(ctx context.Context, c *websocket.Conn) {
				eachMessage(ctx, c, func(m protocol.Message) {
					switch m := m.(type) {
					case *protocol.Hello:
						ready, _ := protocol.Encode(&protocol.Ready{URL: "http://x.test", Subdomain: "x", ReclaimKey: "k"})
						_ = c.Write(ctx, websocket.MessageText, ready)
						for _, raw := range tt.messages {
							_ = c.Write(ctx, websocket.MessageText, []byte(raw))
						}
					case *protocol.Response:
						answered <- m
					}
				})
			})
			served := make(chan struct{}, 1)
			handler := HandlerFunc(func(_ context.Context, req *protocol.Request) *protocol.Response {
				served <- struct{}{}
				return &protocol.Response{RequestID: req.RequestID, StatusCode: 200, Final: true}
			})
			runManager(t, Config{Server: srv, Handler: handler, MaxRequestBytes: 10}, newEvents())
			select {
			case r := <-answered:
				if r.RequestID != tt.wantID || r.StatusCode != tt.want {
					t.Fatalf("answer %s %d, want %s %d", r.RequestID, r.StatusCode, tt.wantID, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no answer")
			}
			select {
			case <-served:
				t.Fatal("the bad request reached the handler")
			default:
			}
		})
	}
}

// eachMessage reads the agent's messages until the socket ends and hands
// each one that decodes to fn.
func eachMessage(ctx context.Context, c *websocket.Conn, fn func(protocol.Message)) {
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if m, err := protocol.Decode(data); err == nil {
			fn(m)
		}
	}
}
