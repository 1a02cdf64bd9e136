package dynamotest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long moto_server may take to answer.
const startTimeout = 30 * time.Second

// shared is the one moto_server of this test binary.
var shared struct {
	mu     sync.Mutex
	srv    *server
	refs   int
	pinned bool // Main keeps it until all tests have run
}

// Start returns the endpoint (http://127.0.0.1:PORT) of this test binary's
// moto_server, starting it on first use. The test fails, never skips, when
// moto_server is not installed.
func Start(t testing.TB) string {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		srv, err := startServer()
		if err != nil {
			t.Fatal(err)
		}
		shared.srv = srv
	}
	shared.refs++
	t.Cleanup(release)
	return shared.srv.endpoint
}

func release() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.refs--
	if shared.refs == 0 && !shared.pinned && shared.srv != nil {
		shared.srv.stop()
		shared.srv = nil
	}
}

// Main runs the tests with the shared server kept up between them and
// stops it afterwards. Call it from TestMain: os.Exit(dynamotest.Main(m)).
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.pinned = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.pinned = false
	if shared.srv != nil {
		shared.srv.stop()
		shared.srv = nil
	}
	return code
}

type server struct {
	endpoint string
	cmd      *exec.Cmd
	exited   chan struct{}
	out      *tailBuffer
}

func startServer() (*server, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, errors.New(`moto_server is not on PATH; DynamoDB tests run against it: install it with pip install "moto[server]"`)
	}
	// A free port can be taken between choosing it and moto binding it;
	// try a few.
	for attempt := 0; ; attempt++ {
		srv, err := tryStart(path)
		if err == nil || attempt == 2 {
			return srv, err
		}
	}
}

func tryStart(path string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	out := &tailBuffer{max: 16 << 10}
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	srv := &server{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:      cmd,
		exited:   make(chan struct{}),
		out:      out,
	}
	go func() {
		_ = cmd.Wait()
		close(srv.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-srv.exited:
			return nil, fmt.Errorf("moto_server on port %d exited: %s\n%s", port, cmd.ProcessState, out)
		default:
		}
		if resp, err := client.Get(srv.endpoint + "/moto-api/"); err == nil {
			resp.Body.Close()
			return srv, nil
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, fmt.Errorf("moto_server on port %d did not answer within %v:\n%s", port, startTimeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		_ = s.cmd.Process.Kill()
	}
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it: moto logs every
// request, and only the end matters when it fails.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(bytes.Clone(b.buf)))
}
