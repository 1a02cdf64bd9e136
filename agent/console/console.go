// Package console is what the agent tells the person who runs it: the
// public URL and one line per request on stdout, and what the tunnel is
// doing, in plain sentences, on stderr.
package console

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// Console writes the agent's output. It implements session.Events and is
// safe for concurrent use.
type Console struct {
	target string // where requests go, e.g. http://127.0.0.1:8080
	json   bool
	now    func() time.Time

	mu     sync.Mutex
	stdout io.Writer
	stderr io.Writer
	status *slog.Logger // JSON status lines (json format only)
	lines  *slog.Logger // JSON request lines (json format only)
}

// New returns a Console; format is "text" or "json". In json format the
// public URL is still printed alone on stdout's first line, and the other
// lines are JSON objects.
func New(stdout, stderr io.Writer, format, target string) *Console {
	c := &Console{target: target, json: format == "json", now: time.Now, stdout: stdout, stderr: stderr}
	if c.json {
		c.status = slog.New(slog.NewJSONHandler(stderr, nil))
		c.lines = slog.New(slog.NewJSONHandler(stdout, nil))
	}
	return c
}

// Status tells the person what is going on, in one sentence.
func (c *Console) Status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.json {
		c.status.Info(msg)
		return
	}
	fmt.Fprintln(c.stderr, msg)
}

// Connecting implements session.Events.
func (c *Console) Connecting(server string) { c.Status("connecting to %s", server) }

// Ready prints the public URL alone on a line, then where it forwards.
func (c *Console) Ready(r *protocol.Ready) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(c.stdout, r.URL)
	if c.json {
		c.lines.Info("forwarding", "url", r.URL, "target", c.target, "subdomain", r.Subdomain)
		return
	}
	fmt.Fprintf(c.stdout, "Forwarding %s -> %s\n", r.URL, c.target)
}

// Lost implements session.Events.
func (c *Console) Lost(reason string, retryIn time.Duration) {
	c.Status("connection lost (%s); reconnecting in %s", reason, roundDelay(retryIn))
}

// RetryFailed implements session.Events.
func (c *Console) RetryFailed(err error, retryIn time.Duration) {
	c.Status("could not reconnect (%v); retrying in %s", err, roundDelay(retryIn))
}

// Reconnected implements session.Events.
func (c *Console) Reconnected(r *protocol.Ready, same bool) {
	if same {
		c.Status("reconnected; your URL is unchanged")
		return
	}
	c.Status("reconnected; your URL is now %s (the old name was taken meanwhile)", r.URL)
	c.mu.Lock()
	fmt.Fprintln(c.stdout, r.URL)
	c.mu.Unlock()
}

// Rotated implements session.Events.
func (c *Console) Rotated(r *protocol.Ready, same bool) {
	if same {
		c.Status("renewed the connection ahead of the service's time limit; your URL is unchanged")
		return
	}
	c.Status("renewed the connection; your URL is now %s", r.URL)
}

// Stopping implements session.Events.
func (c *Console) Stopping(inFlight int) {
	c.Status("shutting down; finishing %d request(s) in flight", inFlight)
}

// Request prints one line for an answered request: time, method, URI,
// status, duration and body size.
func (c *Console) Request(start time.Time, method, uri string, status int, d time.Duration, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.json {
		c.lines.Info("request", "method", method, "uri", uri, "status", status,
			"durationMs", float64(d.Microseconds())/1000, "bytes", bytes)
		return
	}
	fmt.Fprintf(c.stdout, "%s %-7s %s %d %s %s\n", start.Format("15:04:05"), method, uri, status, roundDuration(d), Size(bytes))
}

func roundDelay(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// Size is a byte count for people: 512 B, 1.5 KB, 4.0 MB (powers of 1024).
func Size(n int) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
}
