package protocol

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSplitResponseStaysWithinLimit(t *testing.T) {
	head := Response{RequestID: "req-1", StatusCode: 200, Headers: Headers{
		"Content-Type": {"application/octet-stream"},
		"X-Many":       {strings.Repeat("v", 500), "<&>"},
	}}
	for _, tt := range []struct {
		limit int
		size  int
	}{
		{MaxMessageBytes, 0},
		{MaxMessageBytes, 1},
		{MaxMessageBytes, 100 * 1024},
		{MaxMessageBytes, 1 << 20},
		{MaxMessageBytes, 4 << 20},
		{2048, 10_000},
		{2048, 3},
	} {
		t.Run(fmt.Sprintf("limit=%d/size=%d", tt.limit, tt.size), func(t *testing.T) {
			body := randomBytes(t, tt.size)
			chunks, err := SplitResponse(head, EncodeBody(body), tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range chunks {
				b, err := Encode(c)
				if err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				if len(b) > tt.limit {
					t.Errorf("chunk %d encodes to %d bytes, over the limit %d", i, len(b), tt.limit)
				}
				if c.Seq != i || c.Final != (i == len(chunks)-1) {
					t.Errorf("chunk %d has seq %d final %v", i, c.Seq, c.Final)
				}
			}
			// Reassemble in reverse order, as storage may return them.
			rev := make([]*Response, len(chunks))
			for i, c := range chunks {
				rev[len(chunks)-1-i] = c
			}
			got, err := JoinResponse(rev, 0)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := DecodeBody(got.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dec, body) {
				t.Errorf("reassembled body differs (%d bytes, want %d)", len(dec), len(body))
			}
			if got.StatusCode != 200 || got.Headers["X-Many"][1] != "<&>" {
				t.Errorf("head lost: %+v", got)
			}
		})
	}
}

func TestSplitRequestKeepsHeadOnChunkZero(t *testing.T) {
	head := Request{RequestID: "r", Method: "PUT", URI: "/up?x=1", Headers: Headers{"A": {"1"}}}
	chunks, err := SplitRequest(head, EncodeBody(randomBytes(t, 5000)), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 5 {
		t.Fatalf("got %d chunks for 5000 bytes at 1 KiB, want several", len(chunks))
	}
	var asm Assembler
	for _, c := range chunks {
		if (c.Seq == 0) != (c.Method == "PUT") {
			t.Errorf("chunk %d method %q", c.Seq, c.Method)
		}
		if _, err := Encode(c); err != nil {
			t.Fatalf("chunk %d: %v", c.Seq, err)
		}
		if _, err := asm.Add(c.Seq, c.Final, c.Body); err != nil {
			t.Fatal(err)
		}
	}
	if asm.Size() != 5000 {
		t.Errorf("assembled %d bytes, want 5000", asm.Size())
	}
}

func TestCapacityRefusesHugeHead(t *testing.T) {
	head := Response{RequestID: "r", StatusCode: 200, Headers: Headers{"X-Big": {strings.Repeat("a", 2000)}}}
	if _, err := SplitResponse(head, "", 1024); err == nil || !strings.Contains(err.Error(), "leaving no room") {
		t.Fatalf("SplitResponse with a 2 KB head at a 1 KB limit: %v", err)
	}
}

func TestAssemblerRejects(t *testing.T) {
	type chunk struct {
		seq   int
		final bool
		body  string
	}
	tests := []struct {
		name string
		max  int
		give []chunk
		want string
	}{
		{"gap", 0, []chunk{{0, false, "AAAA"}, {2, true, "AAAA"}}, "chunk 2 arrived before chunk 1"},
		{"duplicate", 0, []chunk{{0, false, "AAAA"}, {0, false, "AAAA"}}, "chunk 0 arrived twice"},
		{"after final", 0, []chunk{{0, true, "AAAA"}, {1, true, "AAAA"}}, "after the final chunk"},
		{"padding inside", 0, []chunk{{0, false, "AA=="}, {1, true, "AAAA"}}, "padded"},
		{"over limit", 5, []chunk{{0, false, "AAAA"}, {1, true, "AAAA"}}, "over the limit of 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asm := Assembler{MaxBytes: tt.max}
			var err error
			for _, c := range tt.give {
				if _, err = asm.Add(c.seq, c.final, c.body); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestJoinResponseRejects(t *testing.T) {
	r := func(seq int, final bool) *Response {
		c := &Response{RequestID: "r", Seq: seq, Final: final, Body: "AAAA"}
		if seq == 0 {
			c.StatusCode = 200
		}
		return c
	}
	tests := []struct {
		name string
		give []*Response
		max  int
		want string
	}{
		{"none", nil, 0, "no response chunks"},
		{"gap", []*Response{r(0, false), r(2, true)}, 0, "chunk 1 is missing"},
		{"no final", []*Response{r(0, false), r(1, false)}, 0, "final chunk has not arrived"},
		{"duplicate", []*Response{r(0, false), r(1, false), r(1, true)}, 0, "arrived twice"},
		{"final early", []*Response{r(0, true), r(1, true)}, 0, "after the final chunk"},
		{"over limit", []*Response{r(0, false), r(1, true)}, 4, "over the limit"},
		{"mixed", []*Response{r(0, false), {RequestID: "other", Seq: 1, Final: true}}, 0, "mixed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := JoinResponse(tt.give, tt.max)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	_, err := JoinResponse([]*Response{r(0, false), r(1, true)}, 4)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("over-limit error %v does not wrap ErrTooLarge", err)
	}
}

// FuzzReassembly splits a body at a fuzzed limit, shuffles, drops or repeats
// chunks, and checks that reassembly either returns the body exactly or
// fails with an error.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte("hello world"), uint16(300), uint64(1), uint8(0))
	f.Add([]byte{0xff, 1, 2}, uint16(400), uint64(7), uint8(1))
	f.Add([]byte{1, 2, 3}, uint16(1000), uint64(3), uint8(2))
	f.Add(bytes.Repeat([]byte{7}, 600), uint16(120), uint64(5), uint8(1)) // several chunks; larger seeds slow the fuzzer to a crawl
	f.Fuzz(func(t *testing.T, body []byte, limit uint16, seed uint64, mutate uint8) {
		head := Response{RequestID: "fz", StatusCode: 200}
		chunks, err := SplitResponse(head, EncodeBody(body), int(limit))
		if err != nil {
			return // a limit too small for the head
		}
		rng := rand.New(rand.NewPCG(seed, seed))
		rng.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
		broken := false
		switch mutate % 3 {
		case 1: // drop one
			if len(chunks) > 1 {
				i := rng.IntN(len(chunks))
				chunks = append(chunks[:i], chunks[i+1:]...)
				broken = true
			}
		case 2: // repeat one
			chunks = append(chunks, chunks[rng.IntN(len(chunks))])
			broken = true
		}
		got, err := JoinResponse(chunks, 0)
		if broken {
			if err == nil {
				t.Fatalf("reassembly of damaged chunks succeeded")
			}
			return
		}
		if err != nil {
			t.Fatalf("reassembly: %v", err)
		}
		dec, err := DecodeBody(got.Body)
		if err != nil || !bytes.Equal(dec, body) {
			t.Fatalf("reassembled body differs: %v", err)
		}
	})
}
