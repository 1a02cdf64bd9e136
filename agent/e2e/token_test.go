package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mintToken runs `lambda token` as a user would.
func mintToken(t *testing.T, secret, subject string, ttl time.Duration) string {
	t.Helper()
	out, err := exec.Command(bins.lambda, "token", "--secret", secret, "--subject", subject, "--ttl", ttl.String()).Output()
	if err != nil {
		t.Fatalf("lambda token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestTokens: with serve --token-secret, an agent needs a token; a good one
// gets a tunnel, none is refused with a sentence, and a token that expires
// while the agent runs ends it at the next reconnect with a sentence
// rather than retrying forever.
func TestTokens(t *testing.T) {
	const secret = "e2e-secret-e2e-secret-e2e-secret"
	srv := startServe(t, stores[0], "--token-secret", secret, "--max-connection-life", "4s")
	org := newOrigin(t)

	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		a := launchAgent(t, srv, org.port)
		if code := a.waitExit(t, 20*time.Second); code == 0 {
			t.Fatal("the agent without a token exited 0")
		}
		if errs := strings.Join(a.stderr.snapshot(), "\n"); !strings.Contains(errs, "requires a token: give one with --token") {
			t.Fatalf("stderr %q", errs)
		}
	})
	t.Run("expires while connected", func(t *testing.T) {
		t.Parallel()
		a := startAgent(t, srv, org.port, "--token", mintToken(t, secret, "alice", 3*time.Second))
		status, body, err := get(client(srv), a.url+"/token/with-token")
		if err != nil || status != 200 || body != "with-token" {
			t.Fatalf("through the tunnel: %d %q %v", status, body, err)
		}
		// serve closes the socket at 4 s; the token has expired by then.
		if code := a.waitExit(t, 30*time.Second); code == 0 {
			t.Fatal("the agent exited 0 after its token expired")
		}
		errs := strings.Join(a.stderr.snapshot(), "\n")
		if !strings.Contains(errs, "not valid or has expired") || strings.Count(errs, "403 Forbidden") != 1 {
			t.Fatalf("stderr %q: want one sentence about the expired token", errs)
		}
	})
}
