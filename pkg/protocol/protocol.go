// Package protocol defines the messages that travel between the agent and the
// service over the API Gateway WebSocket API.
//
// Every message is one JSON text object with a "type" discriminator (API
// Gateway refuses binary frames). Bodies travel as standard base64 text and are
// split into numbered chunks (seq 0, 1, ...; the last has final=true) so that
// every encoded message stays within API Gateway's 128 KB message limit.
//
// The conversation:
//
//	agent                          service
//	  |-- hello {subdomain, key} ---->|   after $connect; claims a subdomain
//	  |<--------- ready {url, key} ---|   or error {code: "subdomain_in_use"}
//	  |<-- request seq 0..n ----------|   a public HTTP request (it may come
//	  |                               |   before ready: the name is routed
//	  |                               |   to the socket before ready is sent)
//	  |--- response seq 0..n -------->|   the local app's answer, on the
//	  |                               |   socket the request came on
//	  |--- ping ---------------------->|   at least every 5 minutes
//	  |<--------------------- pong ---|
package protocol

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// Type is the value of a message's "type" field.
type Type string

// The message types.
const (
	// TypeHello is sent by the agent right after the socket opens, asking for
	// a subdomain. API Gateway cannot deliver data during $connect, so the
	// service answers this message instead.
	TypeHello Type = "hello"
	// TypeReady is sent by the service in answer to hello: the tunnel is live.
	TypeReady Type = "ready"
	// TypeRequest is sent by the service: one chunk of a public HTTP request.
	TypeRequest Type = "request"
	// TypeResponse is sent by the agent: one chunk of the local app's response.
	TypeResponse Type = "response"
	// TypePing is sent by the agent to keep the socket alive and to check it.
	TypePing Type = "ping"
	// TypePong is sent by the service in answer to ping.
	TypePong Type = "pong"
	// TypeError is sent by the service when it cannot act on a message.
	TypeError Type = "error"
)

// Limits of the wire, as API Gateway enforces them.
const (
	// MaxMessageBytes is API Gateway's WebSocket message limit (and
	// PostToConnection's data limit).
	MaxMessageBytes = 128 * 1024
	// MaxFrameBytes is API Gateway's WebSocket frame limit; a message larger
	// than this must be written as several frames.
	MaxFrameBytes = 32 * 1024
	// MaxSeq bounds the chunk number: far more than any body that fits
	// through Lambda (6 MB) needs even at small message limits.
	MaxSeq = 100_000
	// MaxIDLen bounds request ids and reclaim keys.
	MaxIDLen = 128
)

// Hello is the agent's first message on a new socket.
type Hello struct {
	Type Type `json:"type"`
	// Subdomain is the name the agent asks for; empty for a random one.
	Subdomain string `json:"subdomain,omitempty"`
	// ReclaimKey is the key a previous ready message gave for Subdomain; it
	// lets a reconnecting agent take its name back at once.
	ReclaimKey string `json:"reclaimKey,omitempty"`
	// Version is the agent's version, for logs.
	Version string `json:"version,omitempty"`
}

// Ready tells the agent that its tunnel is live.
type Ready struct {
	Type Type `json:"type"`
	// URL is the public base URL of the tunnel.
	URL       string `json:"url"`
	Subdomain string `json:"subdomain"`
	// ReclaimKey is a secret the agent presents in hello after a reconnect to
	// get the same subdomain back.
	ReclaimKey string `json:"reclaimKey"`
	// ConnectionID is the API Gateway connection id of this socket, for logs.
	ConnectionID string `json:"connectionId,omitempty"`
}

// Headers maps canonical or lower-case header names to their values in order.
type Headers map[string][]string

// Request is one chunk of a public HTTP request, sent by the service. Chunk 0
// carries the method, URI and headers; later chunks carry only body.
type Request struct {
	Type      Type   `json:"type"`
	RequestID string `json:"requestId"`
	Seq       int    `json:"seq"`
	Final     bool   `json:"final"`
	// Method, URI (raw path and raw query exactly as received) and Headers
	// are set on chunk 0 only.
	Method  string  `json:"method,omitempty"`
	URI     string  `json:"uri,omitempty"`
	Headers Headers `json:"headers,omitempty"`
	// Body is this chunk's part of the body as standard base64.
	Body string `json:"body,omitempty"`
}

// Response is one chunk of the local app's response, sent by the agent.
// Chunk 0 carries the status and headers; later chunks carry only body.
type Response struct {
	Type       Type    `json:"type"`
	RequestID  string  `json:"requestId"`
	Seq        int     `json:"seq"`
	Final      bool    `json:"final"`
	StatusCode int     `json:"statusCode,omitempty"`
	Headers    Headers `json:"headers,omitempty"`
	// Body is this chunk's part of the body as standard base64.
	Body string `json:"body,omitempty"`
}

// Ping keeps the socket alive; the service answers with Pong.
type Ping struct {
	Type Type `json:"type"`
}

// Pong answers Ping.
type Pong struct {
	Type Type `json:"type"`
}

// ErrorCode names a kind of error a person or program can act on.
type ErrorCode string

// The error codes.
const (
	CodeBadMessage      ErrorCode = "bad_message"
	CodeSubdomainInUse  ErrorCode = "subdomain_in_use"
	CodeSubdomainDenied ErrorCode = "subdomain_invalid"
	CodeUnknownRequest  ErrorCode = "unknown_request"
	CodeInternal        ErrorCode = "internal"
)

// Error tells the agent that the service could not act on one of its
// messages. RequestID is set when the error concerns one request.
type Error struct {
	Type      Type      `json:"type"`
	Code      ErrorCode `json:"code"`
	Message   string    `json:"message"`
	RequestID string    `json:"requestId,omitempty"`
}

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid message")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// EncodeBody returns b as the base64 text messages carry.
func EncodeBody(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// DecodeBody returns the bytes of a message's base64 body.
func DecodeBody(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, invalidf("body is not valid base64: %v", err)
	}
	return b, nil
}
