// Package e2e runs the real binaries end to end: `lambda serve` (with the
// memory store and with DynamoDB in moto_server), the agent, an origin web
// app and a public client, all as separate processes or servers on
// loopback ports.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo/dynamotest"
)

// The binaries TestMain builds.
var bins struct{ lambda, agent string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambdatunnel-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		bins.lambda = filepath.Join(dir, "lambda")
		bins.agent = filepath.Join(dir, "agent")
		if err := build(bins.lambda, "github.com/lambdatunnel/lambdatunnel/lambda", false); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// A race-enabled test run builds a race-enabled agent: a data race
		// in the agent then fails the test that saw it (proc cleanup).
		if err := build(bins.agent, "github.com/lambdatunnel/lambdatunnel/agent", raceEnabled); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Every process the suite starts from here on inherits this
		// environment: no agent may read or write the state file in the
		// real user config dir. (Set after the builds: go keeps its caches
		// under HOME.)
		home := filepath.Join(dir, "home")
		for _, k := range []string{"XDG_CONFIG_HOME", "HOME", "AppData"} {
			if err := os.Setenv(k, home); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return dynamotest.Main(m)
	}()
	os.Exit(code)
}

func build(out, pkg string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// storeKind is one way to run serve.
type storeKind struct {
	name string
	args func(t *testing.T) (args, env []string)
}

var stores = []storeKind{
	{"memory", func(*testing.T) ([]string, []string) { return []string{"--store", "memory"}, nil }},
	{"dynamodb", func(t *testing.T) ([]string, []string) {
		endpoint := dynamotest.Start(t) // fails, never skips, without moto_server
		prefix := "e2e-" + randomHex(t, 4) + "-"
		return []string{"--store", "dynamodb", "--create-tables", "--dynamodb-endpoint", endpoint},
			[]string{
				"TUNNEL_CONNECTIONS_TABLE=" + prefix + "connections",
				"TUNNEL_SUBDOMAINS_TABLE=" + prefix + "subdomains",
				"TUNNEL_RESPONSES_TABLE=" + prefix + "responses",
				"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1",
			}
	}},
}

// server is a running `lambda serve`.
type server struct {
	*proc
	httpAddr string // 127.0.0.1:port of the public HTTP API
	wsURL    string
}

var (
	httpLine = regexp.MustCompile(`public HTTP API\s+http://(\S+)`)
	wsLine   = regexp.MustCompile(`WebSocket API\s+(ws://\S+)`)
)

// startServe runs `lambda serve` on free ports with the store and extra
// flags, and returns once it says where it listens.
func startServe(t *testing.T, st storeKind, extra ...string) *server {
	t.Helper()
	args, env := st.args(t)
	args = append([]string{"serve", "--http-addr", "127.0.0.1:0", "--ws-addr", "127.0.0.1:0", "--log-level", "warn"}, append(args, extra...)...)
	p := startProc(t, "serve", bins.lambda, args, env)
	s := &server{proc: p}
	if _, ok := p.stderr.wait(0, 60*time.Second, p.exited, func(line string) bool {
		if m := httpLine.FindStringSubmatch(line); m != nil {
			s.httpAddr = m[1]
		}
		if m := wsLine.FindStringSubmatch(line); m != nil {
			s.wsURL = m[1]
		}
		return s.httpAddr != "" && s.wsURL != ""
	}); !ok {
		p.dump(t)
		t.Fatal("serve did not say where it listens")
	}
	return s
}

// agent is a running agent process.
type agent struct {
	*proc
	url string // its public URL
}

// startAgent runs the agent against s for the local port and waits for
// its public URL.
func startAgent(t *testing.T, s *server, port int, extra ...string) *agent {
	t.Helper()
	a := launchAgent(t, s, port, extra...)
	line, ok := a.stdout.wait(0, 30*time.Second, a.exited, func(string) bool { return true })
	if !ok {
		a.dump(t)
		t.Fatal("the agent printed no URL")
	}
	a.url = line
	return a
}

// launchAgent starts the agent without waiting for anything. Unless extra
// names a state file (or --no-state), the agent gets a state file of its
// own: agents of parallel tests for the same local port must not get each
// other's remembered names.
func launchAgent(t *testing.T, s *server, port int, extra ...string) *agent {
	t.Helper()
	args := append([]string{"--port", strconv.Itoa(port), "--server", s.wsURL}, extra...)
	if !slices.Contains(extra, "--state-file") && !slices.Contains(extra, "--no-state") {
		args = append(args, "--state-file", filepath.Join(t.TempDir(), "agent-state.json"))
	}
	return &agent{proc: startProc(t, "agent", bins.agent, args, nil)}
}

// client talks to the public HTTP API of s: it sends every request to
// s.httpAddr whatever the host name (sub.localhost), keeps the Host, and
// neither follows redirects nor decompresses.
func client(s *server) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, s.httpAddr)
			},
			DisableCompression:  true,
			MaxIdleConnsPerHost: 200,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("no port in %q", rawURL)
	}
	return p
}

func hostOf(rawURL string) string {
	u, _ := url.Parse(rawURL)
	return u.Host
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
