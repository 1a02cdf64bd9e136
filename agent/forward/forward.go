// Package forward hands the public requests the agent receives to the local
// app and turns its answers into protocol responses, byte for byte: method,
// raw URI, repeated headers and bodies pass through as they are, redirects
// are not followed and nothing is decompressed.
package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// Host header modes (Config.HostHeader); any other value is sent as the
// Host header literally.
const (
	// HostPreserve sends the public Host (k3x9.tunnel.example.com), as ngrok does.
	HostPreserve = "preserve"
	// HostRewrite sends the local host:port, for apps that check Host.
	HostRewrite = "rewrite"
)

// Defaults of Config.
const (
	// DefaultTimeout answers 504 before the service's own deadline (28 s by
	// default, under API Gateway's 30 s).
	DefaultTimeout = 26 * time.Second
	// DefaultMaxResponseBytes is the largest body that fits through AWS
	// Lambda's 6 MB response payload once base64-encoded (4/3 larger).
	DefaultMaxResponseBytes = 4608 * 1024 // 4.5 MiB
)

// Config says where the local app is and how to talk to it.
type Config struct {
	// Host and Port of the local app; Host defaults to 127.0.0.1.
	Host string
	Port int
	// HTTPS talks to the local app over TLS; InsecureSkipVerify accepts any
	// certificate (a self-signed development one).
	HTTPS              bool
	InsecureSkipVerify bool
	// HostHeader is HostPreserve (default), HostRewrite or a literal value.
	HostHeader string
	// Timeout bounds one local request, body included; default DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds a local response body; a larger one is
	// answered with 502, never truncated. Default DefaultMaxResponseBytes.
	MaxResponseBytes int
}

// Forwarder sends requests to the local app over one keep-alive transport.
// It is safe for concurrent use.
type Forwarder struct {
	cfg    Config
	base   string // scheme://host:port
	host   string // host:port
	client *http.Client
}

// New returns a Forwarder for cfg.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("local port %d is not between 1 and 65535", cfg.Port)
	}
	if cfg.HostHeader == "" {
		cfg.HostHeader = HostPreserve
	}
	if strings.ContainsAny(cfg.HostHeader, " \t\r\n/") {
		return nil, fmt.Errorf("host header %q: use preserve, rewrite or a host name", cfg.HostHeader)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	scheme := "http"
	if cfg.HTTPS {
		scheme = "https"
	}
	host := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	transport := &http.Transport{
		Proxy: nil, // the local app is local: never go through a proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		// Pass Content-Encoding and the bytes through untouched, and add no
		// Accept-Encoding the client did not send.
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify}, //nolint:gosec // the user asked for it
		// HTTP/1.1 only: header names and order reach the app as sent.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &Forwarder{
		cfg:  cfg,
		base: scheme + "://" + host,
		host: host,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // the browser follows redirects, not the tunnel
			},
		},
	}, nil
}

// Target is the local app's base URL, e.g. http://127.0.0.1:8080.
func (f *Forwarder) Target() string { return f.base }

// Close drops the idle keep-alive connections.
func (f *Forwarder) Close() { f.client.CloseIdleConnections() }

// Serve sends one whole request (chunk 0 with the complete base64 body) to
// the local app and returns its answer as one response with the whole
// base64 body, or an error page of the agent (502, 504) saying what went
// wrong. It never returns nil.
func (f *Forwarder) Serve(ctx context.Context, in *protocol.Request) *protocol.Response {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := f.newRequest(ctx, in)
	if err != nil {
		return ErrorPage(in.RequestID, http.StatusBadRequest, "bad_request", "The agent could not make a request of this: "+err.Error())
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return f.failure(in.RequestID, ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(f.cfg.MaxResponseBytes)+1))
	if err != nil {
		return f.failure(in.RequestID, ctx, err)
	}
	if len(body) > f.cfg.MaxResponseBytes {
		return ErrorPage(in.RequestID, http.StatusBadGateway, "response_too_large", fmt.Sprintf(
			"The local app's response body is over the %d bytes a tunnel can carry (AWS Lambda's 6 MB response limit, once base64-encoded).",
			f.cfg.MaxResponseBytes))
	}
	return &protocol.Response{
		RequestID:  in.RequestID,
		StatusCode: resp.StatusCode,
		Headers:    protocol.Headers(resp.Header),
		Body:       protocol.EncodeBody(body),
		Final:      true,
	}
}

