package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rotationLife is serve's --max-connection-life in the rotation tests.
const rotationLife = 10 * time.Second

// testRotation: with the agent's --max-connection-life matching serve's,
// the agent replaces its socket before serve closes it; a steady stream of
// requests across several rotations sees no failure and one URL.
func testRotation(t *testing.T, e *env) {
	srv := startServe(t, e.st, "--max-connection-life", rotationLife.String(), "--deadline", serveDeadline.String())
	a := startAgent(t, srv, e.org.port, "--max-connection-life", rotationLife.String())
	c := client(srv)

	const (
		workers = 3
		runFor  = 23 * time.Second // rotations at about 5, 10, 15 and 20 s
		pace    = 20 * time.Millisecond
	)
	var total, failed atomic.Int64
	failures := make(chan string, 20)
	end := time.Now().Add(runFor)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				tok := fmt.Sprintf("w%d-%d", w, i)
				status, body, err := get(c, a.url+"/token/"+tok)
				total.Add(1)
				if err != nil || status != 200 || body != tok {
					failed.Add(1)
					select {
					case failures <- fmt.Sprintf("%s at %s: status %d body %.200q err %v", tok, time.Now().Format("15:04:05.000"), status, body, err):
					default:
					}
				}
				time.Sleep(pace)
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	rotations := a.stderr.count("renewed the connection")
	t.Logf("%s: %d requests, %d failed, over %d rotations in %v", e.st.name, total.Load(), failed.Load(), rotations, runFor)
	if rotations < 3 {
		t.Errorf("%d rotations in %v with a %v connection life, want at least 3", rotations, runFor, rotationLife)
	}
	if n := a.stderr.count("connection lost"); n > 0 {
		t.Errorf("the agent lost its connection %d times: serve closed it before the agent rotated", n)
	}
	if urls := urlLines(a); len(urls) != 1 {
		t.Errorf("the agent printed the URLs %q, want one", urls)
	}
}

// testServerClosesSocket: serve closes the socket at its maximum life
// (the agent's is longer); the agent reconnects by itself and gets its
// URL back.
func testServerClose(t *testing.T, e *env) {
	srv := startServe(t, e.st, "--max-connection-life", "5s")
	a := startAgent(t, srv, e.org.port) // --max-connection-life 2h
	if _, ok := a.stderr.wait(0, 20*time.Second, a.exited, func(s string) bool {
		return strings.HasPrefix(s, "connection lost (") && strings.Contains(s, "reconnecting in")
	}); !ok {
		t.Fatalf("no \"connection lost\" line on stderr: %q", a.stderr.snapshot())
	}
	if _, ok := a.stderr.wait(0, 20*time.Second, a.exited, func(s string) bool {
		return s == "reconnected; your URL is unchanged"
	}); !ok {
		t.Fatalf("no \"reconnected\" line on stderr: %q", a.stderr.snapshot())
	}
	status, body, err := get(client(srv), a.url+"/token/after-reconnect")
	if err != nil || status != 200 || body != "after-reconnect" {
		t.Fatalf("after the reconnect: %d %q %v", status, body, err)
	}
	if urls := urlLines(a); len(urls) != 1 {
		t.Errorf("the agent printed the URLs %q, want one", urls)
	}
}

func urlLines(a *agent) []string {
	var out []string
	for _, l := range a.stdout.snapshot() {
		if strings.HasPrefix(l, "http://") {
			out = append(out, l)
		}
	}
	return out
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
