// Package bench measures the tunnel against the direct path in the same
// run: `lambda serve` and the agent run as processes, as a user runs them,
// in front of one origin server, and each benchmark reports the tunnel's
// figures as ratios to direct requests to that origin. Run with `make
// bench`; nothing here asserts a time.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// stack is serve + agent + origin, started once per benchmark binary.
type stack struct {
	origin    *httptest.Server
	public    string // the tunnel's public URL
	httpAddr  string // serve's HTTP API address
	wsURL     string
	servePID  int
	tunnel    *http.Client
	direct    *http.Client
	large     []byte
	closeFunc func()
}

var (
	once     sync.Once
	shared   *stack
	setupErr error
)

const largeSize = 4 << 20 // near the most that fits through Lambda once base64-encoded

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func build(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// waitListening waits until addr accepts connections: the agent's first
// connection failing is an error it reports, not one it retries.
func waitListening(addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serve is not listening on %s after 20 s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newClient(maxConns int, dialTo string) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: maxConns, MaxConnsPerHost: maxConns, DisableCompression: true}
	if dialTo != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, dialTo)
		}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

func setup() (*stack, error) {
	dir, err := os.MkdirTemp("", "lambdatunnel-bench")
	if err != nil {
		return nil, err
	}
	lambdaBin, err := build(dir, "lambda", "../../lambda")
	if err != nil {
		return nil, err
	}
	agentBin, err := build(dir, "agent", "..")
	if err != nil {
		return nil, err
	}
	s := &stack{large: make([]byte, largeSize)}
	rand.Read(s.large)
	small := bytes.Repeat([]byte("x"), 100)
	s.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/large":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(s.large)
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.Write(small)
		}
	}))
	if s.httpAddr, err = freePort(); err != nil {
		return nil, err
	}
	wsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	s.wsURL = "ws://" + wsAddr
	serve := exec.Command(lambdaBin, "serve", "--http-addr", s.httpAddr, "--ws-addr", wsAddr, "--log-level", "warn")
	serve.Stderr = io.Discard
	if err := serve.Start(); err != nil {
		return nil, err
	}
	s.servePID = serve.Process.Pid
	if err := waitListening(wsAddr); err != nil {
		serve.Process.Kill()
		return nil, err
	}
	originURL, _ := url.Parse(s.origin.URL)
	agent := exec.Command(agentBin, "--port", originURL.Port(), "--server", s.wsURL, "--log-format", "json", "--no-state")
	stdout, _ := agent.StdoutPipe()
	agent.Stderr = io.Discard
	if err := agent.Start(); err != nil {
		serve.Process.Kill()
		return nil, err
	}
	s.closeFunc = func() {
		agent.Process.Kill()
		serve.Process.Kill()
		agent.Wait()
		serve.Wait()
		s.origin.Close()
		os.RemoveAll(dir)
	}
	lines := bufio.NewScanner(stdout)
	got := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "http") && len(got) == 0 {
				got <- strings.TrimSpace(lines.Text())
			}
		}
	}()
	select {
	case s.public = <-got:
	case <-time.After(30 * time.Second):
		s.closeFunc()
		return nil, fmt.Errorf("the agent printed no public URL within 30 s")
	}
	s.tunnel = newClient(64, s.httpAddr)
	s.direct = newClient(64, "")
	return s, nil
}

func get(b *testing.B) *stack {
	b.Helper()
	once.Do(func() { shared, setupErr = setup() })
	if setupErr != nil {
		b.Fatal(setupErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.closeFunc()
	}
	os.Exit(code)
}

func fetch(c *http.Client, url string) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return n, err
}

// run does n GETs of path over `conns` connections and returns the elapsed
// time and each request's latency.
func run(b *testing.B, c *http.Client, base, path string, n, conns int) (time.Duration, []time.Duration) {
	b.Helper()
	lat := make([]time.Duration, n)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				t0 := time.Now()
				if _, err := fetch(c, base+path); err != nil {
					b.Error(err)
					return
				}
				lat[k] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	return time.Since(start), lat
}

func p50(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkLatency: small GETs one at a time; reports p50 of both paths
// and what the tunnel adds.
func BenchmarkLatency(b *testing.B) {
	s := get(b)
	b.ResetTimer() // not the build and start-up of the first call
	run(b, s.tunnel, s.public, "/warm", 20, 1)
	_, direct := run(b, s.direct, s.origin.URL, "/small", b.N, 1)
	_, tunnel := run(b, s.tunnel, s.public, "/small", b.N, 1)
	b.ReportMetric(ms(p50(direct)), "direct-p50-ms")
	b.ReportMetric(ms(p50(tunnel)), "tunnel-p50-ms")
	b.ReportMetric(ms(p50(tunnel)-p50(direct)), "added-p50-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkThroughput50: small GETs over 50 connections; reports
// requests per second of both paths and their ratio.
func BenchmarkThroughput50(b *testing.B) {
	s := get(b)
	b.ResetTimer() // not the build and start-up of the first call
	n := max(b.N, 200)
	run(b, s.tunnel, s.public, "/warm", 100, 50)
	dt, _ := run(b, s.direct, s.origin.URL, "/small", n, 50)
	tt, _ := run(b, s.tunnel, s.public, "/small", n, 50)
	direct, tunnel := float64(n)/dt.Seconds(), float64(n)/tt.Seconds()
	b.ReportMetric(direct, "direct-req/s")
	b.ReportMetric(tunnel, "tunnel-req/s")
	b.ReportMetric(tunnel/direct, "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDownload4MB: 4 MiB binary responses one at a time; reports MiB/s
// of both paths and their ratio.
func BenchmarkDownload4MB(b *testing.B) {
	s := get(b)
	b.ResetTimer() // not the build and start-up of the first call
	n := max(b.N, 5)
	dt, _ := run(b, s.direct, s.origin.URL, "/large", n, 1)
	tt, _ := run(b, s.tunnel, s.public, "/large", n, 1)
	mib := float64(n*largeSize) / (1 << 20)
	b.ReportMetric(mib/dt.Seconds(), "direct-MiB/s")
	b.ReportMetric(mib/tt.Seconds(), "tunnel-MiB/s")
	b.ReportMetric((mib/tt.Seconds())/(mib/dt.Seconds()), "ratio")
	b.ReportMetric(0, "ns/op")
}

func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// BenchmarkMemoryPerAgent connects b.N agent sockets (each says hello and
// gets ready) to serve and reports how much serve's resident memory grew
// per socket.
func BenchmarkMemoryPerAgent(b *testing.B) {
	s := get(b)
	b.ResetTimer() // not the build and start-up of the first call
	before, err := rssKB(s.servePID)
	if err != nil {
		b.Fatal(err) // reads /proc: Linux only
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([]*websocket.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "")
		}
	}()
	for range b.N {
		c, _, err := websocket.Dial(ctx, s.wsURL, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello"}`)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	after, err := rssKB(s.servePID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/float64(b.N), "serve-KB/agent")
}
