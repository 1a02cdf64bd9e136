package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// httpEvent is the HTTP API payload format 2.0 event as AWS sends it. It is
// the wire form of events.APIGatewayV2HTTPRequest, which it decodes into; it
// exists because that type always encodes an empty requestContext.authentication
// (mTLS) object, which AWS sends only with mutual TLS.
type httpEvent struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        httpEventContext  `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type httpEventContext struct {
	AccountID    string                                               `json:"accountId"`
	APIID        string                                               `json:"apiId"`
	DomainName   string                                               `json:"domainName"`
	DomainPrefix string                                               `json:"domainPrefix"`
	HTTP         events.APIGatewayV2HTTPRequestContextHTTPDescription `json:"http"`
	RequestID    string                                               `json:"requestId"`
	RouteKey     string                                               `json:"routeKey"`
	Stage        string                                               `json:"stage"`
	Time         string                                               `json:"time"`
	TimeEpoch    int64                                                `json:"timeEpoch"`
}

// serveHTTPAPI is the public HTTP API: one request, one payload 2.0 event,
// one invocation, one response.
func (s *Server) serveHTTPAPI(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	reqID := s.newID()
	// API Gateway HTTP APIs tag every response with the request id.
	w.Header().Set("Apigw-Requestid", reqID)
	status, why := s.handleHTTPAPI(w, r, reqID, start)
	attrs := []any{"method", r.Method, "path", r.URL.EscapedPath(), "host", r.Host,
		"status", status, "requestId", reqID, "duration", time.Since(start)}
	if why != nil {
		s.log.Warn("http api request failed", append(attrs, "err", why)...)
		return
	}
	s.log.Info("http api request", attrs...)
}

// handleHTTPAPI answers r and returns the status sent and, for a gateway
// error, why.
func (s *Server) handleHTTPAPI(w http.ResponseWriter, r *http.Request, reqID string, start time.Time) (int, error) {
	if n := requestHeadBytes(r); n > s.cfg.MaxHeaderBytes {
		w.Header().Set("Connection", "close")
		return writeGatewayError(w, http.StatusRequestHeaderFieldsTooLarge),
			fmt.Errorf("request line and headers are %d bytes, limit %d", n, s.cfg.MaxHeaderBytes)
	}
	if r.ContentLength > int64(s.cfg.MaxRequestBytes) {
		w.Header().Set("Connection", "close")
		return writeGatewayError(w, http.StatusRequestEntityTooLarge),
			fmt.Errorf("content-length %d over the %d byte payload limit", r.ContentLength, s.cfg.MaxRequestBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxRequestBytes)+1))
	if err != nil {
		return writeGatewayError(w, http.StatusBadRequest), fmt.Errorf("read body: %w", err)
	}
	if len(body) > s.cfg.MaxRequestBytes {
		w.Header().Set("Connection", "close")
		return writeGatewayError(w, http.StatusRequestEntityTooLarge),
			fmt.Errorf("body over the %d byte payload limit", s.cfg.MaxRequestBytes)
	}

	ev := s.newHTTPEvent(r, body, reqID, start)
	out, err := s.invoke(r.Context(), ev)
	switch {
	case errors.Is(err, errIntegrationTimeout):
		return writeGatewayError(w, http.StatusServiceUnavailable), err
	case errors.Is(err, errEventTooLarge):
		// Lambda refuses events over 6 MB (base64 bodies grow by a third).
		return writeGatewayError(w, http.StatusRequestEntityTooLarge), err
	case err != nil:
		return writeGatewayError(w, http.StatusInternalServerError), err
	}
	status, err := writeHTTPResult(w, out, r.Method == http.MethodHead)
	if err != nil {
		return writeGatewayError(w, http.StatusInternalServerError), err
	}
	return status, nil
}

// requestHeadBytes is what AWS counts against its 10240-byte quota on the
// "total combined size of request line and header values": here the request
// line plus every header's name and value (Host included).
func requestHeadBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto)
	n += len("Host") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

func (s *Server) newHTTPEvent(r *http.Request, body []byte, reqID string, now time.Time) httpEvent {
	headers := make(map[string]string, len(r.Header)+5)
	var cookies []string
	for k, vs := range r.Header {
		name := strings.ToLower(k)
		if name == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[name] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	sourceIP := remoteIP(r)
	if xff := headers["x-forwarded-for"]; xff != "" {
		headers["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	headers["x-forwarded-proto"] = "http"
	if _, port, err := net.SplitHostPort(s.httpLn.Addr().String()); err == nil {
		headers["x-forwarded-port"] = port
	}
	headers["x-amzn-trace-id"] = fmt.Sprintf("Root=1-%08x-%s", now.Unix(), traceSuffix(reqID))

	ev := httpEvent{
		Version:               "2.0",
		RouteKey:              "$default",
		RawPath:               rawPath(r),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: queryParams(r.URL.RawQuery),
		RequestContext: httpEventContext{
			AccountID:    s.cfg.AccountID,
			APIID:        s.cfg.HTTPAPIID,
			DomainName:   r.Host,
			DomainPrefix: domainPrefix(r.Host),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
			RequestID: reqID,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      clfTime(now),
			TimeEpoch: now.UnixMilli(),
		},
	}
	if len(body) > 0 {
		if isTextBody(headers["content-type"], body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// rawPath is the path exactly as the client sent it, still percent-encoded.
func rawPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		return p
	}
	return r.URL.EscapedPath()
}

// queryParams decodes the query string as AWS does for payload 2.0:
// repeated keys joined with commas, keys and values percent-decoded.
func queryParams(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	params := make(map[string]string)
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, v = unescapeQuery(k), unescapeQuery(v)
		if old, ok := params[k]; ok {
			params[k] = old + "," + v
		} else {
			params[k] = v
		}
	}
	if len(params) == 0 {
		return nil
	}
	return params
}

func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// isTextBody is the rule for isBase64Encoded: a body travels as text only
// when it is valid UTF-8 and its Content-Type is textual (text/*, JSON, XML,
// JavaScript, form data, YAML, GraphQL, and any +json/+xml type). Everything
// else, including a body without a Content-Type, is base64-encoded.
func isTextBody(contentType string, body []byte) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !utf8.Valid(body) {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"),
		strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript",
		"application/ecmascript", "application/x-www-form-urlencoded",
		"application/graphql", "application/yaml", "application/x-yaml":
		return true
	}
	return false
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// domainPrefix is the first label of the host name ("k3x9" of
// "k3x9.localhost:8000").
func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	p, _, _ := strings.Cut(host, ".")
	return p
}

// traceSuffix turns a request id into the 24 hex digits of an X-Ray trace id.
func traceSuffix(id string) string {
	b := []byte(id)
	for len(b) < 12 {
		b = append(b, '0')
	}
	return fmt.Sprintf("%x", b[:12])
}

// writeHTTPResult writes a payload 2.0 result. A JSON object with a
// statusCode is a full response; any other valid JSON is, as on AWS, a 200
// application/json response whose body is that JSON.
func writeHTTPResult(w http.ResponseWriter, out []byte, head bool) (int, error) {
	// One parse of the result: bodies are megabytes of base64, and every
	// pass over them shows in the tunnel's throughput.
	var parsed struct {
		events.APIGatewayV2HTTPResponse
		StatusCode *int `json:"statusCode"` // shadows the embedded field: nil when absent
	}
	if trimmed := bytes.TrimSpace(out); len(trimmed) > 0 && trimmed[0] == '{' {
		if err := json.Unmarshal(out, &parsed); err != nil {
			var syntax *json.SyntaxError
			if errors.As(err, &syntax) {
				return 0, errors.New("result is not valid JSON")
			}
			return 0, fmt.Errorf("decode result: %w", err)
		}
	} else if !json.Valid(out) {
		return 0, errors.New("result is not valid JSON")
	}
	if parsed.StatusCode == nil {
		// Not an object with a statusCode: API Gateway sends the JSON as is.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return http.StatusOK, nil
	}
	res := parsed.APIGatewayV2HTTPResponse
	res.StatusCode = *parsed.StatusCode
	if res.StatusCode < 200 || res.StatusCode > 599 {
		return 0, fmt.Errorf("result has statusCode %d", res.StatusCode)
	}
	body := []byte(res.Body)
	if res.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(res.Body)
		if err != nil {
			return 0, fmt.Errorf("decode base64 result body: %w", err)
		}
		body = b
	}

	h := w.Header()
	for k, v := range res.Headers {
		h.Set(k, v)
	}
	for k, vs := range res.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range res.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" {
		h["Content-Type"] = nil // no sniffing: send what the function said
	}
	switch {
	case head && len(body) == 0:
		// A HEAD answer's Content-Length is that of the GET: the
		// function's, or none.
	case bodyAllowed(res.StatusCode):
		h.Set("Content-Length", strconv.Itoa(len(body)))
	default:
		h.Del("Content-Length")
		body = nil
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(body)
	return res.StatusCode, nil
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// writeGatewayError answers as API Gateway answers its own errors:
// application/json {"message":"<reason>"}. It returns status.
func writeGatewayError(w http.ResponseWriter, status int) int {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{http.StatusText(status)})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return status
}
