package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

func TestTextConsole(t *testing.T) {
	var out, errOut bytes.Buffer
	c := New(&out, &errOut, "text", "http://127.0.0.1:8080")
	c.Connecting("ws://127.0.0.1:8001")
	c.Ready(&protocol.Ready{URL: "http://abc.localhost:8000", Subdomain: "abc"})
	c.Request(time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), "GET", "/a?b=1", 200, 1500*time.Microsecond, 2048)
	c.Lost("the service closed it: Idle timeout, 1001", 1340*time.Millisecond)
	c.RetryFailed(errors.New("could not connect to ws://x: connection refused"), 2*time.Second)
	c.Reconnected(&protocol.Ready{URL: "http://abc.localhost:8000"}, true)

	wantOut := "http://abc.localhost:8000\n" +
		"Forwarding http://abc.localhost:8000 -> http://127.0.0.1:8080\n" +
		"15:04:05 GET     /a?b=1 200 1.5ms 2.0 KB\n"
	if out.String() != wantOut {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out.String(), wantOut)
	}
	wantErr := "connecting to ws://127.0.0.1:8001\n" +
		"connection lost (the service closed it: Idle timeout, 1001); reconnecting in 1.3s\n" +
		"could not reconnect (could not connect to ws://x: connection refused); retrying in 2s\n" +
		"reconnected; your URL is unchanged\n"
	if errOut.String() != wantErr {
		t.Fatalf("stderr:\n%s\nwant:\n%s", errOut.String(), wantErr)
	}
}

func TestJSONConsole(t *testing.T) {
	var out, errOut bytes.Buffer
	c := New(&out, &errOut, "json", "http://127.0.0.1:8080")
	c.Connecting("ws://127.0.0.1:8001")
	c.Ready(&protocol.Ready{URL: "http://abc.localhost:8000", Subdomain: "abc"})
	c.Request(time.Now(), "POST", "/x", 201, time.Millisecond, 10)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || lines[0] != "http://abc.localhost:8000" {
		t.Fatalf("stdout %q: want the URL alone first, then JSON lines", lines)
	}
	var req map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &req); err != nil || req["method"] != "POST" || req["status"] != 201.0 || req["bytes"] != 10.0 {
		t.Fatalf("request line %s (%v)", lines[2], err)
	}
	var status map[string]any
	if err := json.Unmarshal(errOut.Bytes(), &status); err != nil || status["msg"] != "connecting to ws://127.0.0.1:8001" {
		t.Fatalf("status line %s (%v)", errOut.String(), err)
	}
}

func TestSize(t *testing.T) {
	give := map[int]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KB", 1536: "1.5 KB", 4 << 20: "4.0 MB"}
	for n, want := range give {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
