package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAgentCLIErrors: a bad flag or an unreachable server gets one
// sentence on stderr and a non-zero exit, never a stack trace.
func TestAgentCLIErrors(t *testing.T) {
	port := freePort(t)
	give := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable server", []string{"--port", "8080", "--server", fmt.Sprintf("ws://127.0.0.1:%d", port)},
			fmt.Sprintf("agent: could not connect to ws://127.0.0.1:%d: connection refused", port)},
		{"no port", nil, "agent: give the local app's port"},
		{"unknown flag", []string{"--port", "8080", "--nope"}, "agent: flag provided but not defined: -nope"},
		{"bad port", []string{"--port", "70000"}, "agent: local port 70000 is not between 1 and 65535."},
		{"bad log format", []string{"--port", "1", "--log-format", "xml"}, `agent: --log-format "xml": choose text or json.`},
		{"new URL and subdomain", []string{"--port", "1", "--new-url", "--subdomain", "x"}, "agent: --new-url asks for a random name: leave out --subdomain."},
		{"bad server", []string{"--port", "1", "--server", "ftp://x"}, "use ws:// or wss://"},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, "agent", bins.agent, tt.args, nil)
			if code := p.waitExit(t, 20*time.Second); code == 0 {
				t.Fatal("exit code 0")
			}
			var errLines []string
			for _, l := range p.stderr.snapshot() {
				if strings.HasPrefix(l, "agent: ") || strings.Contains(l, "goroutine") || strings.Contains(l, "panic") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], tt.want) {
				t.Fatalf("stderr %q: want one line with %q", p.stderr.snapshot(), tt.want)
			}
			if out := p.stdout.snapshot(); len(out) != 0 {
				t.Fatalf("stdout %q, want nothing", out)
			}
		})
	}
}
