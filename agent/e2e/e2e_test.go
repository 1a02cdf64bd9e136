package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveDeadline is serve's --deadline in the main suite: short enough for
// the slow-app test, long enough for 4 MB bodies through moto under -race.
const serveDeadline = 8 * time.Second

// env is one store's running service, origin and shared agent.
type env struct {
	st    storeKind
	srv   *server
	org   *origin
	agent *agent
	c     *http.Client
}

// do sends a request to the agent's public URL.
func (e *env) do(t *testing.T, method, path string, body []byte, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	return doURL(t, e.c, method, e.agent.url+path, body, hdr)
}

func doURL(t *testing.T, c *http.Client, method, url string, body []byte, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d; body %.300q", resp.StatusCode, want, body)
	}
}

// TestEndToEnd runs the suite against serve with each store, in parallel.
func TestEndToEnd(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			srv := startServe(t, st, "--deadline", serveDeadline.String())
			org := newOrigin(t)
			e := &env{st: st, srv: srv, org: org, agent: startAgent(t, srv, org.port), c: client(srv)}
			tests := []struct {
				name string
				fn   func(*testing.T, *env)
			}{
				{"Console", testConsole},
				{"Methods", testMethods},
				{"QueryString", testQueryString},
				{"RequestHeaders", testRequestHeaders},
				{"ResponseHeaders", testResponseHeaders},
				{"Statuses", testStatuses},
				{"Gzip", testGzip},
				{"BinaryBodies", testBinaryBodies},
				{"BodiesOverLimit", testBodiesOverLimit},
				{"Concurrent100", testConcurrent},
				{"UnknownSubdomain", testUnknownSubdomain},
				{"SlowAppServiceDeadline", testSlowApp},
				{"SlowAppAgentTimeout", testAgentTimeout},
				{"LocalAppDown", testLocalDown},
				{"AgentKilledMidRequest", testAgentKilled},
				{"CtrlCFinishesInFlight", testCtrlC},
				{"SubdomainInUse", testSubdomainInUse},
				{"Rotation", testRotation},
				{"ServerClosesSocket", testServerClose},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, e)
				})
			}
		})
	}
}

var urlLine = regexp.MustCompile(`^http://[a-z0-9]+\.localhost:\d+$`)

