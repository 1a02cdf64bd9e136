package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// The @connections management API, as the apigatewaymanagementapi client
// calls it (restJson1; SigV4 signatures are not checked):
//
//	POST   /@connections/{id}  body = data, sent as one text message  -> 200
//	GET    /@connections/{id}  -> 200 {"connectedAt","identity":{"sourceIp","userAgent"},"lastActiveAt"}
//	DELETE /@connections/{id}  closes the socket with 1000            -> 204
//
// also under /{stage}/@connections/{id}. Errors carry X-Amzn-ErrorType and
// {"message":...}, which the SDK decodes into its typed errors:
// 410 GoneException (unknown, closed or not yet connected), 413
// PayloadTooLargeException (data over the message limit), 400
// BadRequestException.

const connectionsPrefix = "/@connections"

var errBadConnectionID = errors.New("invalid connection id")

// postWriteTimeout bounds how long PostToConnection waits on a client that
// does not read.
const postWriteTimeout = 10 * time.Second

// connectionIDFromPath reports whether escapedPath is a management API path
// and, if so, the URL-decoded connection id (or why it is bad).
func connectionIDFromPath(escapedPath, stage string) (string, bool, error) {
	p := escapedPath
	if rest, ok := strings.CutPrefix(p, "/"+stage); ok && strings.HasPrefix(rest, connectionsPrefix) {
		p = rest
	}
	rest, ok := strings.CutPrefix(p, connectionsPrefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false, nil
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" || strings.Contains(rest, "/") { // a '/' in an id arrives as %2F
		return "", true, errBadConnectionID
	}
	id, err := url.PathUnescape(rest)
	if err != nil || id == "" {
		return "", true, errBadConnectionID
	}
	return id, true, nil
}

func (s *Server) serveConnections(w http.ResponseWriter, r *http.Request, id string, pathErr error) {
	status := s.handleConnections(w, r, id, pathErr)
	s.log.Debug("@connections", "method", r.Method, "connectionId", id, "status", status)
}

func (s *Server) handleConnections(w http.ResponseWriter, r *http.Request, id string, pathErr error) int {
	if pathErr != nil {
		return writeAPIError(w, http.StatusBadRequest, "BadRequestException", pathErr.Error())
	}
	switch r.Method {
	case http.MethodPost:
		data, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxMessageBytes)+1))
		if err != nil {
			return writeAPIError(w, http.StatusBadRequest, "BadRequestException", "Could not read data")
		}
		if len(data) > s.cfg.MaxMessageBytes {
			return writeAPIError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException",
				"Message too long. Max size is "+strconv.Itoa(s.cfg.MaxMessageBytes)+" bytes")
		}
		c := s.lookup(r.Context(), id)
		if c == nil {
			return writeGone(w)
		}
		ctx, cancel := context.WithTimeout(r.Context(), postWriteTimeout)
		defer cancel()
		if err := c.conn.Write(ctx, websocket.MessageText, data); err != nil {
			return writeGone(w)
		}
		c.lastActive.Store(s.cfg.Now().UnixMilli())
		w.WriteHeader(http.StatusOK)
		return http.StatusOK

	case http.MethodGet:
		c := s.lookup(r.Context(), id)
		if c == nil {
			return writeGone(w)
		}
		type identity struct {
			SourceIP  string `json:"sourceIp"`
			UserAgent string `json:"userAgent"`
		}
		b, _ := json.Marshal(struct {
			ConnectedAt  string   `json:"connectedAt"`
			Identity     identity `json:"identity"`
			LastActiveAt string   `json:"lastActiveAt"`
		}{
			ConnectedAt:  isoTime(c.connectedAt),
			Identity:     identity{SourceIP: c.sourceIP, UserAgent: c.userAgent},
			LastActiveAt: isoTime(time.UnixMilli(c.lastActive.Load())),
		})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
		return http.StatusOK

	case http.MethodDelete:
		c := s.lookup(r.Context(), id)
		if c == nil {
			return writeGone(w)
		}
		c.closeWith(closeNormal, "")
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent

	default:
		return writeAPIError(w, http.StatusBadRequest, "BadRequestException", "Unsupported method "+r.Method)
	}
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func writeGone(w http.ResponseWriter) int {
	return writeAPIError(w, http.StatusGone, "GoneException", "")
}

// writeAPIError answers as the management API answers errors.
func writeAPIError(w http.ResponseWriter, status int, errType, msg string) int {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", errType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return status
}
