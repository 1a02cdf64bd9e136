package apigw

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/iotest"
)

// clientFrame builds a masked client frame (zero mask key) with a payload
// of n bytes, using the shortest length encoding.
func clientFrame(fin bool, opcode byte, n int) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, 0, 0, 0, 0) // mask key
	return append(f, bytes.Repeat([]byte{'x'}, n)...)
}

func TestFrameLimitConn(t *testing.T) {
	const limit = 1000
	closeFrame := maskedCloseFrame(1009, "Frame size too large")
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	tests := []struct {
		name      string
		give      []byte
		want      []byte
		wantTrips int
	}{
		{"small text frame", clientFrame(true, 1, 5), clientFrame(true, 1, 5), 0},
		{"frame at the limit, 16-bit length", clientFrame(true, 1, limit), clientFrame(true, 1, limit), 0},
		{"fragments at the limit", cat(clientFrame(false, 1, limit), clientFrame(true, 0, limit)),
			cat(clientFrame(false, 1, limit), clientFrame(true, 0, limit)), 0},
		{"ping and close pass", cat(clientFrame(true, 9, 4), clientFrame(true, 8, 2)),
			cat(clientFrame(true, 9, 4), clientFrame(true, 8, 2)), 0},
		{"text frame over the limit", cat(clientFrame(true, 1, 3), clientFrame(true, 1, limit+1)),
			cat(clientFrame(true, 1, 3), closeFrame), 1},
		{"continuation over the limit", cat(clientFrame(false, 1, 10), clientFrame(true, 0, limit+1)),
			cat(clientFrame(false, 1, 10), closeFrame), 1},
		{"binary frame over the limit", clientFrame(true, 2, limit+1), closeFrame, 1},
		{"64-bit length", clientFrame(true, 1, 70000), closeFrame, 1},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tt.name
			if oneByte {
				name += " one byte at a time"
			}
			t.Run(name, func(t *testing.T) {
				var src io.Reader = bytes.NewReader(tt.give)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				trips := 0
				c := &frameLimitConn{src: src, maxFrame: limit, onTrip: func(string) { trips++ }}
				got, err := io.ReadAll(c)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tt.want) {
					t.Errorf("got %d bytes %q..., want %d bytes %q...", len(got), head(got), len(tt.want), head(tt.want))
				}
				if trips != tt.wantTrips {
					t.Errorf("tripped %d times, want %d", trips, tt.wantTrips)
				}
			})
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func TestMaskedCloseFrame(t *testing.T) {
	f := maskedCloseFrame(1009, "big")
	want := []byte{0x88, 0x80 | 5, 0, 0, 0, 0, 0x03, 0xf1, 'b', 'i', 'g'}
	if !bytes.Equal(f, want) {
		t.Errorf("got % x, want % x", f, want)
	}
	if long := maskedCloseFrame(1009, string(bytes.Repeat([]byte{'r'}, 200))); long[1]&0x7f != 125 {
		t.Errorf("control payload of %d bytes, want at most 125", long[1]&0x7f)
	}
}

// bufferedHijacker hijacks into a bufio.Reader that already holds bytes, as
// net/http's does when the client sent frames right behind its handshake.
type bufferedHijacker struct {
	http.ResponseWriter
	conn     net.Conn
	buffered []byte
}

func (h *bufferedHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(h.buffered), h.conn))
	if _, err := br.Peek(len(h.buffered)); err != nil {
		return nil, nil, err
	}
	return h.conn, bufio.NewReadWriter(br, bufio.NewWriter(h.conn)), nil
}

func TestHijackParsesBufferedBytes(t *testing.T) {
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	big := clientFrame(true, 1, 100)
	small := clientFrame(true, 1, 5)
	trips := 0
	fw := &frameLimitWriter{
		ResponseWriter: nil,
		maxFrame:       50,
		onTrip:         func(string) { trips++ },
	}
	fw.ResponseWriter = &bufferedHijacker{conn: server, buffered: append(append([]byte(nil), small...), big[:3]...)}
	_, brw, err := fw.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = client.Write(big[3:]) }()

	want := append(append([]byte(nil), small...), maskedCloseFrame(1009, "Frame size too large")...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(brw.Reader, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || trips != 1 {
		t.Errorf("got % x (trips %d), want % x (trips 1)", got, trips, want)
	}
}
