package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Message is one of the message types of this package, as a pointer.
type Message interface {
	// MessageType returns the message's type discriminator.
	MessageType() Type
	validate() error
}

func (*Hello) MessageType() Type    { return TypeHello }
func (*Ready) MessageType() Type    { return TypeReady }
func (*Request) MessageType() Type  { return TypeRequest }
func (*Response) MessageType() Type { return TypeResponse }
func (*Ping) MessageType() Type     { return TypePing }
func (*Pong) MessageType() Type     { return TypePong }
func (*Error) MessageType() Type    { return TypeError }

// envelope has the fields of every message type, so that a message is parsed
// once whatever its type; Decode copies the fields into the typed message.
type envelope struct {
	Type         Type      `json:"type"`
	RequestID    string    `json:"requestId"`
	Seq          int       `json:"seq"`
	Final        bool      `json:"final"`
	Method       string    `json:"method"`
	URI          string    `json:"uri"`
	StatusCode   int       `json:"statusCode"`
	Headers      Headers   `json:"headers"`
	Body         string    `json:"body"`
	Subdomain    string    `json:"subdomain"`
	ReclaimKey   string    `json:"reclaimKey"`
	Version      string    `json:"version"`
	URL          string    `json:"url"`
	ConnectionID string    `json:"connectionId"`
	Code         ErrorCode `json:"code"`
	Message      string    `json:"message"`
}

// Decode parses and validates one message. The error, wrapping ErrInvalid,
// says what is wrong in words a person can act on.
func Decode(data []byte) (Message, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, invalidf("not a JSON message object: %v", err)
	}
	var m Message
	switch e.Type {
	case TypeHello:
		m = &Hello{Type: e.Type, Subdomain: e.Subdomain, ReclaimKey: e.ReclaimKey, Version: e.Version}
	case TypeReady:
		m = &Ready{Type: e.Type, URL: e.URL, Subdomain: e.Subdomain, ReclaimKey: e.ReclaimKey, ConnectionID: e.ConnectionID}
	case TypeRequest:
		m = &Request{Type: e.Type, RequestID: e.RequestID, Seq: e.Seq, Final: e.Final,
			Method: e.Method, URI: e.URI, Headers: e.Headers, Body: e.Body}
	case TypeResponse:
		m = &Response{Type: e.Type, RequestID: e.RequestID, Seq: e.Seq, Final: e.Final,
			StatusCode: e.StatusCode, Headers: e.Headers, Body: e.Body}
	case TypePing:
		m = &Ping{Type: e.Type}
	case TypePong:
		m = &Pong{Type: e.Type}
	case TypeError:
		m = &Error{Type: e.Type, Code: e.Code, Message: e.Message, RequestID: e.RequestID}
	case "":
		return nil, invalidf(`missing "type"`)
	default:
		return nil, invalidf("unknown message type %q", e.Type)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Encode validates m and returns it as JSON, with its type field set.
func Encode(m Message) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var v any
	switch x := m.(type) {
	case *Hello:
		c := *x
		c.Type = TypeHello
		v = &c
	case *Ready:
		c := *x
		c.Type = TypeReady
		v = &c
	case *Request:
		c := *x
		c.Type = TypeRequest
		v = &c
	case *Response:
		c := *x
		c.Type = TypeResponse
		v = &c
	case *Ping:
		v = &Ping{Type: TypePing}
	case *Pong:
		v = &Pong{Type: TypePong}
	case *Error:
		c := *x
		c.Type = TypeError
		v = &c
	default:
		return nil, fmt.Errorf("encode %T: not a protocol message", m)
	}
	return json.Marshal(v)
}

func (m *Hello) validate() error {
	if len(m.Subdomain) > 63 {
		return invalidf("hello: subdomain is longer than 63 characters")
	}
	if len(m.ReclaimKey) > MaxIDLen {
		return invalidf("hello: reclaimKey is longer than %d characters", MaxIDLen)
	}
	if len(m.Version) > MaxIDLen {
		return invalidf("hello: version is longer than %d characters", MaxIDLen)
	}
	return nil
}

