package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// open dials the service, sends hello and waits for ready. The socket it
// returns is not started yet.
func (m *Manager) open(ctx context.Context) (*socket, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.HelloTimeout)
	defer cancel()
	u, err := m.dialURL()
	if err != nil {
		return nil, err
	}
	ua := "lambdatunnel-agent"
	if m.cfg.Version != "" {
		ua += "/" + m.cfg.Version
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient:      m.cfg.HTTPClient,
		HTTPHeader:      http.Header{"User-Agent": {ua}},
		CompressionMode: websocket.CompressionDisabled, // API Gateway does not negotiate it
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, dialError(ctx, m.cfg.Server, resp, err, m.cfg.HelloTimeout)
	}
	// The service posts messages of up to 128 KiB; leave room for a
	// service whose limit is configured higher than the agent's writes.
	conn.SetReadLimit(int64(max(m.cfg.MaxMessageBytes, protocol.MaxMessageBytes)) + 64<<10)

	ready, early, err := m.hello(ctx, conn)
	if err != nil {
		code, reason := websocket.StatusNormalClosure, "hello failed"
		if ctx.Err() != nil {
			code = websocket.StatusGoingAway
		}
		_ = conn.Close(code, reason)
		return nil, err
	}
	m.subdomain, m.reclaimKey = ready.Subdomain, ready.ReclaimKey
	s := newSocket(m, conn, ready)
	s.early = early
	return s, nil
}

// dialURL is the server URL with the token as a query parameter.
func (m *Manager) dialURL() (string, error) {
	u, err := url.Parse(m.cfg.Server)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", m.cfg.Server, err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return "", fmt.Errorf("server URL %q: use ws:// or wss://", m.cfg.Server)
	}
	if m.cfg.Token != "" {
		q := u.Query()
		q.Set("token", m.cfg.Token)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// hello claims the subdomain on a fresh socket. The service records the
// new route before it posts ready, so requests can arrive before ready:
// hello returns them, undecoded, for the socket to serve first.
func (m *Manager) hello(ctx context.Context, conn *websocket.Conn) (*protocol.Ready, [][]byte, error) {
	b, err := protocol.Encode(&protocol.Hello{Subdomain: m.subdomain, ReclaimKey: m.reclaimKey, Version: m.cfg.Version})
	if err != nil {
		return nil, nil, fmt.Errorf("hello: %w", err)
	}
	if err := writeMessage(ctx, conn, b, m.cfg.MaxFrameBytes); err != nil {
		return nil, nil, m.helloErr(ctx, err)
	}
	var early [][]byte
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return nil, nil, m.helloErr(ctx, err)
		}
		if typ != websocket.MessageText {
			continue
		}
		msg, err := protocol.Decode(data)
		if err != nil {
			early = append(early, data) // the socket answers or logs it
			continue
		}
		switch msg := msg.(type) {
		case *protocol.Ready:
			return msg, early, nil
		case *protocol.Error:
			if msg.RequestID == "" {
				return nil, nil, &ServiceError{Code: msg.Code, Message: msg.Message}
			}
			early = append(early, data)
		case *protocol.Request:
			early = append(early, data)
		default:
			m.log.Debug("message before ready ignored", "type", msg.MessageType())
		}
	}
}

func (m *Manager) helloErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return describeTimeout(m.cfg.HelloTimeout)
	}
	return fmt.Errorf("the connection to %s ended before the tunnel was ready: %s", m.cfg.Server, lossReason(err))
}

// RefusedError is a handshake the server refused for want of a valid
// token: trying again with the same token cannot help.
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }

// dialError says in a sentence why the handshake failed.
func dialError(ctx context.Context, server string, resp *http.Response, err error, timeout time.Duration) error {
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return &RefusedError{fmt.Sprintf("%s requires a token: give one with --token (mint it with `lambda token`)", server)}
		case http.StatusForbidden:
			return &RefusedError{fmt.Sprintf("%s refused the connection (403 Forbidden): the token is not valid or has expired "+
				"(mint a new one with `lambda token`), or the URL is not a tunnel server", server)}
		case http.StatusSwitchingProtocols:
		default:
			return fmt.Errorf("%s answered the WebSocket handshake with %s: is it a lambdatunnel server?", server, resp.Status)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("could not connect to %s within %v", server, timeout)
	}
	return fmt.Errorf("could not connect to %s: %s", server, netCause(err))
}

// netCause names a network failure in a few words.
func netCause(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the server running?)"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "cannot resolve " + dnsErr.Name
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	s := err.Error()
	s = strings.TrimPrefix(s, "failed to WebSocket dial: ")
	return s
}

// lossReason says why a socket ended.
func lossReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Reason != "" {
			return fmt.Sprintf("the service closed it: %s, %d", ce.Reason, int(ce.Code))
		}
		return fmt.Sprintf("the service closed it with %d", int(ce.Code))
	}
	switch {
	case errors.Is(err, net.ErrClosed):
		return "the connection was closed"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection broke"
	}
	return netCause(err)
}
