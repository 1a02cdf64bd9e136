package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // part of the error
	}{
		{"not json", `{"type":`, "not a JSON message object"},
		{"array", `[]`, "not a JSON message object"},
		{"no type", `{"requestId":"a"}`, `missing "type"`},
		{"unknown type", `{"type":"bogus"}`, `unknown message type "bogus"`},
		{"request without id", `{"type":"request","method":"GET","uri":"/","final":true}`, `missing "requestId"`},
		{"request id with space", `{"type":"request","requestId":"a b","method":"GET","uri":"/"}`, `has the character ' '`},
		{"request id too long", `{"type":"request","requestId":"` + strings.Repeat("a", 129) + `","method":"GET","uri":"/"}`, "longer than 128"},
		{"request id not a string", `{"type":"request","requestId":7,"method":"GET","uri":"/"}`, "not a JSON message object"},
		{"bad base64", `{"type":"response","requestId":"r1","statusCode":200,"body":"@@@@"}`, "not valid base64"},
		{"base64 length", `{"type":"response","requestId":"r1","statusCode":200,"body":"abc"}`, "not a multiple of 4"},
		{"status too low", `{"type":"response","requestId":"r1","statusCode":99}`, "outside 100-599"},
		{"status too high", `{"type":"response","requestId":"r1","statusCode":600}`, "outside 100-599"},
		{"status missing", `{"type":"response","requestId":"r1"}`, "statusCode 0 is outside"},
		{"header name", `{"type":"response","requestId":"r1","statusCode":200,"headers":{"Bad Name":["x"]}}`, `header name "Bad Name"`},
		{"header name colon", `{"type":"request","requestId":"r1","method":"GET","uri":"/","headers":{"a:b":["x"]}}`, `header name "a:b"`},
		{"header value CRLF", `{"type":"response","requestId":"r1","statusCode":200,"headers":{"X-A":["a\r\nSet-Cookie: x=1"]}}`, "CR, LF or NUL"},
		{"header value LF", `{"type":"request","requestId":"r1","method":"GET","uri":"/","headers":{"X-A":["a\nb"]}}`, "CR, LF or NUL"},
		{"negative seq", `{"type":"response","requestId":"r1","seq":-1}`, "seq -1 is outside"},
		{"absurd seq", `{"type":"response","requestId":"r1","seq":100001}`, "seq 100001 is outside"},
		{"fractional seq", `{"type":"response","requestId":"r1","seq":1.5}`, "not a JSON message object"},
		{"head on later chunk", `{"type":"response","requestId":"r1","seq":2,"statusCode":200}`, "only chunk 0 may"},
		{"method missing", `{"type":"request","requestId":"r1","uri":"/"}`, `method "" is not`},
		{"method with space", `{"type":"request","requestId":"r1","method":"G T","uri":"/"}`, "not a valid HTTP method"},
		{"uri relative", `{"type":"request","requestId":"r1","method":"GET","uri":"x"}`, "does not start with /"},
		{"uri with space", `{"type":"request","requestId":"r1","method":"GET","uri":"/a b"}`, "space or control"},
		{"ready without url", `{"type":"ready","subdomain":"abc"}`, `missing "url"`},
		{"error without code", `{"type":"error","message":"x"}`, `missing "code"`},
		{"hello subdomain too long", `{"type":"hello","subdomain":"` + strings.Repeat("a", 64) + `"}`, "longer than 63"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.give))
			if err == nil {
				t.Fatalf("Decode(%s) = %#v, want an error", tt.give, m)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give Message
	}{
		{"hello", &Hello{Subdomain: "myapp", ReclaimKey: "k1", Version: "v1"}},
		{"hello empty", &Hello{}},
		{"ready", &Ready{URL: "https://myapp.example.com", Subdomain: "myapp", ReclaimKey: "k", ConnectionID: "c="}},
		{"request", &Request{RequestID: "r-1", Final: true, Method: "POST", URI: "/a?b=%2F&b=2",
			Headers: Headers{"Accept": {"a", "b"}, "Cookie": {"x=1; y=2"}}, Body: EncodeBody([]byte{0, 1, 2, 255})}},
		{"request later chunk", &Request{RequestID: "r-1", Seq: 3, Body: "AAAA"}},
		{"response", &Response{RequestID: "r-1", Final: true, StatusCode: 204, Headers: Headers{"Set-Cookie": {"a=1", "b=2"}}}},
		{"ping", &Ping{}},
		{"pong", &Pong{}},
		{"error", &Error{Code: CodeSubdomainInUse, Message: `subdomain "x" is in use`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), `"type":"`+string(tt.give.MessageType())+`"`) {
				t.Errorf("encoded %s lacks its type", b)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			want := reflect.ValueOf(tt.give).Elem()
			want.FieldByName("Type").Set(reflect.ValueOf(tt.give.MessageType()))
			if !reflect.DeepEqual(got, tt.give) {
				t.Errorf("round trip of %s = %#v, want %#v", b, got, tt.give)
			}
		})
	}
}

func TestEncodeValidates(t *testing.T) {
	_, err := Encode(&Response{RequestID: "r", StatusCode: 1000})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode of a bad status: %v, want ErrInvalid", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","subdomain":"abc"}`,
		`{"type":"request","requestId":"r","method":"GET","uri":"/?a=1","headers":{"A":["1","2"]},"body":"AAEC","final":true}`,
		`{"type":"response","requestId":"r","seq":1,"body":"AA=="}`,
		`{"type":"error","code":"x","message":"y"}`,
		`{"type":"ping"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// What decodes must encode and decode to the same message.
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%#v) after a good Decode: %v", m, err)
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(m)) = %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(m)) {
			t.Fatalf("round trip changed %#v into %#v", m, again)
		}
	})
}

// normalize drops the difference between empty and nil headers, which JSON
// does not keep.
func normalize(m Message) Message {
	switch x := m.(type) {
	case *Request:
		if len(x.Headers) == 0 {
			x.Headers = nil
		}
	case *Response:
		if len(x.Headers) == 0 {
			x.Headers = nil
		}
	}
	return m
}
