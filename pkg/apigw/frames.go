package apigw

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// API Gateway closes a socket whose client sends a data frame over 32 KB
// with 1009 (message too big). coder/websocket limits whole messages only
// (SetReadLimit), so frames are checked underneath it: the hijacked
// connection's reads pass through frameLimitConn, which follows the frame
// headers of the client's byte stream.
//
// When a data frame is too big, frameLimitConn hands the websocket library,
// in place of that frame, a close frame "from the client" with status 1009
// and stops reading. The library answers a client's close by echoing its
// status and reason and closing the connection, so the client sees exactly
// what API Gateway sends: close 1009, then the end of the connection. The
// oversized payload is never read.

// frameLimitWriter wraps the ResponseWriter given to websocket.Accept so
// that Hijack returns a frameLimitConn.
type frameLimitWriter struct {
	http.ResponseWriter
	maxFrame int64
	onTrip   func(reason string) // called once, before the fake close frame is read
}

func (w *frameLimitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot hijack")
	}
	conn, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the server already buffered past the handshake belong to the
	// first frames: they must go through the parser too.
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	fc := &frameLimitConn{
		Conn:     conn,
		src:      io.MultiReader(bytes.NewReader(append([]byte(nil), buffered...)), conn),
		maxFrame: w.maxFrame,
		onTrip:   w.onTrip,
	}
	brw.Reader.Reset(fc)
	return fc, brw, nil
}

// frameLimitConn passes a client's WebSocket byte stream through unchanged
// while it tracks frame boundaries. Reads come from one goroutine at a time
// (the websocket library's read lock), so it keeps no lock of its own.
type frameLimitConn struct {
	net.Conn
	src      io.Reader
	maxFrame int64
	onTrip   func(reason string)

	buf     [4096]byte
	out     []byte // processed bytes not yet returned
	hdr     []byte // header bytes of the frame being parsed
	skip    int64  // payload bytes left in the current frame
	readErr error  // from src, returned once out is drained
	tripped bool

	closeOnce sync.Once
}

// Linger bounds for Close: how long and how much to keep reading a closed
// socket so that unread client data does not turn the close into a reset.
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

// Close closes the connection without a TCP reset: it sends FIN after any
// pending data, then discards what the client still sends (a frame the
// server will not read, the client's close echo) until the client closes or
// the linger bounds run out. A reset would make the client lose the close
// frame it has not read yet.
func (c *frameLimitConn) Close() error {
	c.closeOnce.Do(func() {
		tc, ok := c.Conn.(*net.TCPConn)
		if !ok || tc.CloseWrite() != nil {
			_ = c.Conn.Close()
			return
		}
		_ = tc.SetReadDeadline(time.Now().Add(lingerTime))
		go func() {
			_, _ = io.Copy(io.Discard, io.LimitReader(tc, lingerBytes))
			_ = tc.Close()
		}()
	})
	return nil
}

func (c *frameLimitConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.tripped || c.readErr != nil {
			if c.readErr == nil {
				return 0, io.EOF
			}
			return 0, c.readErr
		}
		n, err := c.src.Read(c.buf[:])
		c.process(c.buf[:n])
		if err != nil {
			c.readErr = err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// process appends b to out frame by frame until a frame is too big.
func (c *frameLimitConn) process(b []byte) {
	for len(b) > 0 && !c.tripped {
		if c.skip > 0 {
			n := int64(len(b))
			if n > c.skip {
				n = c.skip
			}
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			c.skip -= n
			continue
		}
		c.hdr = append(c.hdr, b[0])
		b = b[1:]
		opcode, length, ok := parseFrameHeader(c.hdr)
		if !ok {
			continue
		}
		if opcode <= 2 && length > c.maxFrame { // continuation, text, binary
			reason := "Frame size too large"
			c.tripped = true
			c.hdr = nil
			if c.onTrip != nil {
				c.onTrip(reason)
			}
			c.out = append(c.out, maskedCloseFrame(1009, reason)...)
			return
		}
		c.out = append(c.out, c.hdr...)
		c.hdr = c.hdr[:0]
		c.skip = length
	}
}

// parseFrameHeader reports the opcode and payload length of the frame header
// in h once h holds all of it (RFC 6455 section 5.2).
func parseFrameHeader(h []byte) (opcode byte, length int64, ok bool) {
	if len(h) < 2 {
		return 0, 0, false
	}
	need := 2
	switch h[1] & 0x7f {
	case 126:
		need += 2
	case 127:
		need += 8
	}
	if h[1]&0x80 != 0 {
		need += 4
	}
	if len(h) < need {
		return 0, 0, false
	}
	switch l := h[1] & 0x7f; l {
	case 126:
		length = int64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		length = int64(binary.BigEndian.Uint64(h[2:10]) &^ (1 << 63))
	default:
		length = int64(l)
	}
	return h[0] & 0x0f, length, true
}

// maskedCloseFrame is a client close frame (masked with a zero key, which
// leaves the payload as is) carrying code and reason.
func maskedCloseFrame(code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	f := []byte{0x88, 0x80 | byte(2+len(reason)), 0, 0, 0, 0}
	f = binary.BigEndian.AppendUint16(f, code)
	return append(f, reason...)
}
