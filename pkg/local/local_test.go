package local_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/coder/websocket"

	"github.com/lambdatunnel/lambdatunnel/pkg/apigw"
	"github.com/lambdatunnel/lambdatunnel/pkg/local"
	"github.com/lambdatunnel/lambdatunnel/pkg/local/localtest"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo/dynamotest"
)

// client returns an HTTP client that reaches *.localhost on loopback.
func clientFor(svc *local.Service) *http.Client {
	u, _ := url.Parse(svc.HTTPURL())
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, u.Host)
		},
	}}
}

// rawAgent is a minimal agent speaking the protocol over a real WebSocket:
// enough to drive the service in this package's tests (the real agent is
// tested end to end in agent/e2e).
type rawAgent struct {
	conn  *websocket.Conn
	ready *protocol.Ready
}

func dialAgent(t *testing.T, svc *local.Service, sub string) *rawAgent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, svc.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	a := &rawAgent{conn: conn}
	a.send(t, &protocol.Hello{Subdomain: sub})
	m := a.read(t)
	ready, ok := m.(*protocol.Ready)
	if !ok {
		t.Fatalf("answer to hello: %#v", m)
	}
	a.ready = ready
	return a
}

func (a *rawAgent) send(t *testing.T, m protocol.Message) {
	t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

func (a *rawAgent) read(t *testing.T) protocol.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := a.conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := protocol.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serve answers n single-chunk requests with "<method> <uri>".
func (a *rawAgent) serve(t *testing.T, n int) {
	for range n {
		req, ok := a.read(t).(*protocol.Request)
		if !ok || !req.Final {
			t.Errorf("agent got %#v, want a one-chunk request", req)
			return
		}
		a.send(t, &protocol.Response{RequestID: req.RequestID, Final: true, StatusCode: 200,
			Headers: protocol.Headers{"Content-Type": {"text/plain"}},
			Body:    protocol.EncodeBody([]byte(req.Method + " " + req.URI))})
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLocalRoundTrip(t *testing.T) {
	svc := localtest.Start(t, local.Config{})
	a := dialAgent(t, svc, "myapp")
	if want := svc.PublicURL("myapp"); a.ready.URL != want {
		t.Fatalf("ready URL %s, want %s", a.ready.URL, want)
	}
	go a.serve(t, 2)
	c := clientFor(svc)
	if code, body := get(t, c, a.ready.URL+"/hello?x=%2F"); code != 200 || body != "GET /hello?x=%2F" {
		t.Errorf("host-style GET = %d %q", code, body)
	}
	if code, body := get(t, c, svc.HTTPURL()+"/myapp/path-style"); code != 200 || body != "GET /path-style" {
		t.Errorf("path-style GET = %d %q", code, body)
	}
	if code, body := get(t, c, svc.PublicURL("nobody")+"/"); code != 404 || !strings.Contains(body, "No tunnel is connected") {
		t.Errorf("unknown name = %d %q", code, body)
	}
}

func TestLocalTokens(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef"
	svc := localtest.Start(t, local.Config{TokenSecret: []byte(secret)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, q := range []string{"", "?token=forged"} {
		_, resp, err := websocket.Dial(ctx, svc.WSURL()+q, nil)
		if err == nil || resp == nil || (resp.StatusCode != 401 && resp.StatusCode != 403) {
			t.Errorf("dial with %q: %v (%v), want refused with 401/403", q, err, resp)
		}
	}
}

// allowedPolls is how many Queries the adaptive schedule (10 ms growing by
// half to 100 ms) may make in a wait of d: one at once, then one per step.
func allowedPolls(d time.Duration) int {
	n, at, step := 1, time.Duration(0), dynamo.DefaultPollMin
	for at+step <= d {
		at += step
		n++
		step = min(time.Duration(float64(step)*1.5), dynamo.DefaultPollMax)
	}
	return n
}

// TestCallsPerSmallRequest counts the DynamoDB calls the handlers make for
// small tunnelled requests through the whole local stack, and fails when
// they grow past the design: at most one routing read per request (the
// route cache makes most of them free), exactly one response write, and
// no more polls than the wait needs.
func TestCallsPerSmallRequest(t *testing.T) {
	var counter dynamo.CallCounter
	db := dynamotest.NewClient(t, dynamotest.Start(t), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, counter.APIOption)
	})
	var st store.Store = dynamo.New(db, dynamotest.NewTables(t, db))
	svc := localtest.Start(t, local.Config{Store: st, Gateway: apigw.Config{}})
	a := dialAgent(t, svc, "counted")
	const n = 20
	go a.serve(t, n)
	c := clientFor(svc)
	counter.Reset()
	allowed := 0
	var took time.Duration
	for i := range n {
		start := time.Now()
		code, body := get(t, c, fmt.Sprintf("%s/item/%d", a.ready.URL, i))
		d := time.Since(start)
		took += d
		allowed += allowedPolls(d)
		if code != 200 || body != fmt.Sprintf("GET /item/%d", i) {
			t.Fatalf("request %d = %d %q", i, code, body)
		}
	}
	calls := counter.Snapshot()
	t.Logf("%d small requests in %v: %v (per request: GetItem %.2f, PutItem %.2f, Query %.2f)", n, took, calls,
		float64(calls["GetItem"])/n, float64(calls["PutItem"])/n, float64(calls["Query"])/n)
	if calls["GetItem"] > n {
		t.Errorf("GetItem %d for %d requests: more than one routing read each", calls["GetItem"], n)
	}
	if calls["PutItem"] != n {
		t.Errorf("PutItem %d for %d requests, want exactly one response write each", calls["PutItem"], n)
	}
	if calls["Query"] > allowed {
		t.Errorf("Query %d for %d requests, more than the %d polls their waits allow", calls["Query"], n, allowed)
	}
	for op, k := range calls {
		if op != "GetItem" && op != "PutItem" && op != "Query" {
			t.Errorf("%d unexpected %s calls on the request path", k, op)
		}
	}
}