func testConsole(t *testing.T, e *env) {
	if _, ok := e.agent.stdout.wait(1, 10*time.Second, e.agent.exited, func(string) bool { return true }); !ok {
		t.Fatalf("stdout %q: want the URL, then where it forwards", e.agent.stdout.snapshot())
	}
	out := e.agent.stdout.snapshot()
	if len(out) < 2 || out[0] != e.agent.url || !urlLine.MatchString(out[0]) {
		t.Fatalf("stdout starts %q: want the URL alone on the first line", out)
	}
	if want := fmt.Sprintf("Forwarding %s -> http://127.0.0.1:%d", e.agent.url, e.org.port); out[1] != want {
		t.Fatalf("second line %q, want %q", out[1], want)
	}
	path := "/echo?console=" + randomHex(t, 4)
	resp, body := e.do(t, "GET", path, nil, nil)
	wantStatus(t, resp, body, 200)
	line, ok := e.agent.stdout.wait(2, 10*time.Second, e.agent.exited, func(s string) bool { return strings.Contains(s, path) })
	if !ok {
		t.Fatalf("no request line for %s on stdout", path)
	}
	// 15:04:05 GET     /echo?console=... 200 1.2ms 345 B
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d GET +` + regexp.QuoteMeta(path) + ` 200 \S+ \d+(\.\d)? (B|KB|MB)$`).MatchString(line) {
		t.Fatalf("request line %q: want time, method, path, status, duration, size", line)
	}
}

func testMethods(t *testing.T, e *env) {
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
		var body []byte
		if m != "GET" && m != "HEAD" {
			body = []byte("payload of " + m)
		}
		resp, got := e.do(t, m, "/echo?m=1", body, http.Header{"Content-Type": {"text/plain"}})
		wantStatus(t, resp, got, 200)
		if h := resp.Header.Get("X-Echo-Method"); h != m {
			t.Fatalf("%s arrived as %q", m, h)
		}
		if m == "HEAD" {
			if len(got) != 0 {
				t.Fatalf("HEAD answered with a body of %d bytes", len(got))
			}
			// HEAD keeps the origin's Content-Length (that of the GET).
			resp, got = e.do(t, m, "/bytes?n=1000", nil, nil)
			direct, err := http.Head(fmt.Sprintf("http://127.0.0.1:%d/bytes?n=1000", e.org.port))
			if err != nil {
				t.Fatal(err)
			}
			direct.Body.Close()
			if cl := resp.Header.Get("Content-Length"); cl != "1000" || direct.Header.Get("Content-Length") != "1000" || len(got) != 0 {
				t.Fatalf("HEAD /bytes?n=1000: Content-Length %q through the tunnel, %q direct; %d body bytes", cl, direct.Header.Get("Content-Length"), len(got))
			}
			continue
		}
		var ec echoed
		if err := json.Unmarshal(got, &ec); err != nil {
			t.Fatalf("%s: %v in %q", m, err, got)
		}
		if ec.Method != m || ec.URI != "/echo?m=1" || ec.Len != len(body) || ec.Sha256 != sha(body) {
			t.Fatalf("%s: origin saw %+v", m, ec)
		}
	}
}

func testQueryString(t *testing.T, e *env) {
	for _, q := range []string{"/echo?a=1&a=2&b=%2F", "/echo?x=%20y+z&empty=&=v&k", "/echo?"} {
		resp, got := e.do(t, "GET", q, nil, nil)
		wantStatus(t, resp, got, 200)
		var ec echoed
		json.Unmarshal(got, &ec)
		want := q
		if q == "/echo?" {
			want = "/echo" // API Gateway's rawQueryString cannot tell "?" from none
		}
		if ec.URI != want {
			t.Fatalf("origin saw %q, want %q", ec.URI, want)
		}
	}
}

func testRequestHeaders(t *testing.T, e *env) {
	hdr := http.Header{
		"X-A":        {"1", "2"},
		"Cookie":     {"a=1", "b=2"},
		"User-Agent": {""}, // none: Go's client then sends none
	}
	resp, got := e.do(t, "GET", "/echo", nil, hdr)
	wantStatus(t, resp, got, 200)
	var ec echoed
	if err := json.Unmarshal(got, &ec); err != nil {
		t.Fatal(err)
	}
	// API Gateway joins repeated headers with commas (the same field, RFC
	// 9110 5.3) and cookies with "; ".
	if v := ec.Header["X-A"]; !slices.Equal(v, []string{"1,2"}) {
		t.Fatalf("X-A arrived as %q", v)
	}
	if v := ec.Header["Cookie"]; !slices.Equal(v, []string{"a=1; b=2"}) {
		t.Fatalf("Cookie arrived as %q", v)
	}
	if ec.Host != hostOf(e.agent.url) {
		t.Fatalf("Host %q, want the public host %q (--host-header preserve)", ec.Host, hostOf(e.agent.url))
	}
	for _, h := range []string{"User-Agent", "Accept-Encoding"} {
		if v, ok := ec.Header[h]; ok {
			t.Fatalf("%s %q reached the origin; the client sent none", h, v)
		}
	}
	if ec.Header.Get("X-Forwarded-For") == "" || ec.Header.Get("X-Forwarded-Proto") != "http" {
		t.Fatalf("X-Forwarded-* missing: %v", ec.Header)
	}
}

func testResponseHeaders(t *testing.T, e *env) {
	resp, got := e.do(t, "GET", "/headers", nil, nil)
	wantStatus(t, resp, got, 200)
	// Payload format 2.0 joins repeated headers with commas; Set-Cookie
	// travels as cookies and comes out as separate headers.
	if v := resp.Header["X-R"]; !slices.Equal(v, []string{"1,2"}) {
		t.Fatalf("X-R %q, want [\"1,2\"]", v)
	}
	if v := resp.Header["Set-Cookie"]; !slices.Equal(v, []string{"a=1", "b=2; Path=/", "c=3; HttpOnly"}) {
		t.Fatalf("Set-Cookie %q", v)
	}
}

func testStatuses(t *testing.T, e *env) {
	resp, got := e.do(t, "GET", "/status/204", nil, nil)
	wantStatus(t, resp, got, 204)
	resp, got = e.do(t, "GET", "/status/304", nil, nil)
	wantStatus(t, resp, got, 304)
	if resp.Header.Get("ETag") != `"v1"` || len(got) != 0 {
		t.Fatalf("304: ETag %q body %q", resp.Header.Get("ETag"), got)
	}
	resp, got = e.do(t, "GET", "/status/418", nil, nil)
	wantStatus(t, resp, got, 418)
	resp, got = e.do(t, "GET", "/redirect", nil, nil)
	wantStatus(t, resp, got, 302)
	if loc := resp.Header.Get("Location"); loc != "/elsewhere?from=redirect" {
		t.Fatalf("Location %q", loc)
	}
}

func testGzip(t *testing.T, e *env) {
	resp, got := e.do(t, "GET", "/gzip", nil, http.Header{"Accept-Encoding": {"gzip"}})
	wantStatus(t, resp, got, 200)
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(got, gzipped) {
		t.Fatalf("Content-Encoding %q, %d bytes (want %d identical bytes)", resp.Header.Get("Content-Encoding"), len(got), len(gzipped))
	}
	if v := resp.Header.Get("X-Accept-Encoding"); v != "gzip" {
		t.Fatalf("the origin saw Accept-Encoding %q", v)
	}
}

func testBinaryBodies(t *testing.T, e *env) {
	for _, n := range []int{1 << 20, 4 << 20} {
		body := payload(n)
		start := time.Now()
		resp, got := e.do(t, "POST", "/mirror", body, http.Header{"Content-Type": {"application/octet-stream"}})
		up := time.Since(start)
		wantStatus(t, resp, got, 200)
		if resp.Header.Get("X-Request-Sha256") != sha(body) {
			t.Fatalf("%d bytes up: the origin got a different body", n)
		}
		if sha(got) != sha(body) {
			t.Fatalf("%d bytes down: got %d bytes with another sha256", n, len(got))
		}
		start = time.Now()
		resp, got = e.do(t, "GET", fmt.Sprintf("/bytes?n=%d", n), nil, nil)
		down := time.Since(start)
		wantStatus(t, resp, got, 200)
		if sha(got) != sha(body) {
			t.Fatalf("GET %d bytes: got %d bytes with another sha256", n, len(got))
		}
		t.Logf("%s: %d MiB up and back in %v, down in %v", e.st.name, n>>20, up.Round(time.Millisecond), down.Round(time.Millisecond))
	}
}

func testBodiesOverLimit(t *testing.T, e *env) {
	octet := http.Header{"Content-Type": {"application/octet-stream"}}
	// Over API Gateway's 10 MB payload, and over Lambda's 6 MB event once
	// base64-encoded: API Gateway answers 413.
	for _, n := range []int{11 << 20, 5 << 20} {
		resp, got := e.do(t, "POST", "/mirror", payload(n), octet)
		wantStatus(t, resp, got, http.StatusRequestEntityTooLarge)
	}
	// A local response over what Lambda can return: the agent says so.
	resp, got := e.do(t, "GET", fmt.Sprintf("/bytes?n=%d", 5<<20), nil, nil)
	wantStatus(t, resp, got, http.StatusBadGateway)
	if resp.Header.Get("X-Lambdatunnel-Error") != "response_too_large" || !strings.Contains(string(got), "over the") {
		t.Fatalf("502 does not say the response is too large: %q", got)
	}
}

func testConcurrent(t *testing.T, e *env) {
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := fmt.Sprintf("tok-%d-%s", i, randomHex(t, 6))
			req, _ := http.NewRequest("GET", e.agent.url+"/token/"+tok, nil)
			req.Header.Set("X-Token", tok)
			resp, err := e.c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != tok || resp.Header.Get("X-Token") != tok {
				errs <- fmt.Errorf("request %s: status %d body %q header %q", tok, resp.StatusCode, b, resp.Header.Get("X-Token"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%s: %d concurrent requests answered in %v", e.st.name, n, time.Since(start).Round(time.Millisecond))
}

func testUnknownSubdomain(t *testing.T, e *env) {
	resp, got := doURL(t, e.c, "GET", "http://nosuchtunnel"+randomHex(t, 3)+".localhost:1/", nil, nil)
	wantStatus(t, resp, got, http.StatusNotFound)
}

func testSlowApp(t *testing.T, e *env) {
	start := time.Now()
	resp, got := e.do(t, "GET", "/block?ms=12000", nil, nil)
	wantStatus(t, resp, got, http.StatusGatewayTimeout)
	if d := time.Since(start); d < serveDeadline-time.Second || d > serveDeadline+3*time.Second {
		t.Fatalf("504 after %v, want about the %v deadline", d, serveDeadline)
	}
}

func testAgentTimeout(t *testing.T, e *env) {
	a := startAgent(t, e.srv, e.org.port, "--local-timeout", "1s")
	start := time.Now()
	resp, got := doURL(t, e.c, "GET", a.url+"/block?ms=6000", nil, nil)
	wantStatus(t, resp, got, http.StatusGatewayTimeout)
	if resp.Header.Get("X-Lambdatunnel-Error") != "local_timeout" || time.Since(start) > 5*time.Second {
		t.Fatalf("after %v: %q %q, want the agent's own 504", time.Since(start), resp.Header.Get("X-Lambdatunnel-Error"), got)
	}
}

func testLocalDown(t *testing.T, e *env) {
	port := freePort(t)
	a := startAgent(t, e.srv, port)
	resp, got := doURL(t, e.c, "GET", a.url+"/", nil, nil)
	wantStatus(t, resp, got, http.StatusBadGateway)
	want := fmt.Sprintf("the agent could not reach the local app at http://127.0.0.1:%d: connection refused", port)
	if !strings.Contains(string(got), want) {
		t.Fatalf("502 body %q does not say %q", got, want)
	}
}

func testAgentKilled(t *testing.T, e *env) {
	a := startAgent(t, e.srv, e.org.port)
	uri := "/block?ms=30000&kill=" + randomHex(t, 4)
	type result struct {
		status int
		at     time.Time
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", a.url+uri, nil)
		resp, err := e.c.Do(req)
		if err != nil {
			done <- result{-1, time.Now()}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, time.Now()}
	}()
	e.org.waitEntered(t, uri)
	killed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.status != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", r.status)
		}
		t.Logf("%s: 502 %v after SIGKILL", e.st.name, r.at.Sub(killed).Round(time.Millisecond))
		if d := r.at.Sub(killed); d > serveDeadline/2 {
			t.Fatalf("502 came %v after the kill: not fast", d)
		}
	case <-time.After(serveDeadline + 5*time.Second):
		t.Fatal("no answer")
	}
}

func testCtrlC(t *testing.T, e *env) {
	a := startAgent(t, e.srv, e.org.port)
	uri := "/block?ms=1500&ctrlc=" + randomHex(t, 4)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", a.url+uri, nil)
		resp, err := e.c.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	e.org.waitEntered(t, uri)
	if err := a.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-done:
		if s != 200 {
			t.Fatalf("the in-flight request got %d after Ctrl-C, want 200", s)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the in-flight request got no answer")
	}
	if code := a.waitExit(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after Ctrl-C, want 0", code)
	}
	if a.stderr.count("shutting down") == 0 {
		t.Fatalf("stderr %q does not say it is shutting down", a.stderr.snapshot())
	}
}

func testSubdomainInUse(t *testing.T, e *env) {
	name := "taken" + randomHex(t, 4)
	first := startAgent(t, e.srv, e.org.port, "--subdomain", name)
	if !strings.HasPrefix(first.url, "http://"+name+".localhost:") {
		t.Fatalf("asked for %q, got %s", name, first.url)
	}
	second := launchAgent(t, e.srv, e.org.port, "--subdomain", name)
	if code := second.waitExit(t, 20*time.Second); code == 0 {
		t.Fatal("the second agent for a taken name exited 0")
	}
	errs := second.stderr.snapshot()
	want := fmt.Sprintf("agent: subdomain %q is in use.", name)
	if !slices.Contains(errs, want) {
		t.Fatalf("stderr %q lacks %q", errs, want)
	}
	if len(second.stdout.snapshot()) != 0 {
		t.Fatalf("stdout %q, want nothing", second.stdout.snapshot())
	}
}