// newRequest builds the local request: the URI exactly as received, the
// headers as received (no Go default User-Agent or Accept-Encoding added),
// Host as configured.
func (f *Forwarder) newRequest(ctx context.Context, in *protocol.Request) (*http.Request, error) {
	body, err := protocol.DecodeBody(in.Body)
	if err != nil {
		return nil, err
	}
	u, err := f.localURL(in.URI)
	if err != nil {
		return nil, err
	}
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, in.Method, f.base, rd)
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.ContentLength = int64(len(body))
	h := make(http.Header, len(in.Headers)+1)
	publicHost := ""
	for k, v := range in.Headers {
		if strings.EqualFold(k, "Host") {
			if len(v) > 0 {
				publicHost = v[0]
			}
			continue
		}
		if strings.EqualFold(k, "Content-Length") {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	if _, ok := h["User-Agent"]; !ok {
		// net/http adds "Go-http-client/1.1" unless the key is present; an
		// empty value is not written at all.
		h["User-Agent"] = []string{""}
	}
	if publicHost == "" {
		publicHost = h.Get("X-Forwarded-Host")
	}
	req.Header = h
	switch f.cfg.HostHeader {
	case HostPreserve:
		req.Host = publicHost
		if req.Host == "" {
			req.Host = f.host
		}
	case HostRewrite:
		req.Host = f.host
	default:
		req.Host = f.cfg.HostHeader
	}
	return req, nil
}

// localURL puts the raw path and query in a URL that net/http writes back
// byte for byte.
func (f *Forwarder) localURL(uri string) (*url.URL, error) {
	u, err := url.Parse(f.base)
	if err != nil {
		return nil, err
	}
	path, query, hasQuery := strings.Cut(uri, "?")
	u.RawQuery = query
	u.ForceQuery = hasQuery && query == ""
	if strings.HasPrefix(path, "//") {
		// Opaque would read as scheme-relative ("http://host/..."): give
		// the path with its raw form, which net/url writes back when it is
		// a valid encoding of it.
		p, err := url.PathUnescape(path)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", path, err)
		}
		u.Path, u.RawPath = p, path
		return u, nil
	}
	u.Opaque = path // written as the request target as it is
	return u, nil
}

// failure turns a transport error into the agent's error page.
func (f *Forwarder) failure(requestID string, ctx context.Context, err error) *protocol.Response {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrorPage(requestID, http.StatusGatewayTimeout, "local_timeout",
			fmt.Sprintf("The local app at %s did not answer within %v.", f.base, f.cfg.Timeout))
	}
	return ErrorPage(requestID, http.StatusBadGateway, "local_unreachable",
		fmt.Sprintf("the agent could not reach the local app at %s: %s", f.base, cause(err)))
}

// cause names what went wrong in a few words: "connection refused".
func cause(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed before a full response"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err.Error()
}

// ErrorPage is an answer of the agent itself: one sentence for a person
// and a header naming the error for a program, as the service's pages.
func ErrorPage(requestID string, status int, code, text string) *protocol.Response {
	return &protocol.Response{
		RequestID:  requestID,
		StatusCode: status,
		Final:      true,
		Headers: protocol.Headers{
			"Content-Type":           {"text/plain; charset=utf-8"},
			"Cache-Control":          {"no-store"},
			"X-Lambdatunnel-Error":   {code},
			"X-Content-Type-Options": {"nosniff"},
		},
		Body: protocol.EncodeBody([]byte(fmt.Sprintf("%d %s: %s\n", status, http.StatusText(status), text))),
	}
}