func (m *Ready) validate() error {
	switch {
	case m.URL == "":
		return invalidf(`ready: missing "url"`)
	case m.Subdomain == "":
		return invalidf(`ready: missing "subdomain"`)
	}
	return nil
}

func (m *Request) validate() error {
	if err := validateChunk("request", m.RequestID, m.Seq, m.Body); err != nil {
		return err
	}
	if m.Seq > 0 {
		if m.Method != "" || m.URI != "" || m.Headers != nil {
			return invalidf("request %s: chunk %d carries method, uri or headers; only chunk 0 may", m.RequestID, m.Seq)
		}
		return nil
	}
	if !isToken(m.Method) {
		return invalidf("request %s: method %q is not a valid HTTP method", m.RequestID, m.Method)
	}
	if err := validateURI(m.URI); err != nil {
		return invalidf("request %s: %v", m.RequestID, err)
	}
	return validateHeaders("request "+m.RequestID, m.Headers)
}

func (m *Response) validate() error {
	if err := validateChunk("response", m.RequestID, m.Seq, m.Body); err != nil {
		return err
	}
	if m.Seq > 0 {
		if m.StatusCode != 0 || m.Headers != nil {
			return invalidf("response %s: chunk %d carries statusCode or headers; only chunk 0 may", m.RequestID, m.Seq)
		}
		return nil
	}
	if m.StatusCode < 100 || m.StatusCode > 599 {
		return invalidf("response %s: statusCode %d is outside 100-599", m.RequestID, m.StatusCode)
	}
	return validateHeaders("response "+m.RequestID, m.Headers)
}

func (*Ping) validate() error { return nil }
func (*Pong) validate() error { return nil }

func (m *Error) validate() error {
	switch {
	case m.Code == "":
		return invalidf(`error: missing "code"`)
	case m.Message == "":
		return invalidf(`error: missing "message"`)
	}
	return nil
}

func validateChunk(kind, id string, seq int, body string) error {
	if err := ValidateRequestID(id); err != nil {
		return invalidf("%s: %v", kind, err)
	}
	if seq < 0 || seq > MaxSeq {
		return invalidf("%s %s: seq %d is outside 0-%d", kind, id, seq, MaxSeq)
	}
	if err := validateBase64(body); err != nil {
		return invalidf("%s %s chunk %d: body is not valid base64: %v", kind, id, seq, err)
	}
	return nil
}

// ValidateRequestID checks that id is a usable request id: 1 to MaxIDLen
// characters of letters, digits and -_.:=+/.
func ValidateRequestID(id string) error {
	if id == "" {
		return invalidf(`missing "requestId"`)
	}
	if len(id) > MaxIDLen {
		return invalidf("requestId is longer than %d characters", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && !strings.ContainsRune("-_.:=+/", rune(c)) {
			return invalidf("requestId %q has the character %q", id, c)
		}
	}
	return nil
}

func validateURI(uri string) error {
	if uri == "" {
		return fmt.Errorf(`missing "uri"`)
	}
	if uri[0] != '/' && uri != "*" {
		return fmt.Errorf("uri %q does not start with /", uri)
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("uri %q has a space or control character", uri)
		}
	}
	return nil
}

func validateHeaders(where string, h Headers) error {
	for name, values := range h {
		if !isToken(name) {
			return invalidf("%s: header name %q is not a valid token", where, name)
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return invalidf("%s: header %s has a value with CR, LF or NUL", where, name)
			}
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (a valid header name or
// method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// base64Alphabet marks the characters of standard base64 (without "=").
var base64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// validateBase64 checks standard padded base64 without decoding it: bodies
// pass through the service as the same base64 text, so this runs on every
// byte of every body and must be cheap.
func validateBase64(s string) error {
	n := len(s)
	if n%4 != 0 {
		return fmt.Errorf("length %d is not a multiple of 4", n)
	}
	if n > 0 && s[n-1] == '=' {
		n--
		if s[n-1] == '=' {
			n--
		}
	}
	for i := 0; i < n; i++ {
		if !base64Alphabet[s[i]] {
			return fmt.Errorf("character %q at offset %d", s[i], i)
		}
	}
	return nil
}
