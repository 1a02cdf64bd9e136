package protocol

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Capacity returns how many characters of base64 body fit in chunk 0 of m
// (which carries m's head) and in each later chunk, so that every encoded
// message stays within limit bytes. Both are multiples of 4, so every piece
// but the last is whole base64 without padding. m must be a *Request or a
// *Response; its Body, Seq and Final are ignored.
func Capacity(m Message, limit int) (first, rest int, err error) {
	var head, tail Message
	switch x := m.(type) {
	case *Request:
		h := *x
		h.Type, h.Seq, h.Final, h.Body = TypeRequest, 0, false, "x"
		t := Request{Type: TypeRequest, RequestID: x.RequestID, Seq: MaxSeq, Body: "x"}
		head, tail = &h, &t
	case *Response:
		h := *x
		h.Type, h.Seq, h.Final, h.Body = TypeResponse, 0, false, "x"
		t := Response{Type: TypeResponse, RequestID: x.RequestID, Seq: MaxSeq, Body: "x"}
		head, tail = &h, &t
	default:
		return 0, 0, fmt.Errorf("capacity of %T: only requests and responses have bodies", m)
	}
	// Marshal directly: the placeholder body "x" is not valid base64.
	hb, err := json.Marshal(head)
	if err != nil {
		return 0, 0, err
	}
	tb, err := json.Marshal(tail)
	if err != nil {
		return 0, 0, err
	}
	// Each marshalled form holds one character of body; "false" is the
	// longest value final can take.
	first = (limit - (len(hb) - 1)) / 4 * 4
	rest = (limit - (len(tb) - 1)) / 4 * 4
	if first < 4 || rest < 4 {
		return 0, 0, fmt.Errorf("%s %s: its head takes %d bytes, leaving no room for a body within %d bytes",
			m.MessageType(), idOf(m), len(hb)-1, limit)
	}
	return first, rest, nil
}

func idOf(m Message) string {
	switch x := m.(type) {
	case *Request:
		return x.RequestID
	case *Response:
		return x.RequestID
	}
	return ""
}

// SplitRequest splits a request with the base64 body b64 into chunks whose
// encoded form each stays within limit bytes.
func SplitRequest(head Request, b64 string, limit int) ([]*Request, error) {
	first, rest, err := Capacity(&head, limit)
	if err != nil {
		return nil, err
	}
	pieces := splitBase64(b64, first, rest)
	out := make([]*Request, len(pieces))
	for i, p := range pieces {
		r := &Request{Type: TypeRequest, RequestID: head.RequestID, Seq: i, Body: p}
		if i == 0 {
			r.Method, r.URI, r.Headers = head.Method, head.URI, head.Headers
		}
		out[i] = r
	}
	out[len(out)-1].Final = true
	return out, nil
}

// SplitResponse splits a response with the base64 body b64 into chunks whose
// encoded form each stays within limit bytes.
func SplitResponse(head Response, b64 string, limit int) ([]*Response, error) {
	first, rest, err := Capacity(&head, limit)
	if err != nil {
		return nil, err
	}
	pieces := splitBase64(b64, first, rest)
	out := make([]*Response, len(pieces))
	for i, p := range pieces {
		r := &Response{Type: TypeResponse, RequestID: head.RequestID, Seq: i, Body: p}
		if i == 0 {
			r.StatusCode, r.Headers = head.StatusCode, head.Headers
		}
		out[i] = r
	}
	out[len(out)-1].Final = true
	return out, nil
}

// splitBase64 cuts s into a first piece of at most first characters and
// further pieces of at most rest characters; it always returns at least one
// piece, possibly empty.
func splitBase64(s string, first, rest int) []string {
	if len(s) <= first {
		return []string{s}
	}
	out := make([]string, 0, 1+(len(s)-first+rest-1)/rest)
	out = append(out, s[:first])
	for s = s[first:]; len(s) > rest; s = s[rest:] {
		out = append(out, s[:rest])
	}
	return append(out, s)
}

// DecodedLen returns the number of bytes the valid base64 text s decodes to.
func DecodedLen(s string) int {
	n := len(s) / 4 * 3
	if len(s) > 0 && s[len(s)-1] == '=' {
		n--
		if s[len(s)-2] == '=' {
			n--
		}
	}
	return n
}

// Assembler joins the chunks of one message that arrive in order on one
// socket (as requests do at the agent). It rejects gaps, duplicates, chunks
// after the final one, padding inside the body and bodies over MaxBytes.
type Assembler struct {
	// MaxBytes bounds the decoded body; 0 means no bound.
	MaxBytes int
	next     int
	done     bool
	size     int
	parts    []string
}

// Add appends one chunk; it reports whether the message is complete.
func (a *Assembler) Add(seq int, final bool, body string) (complete bool, err error) {
	switch {
	case a.done:
		return false, invalidf("chunk %d arrived after the final chunk %d", seq, a.next-1)
	case seq < a.next:
		return false, invalidf("chunk %d arrived twice", seq)
	case seq > a.next:
		return false, invalidf("chunk %d arrived before chunk %d", seq, a.next)
	}
	if n := len(a.parts); n > 0 && strings.HasSuffix(a.parts[n-1], "=") {
		return false, invalidf("chunk %d follows a chunk whose base64 is padded", seq)
	}
	a.size += DecodedLen(body)
	if a.MaxBytes > 0 && a.size > a.MaxBytes {
		return false, fmt.Errorf("%w: body is over the limit of %d bytes", ErrTooLarge, a.MaxBytes)
	}
	a.parts = append(a.parts, body)
	a.next++
	a.done = final
	return final, nil
}

// Body returns the whole base64 body once the final chunk has been added.
func (a *Assembler) Body() (string, error) {
	if !a.done {
		return "", invalidf("the final chunk has not arrived (have %d)", a.next)
	}
	return strings.Join(a.parts, ""), nil
}

// Size returns the decoded size of the chunks added so far.
func (a *Assembler) Size() int { return a.size }

// ErrTooLarge is wrapped by errors about bodies over a size limit.
var ErrTooLarge = fmt.Errorf("%w: too large", ErrInvalid)

// JoinResponse reassembles a response from chunks in any order, as the
// service collects them from storage. It returns chunk 0 (with the whole
// body in it) and rejects duplicates, gaps, a missing or misplaced final
// chunk, padding inside the body and decoded bodies over maxBytes (0: no
// bound).
func JoinResponse(chunks []*Response, maxBytes int) (*Response, error) {
	if len(chunks) == 0 {
		return nil, invalidf("no response chunks")
	}
	sorted := slices.Clone(chunks)
	slices.SortFunc(sorted, func(a, b *Response) int { return a.Seq - b.Seq })
	var asm Assembler
	asm.MaxBytes = maxBytes
	id := sorted[0].RequestID
	for i, c := range sorted {
		if c.RequestID != id {
			return nil, invalidf("chunks of requests %s and %s mixed", id, c.RequestID)
		}
		if c.Seq != i {
			if c.Seq < i {
				return nil, invalidf("response %s: chunk %d arrived twice", id, c.Seq)
			}
			return nil, invalidf("response %s: chunk %d is missing", id, i)
		}
		if _, err := asm.Add(c.Seq, c.Final, c.Body); err != nil {
			return nil, fmt.Errorf("response %s: %w", id, err)
		}
	}
	body, err := asm.Body()
	if err != nil {
		return nil, fmt.Errorf("response %s: %w", id, err)
	}
	head := *sorted[0]
	head.Final, head.Body = true, body
	return &head, nil
}
