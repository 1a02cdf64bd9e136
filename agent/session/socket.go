package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lambdatunnel/lambdatunnel/agent/forward"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// writeTimeout bounds writing one message.
const writeTimeout = 30 * time.Second

// assemblyTTL drops a request whose chunks stopped coming (the service gave
// up on it).
const assemblyTTL = 2 * time.Minute

// socket is one WebSocket to the service, from ready to close. Its reader
// goroutine decodes messages and starts a goroutine per whole request; its
// writer goroutine is the only one that writes, one message at a time.
type socket struct {
	m      *Manager
	conn   *websocket.Conn
	ready  *protocol.Ready
	opened time.Time
	log    *slog.Logger

	out  chan outMsg   // to the writer
	pong chan struct{} // pongs, for the ping loop
	dead chan struct{} // closed when the reader ends: the socket is gone

	busy     atomic.Int64 // requests received (from chunk 0) and not yet answered on the wire
	activity atomic.Int64 // unix nanoseconds of the last request chunk in or response out

	reasonMu sync.Mutex
	reason   string // why the socket ended; the first cause wins

	assemblies map[string]*assembly // reader goroutine only
	early      [][]byte             // messages that came before ready, served first
}

// outMsg is one message for the writer, or the order to close.
type outMsg struct {
	msg  protocol.Message
	sent func() // after the message is written (or cannot be)
	// close: write a close frame with 1000 and this reason, then stop.
	close  bool
	reason string
}

type assembly struct {
	head    *protocol.Request
	asm     protocol.Assembler
	started time.Time
}

func newSocket(m *Manager, conn *websocket.Conn, ready *protocol.Ready) *socket {
	s := &socket{
		m:          m,
		conn:       conn,
		ready:      ready,
		opened:     time.Now(),
		log:        m.log.With("connectionId", ready.ConnectionID),
		out:        make(chan outMsg, 64),
		pong:       make(chan struct{}, 1),
		dead:       make(chan struct{}),
		assemblies: make(map[string]*assembly),
	}
	s.touch()
	return s
}

func (s *socket) touch() { s.activity.Store(time.Now().UnixNano()) }

func (s *socket) quietFor() time.Duration {
	return time.Since(time.Unix(0, s.activity.Load()))
}

// lose records why the socket ended (if nothing else did first) and drops
// the connection.
func (s *socket) lose(reason string) {
	s.reasonMu.Lock()
	if s.reason == "" {
		s.reason = reason
	}
	s.reasonMu.Unlock()
	s.conn.CloseNow()
}

func (s *socket) lossReason() string {
	s.reasonMu.Lock()
	defer s.reasonMu.Unlock()
	return s.reason
}

// close asks the writer to close the socket with 1000 once it has written
// what is queued before.
func (s *socket) close(reason string) {
	select {
	case s.out <- outMsg{close: true, reason: reason}:
	case <-s.dead:
	}
}

// send queues a message for the writer; it reports false when the socket
// is gone.
func (s *socket) send(o outMsg) bool {
	select {
	case s.out <- o:
		return true
	case <-s.dead:
		return false
	}
}

// readLoop reads until the socket ends.
func (s *socket) readLoop(work context.Context) {
	defer close(s.dead)
	for _, data := range s.early {
		s.handle(work, data)
	}
	s.early = nil
	for {
		typ, data, err := s.conn.Read(context.Background())
		if err != nil {
			s.reasonMu.Lock()
			if s.reason == "" {
				s.reason = lossReason(err)
			}
			s.reasonMu.Unlock()
			return
		}
		if typ != websocket.MessageText {
			s.log.Warn("binary message from the service ignored", "bytes", len(data))
			continue
		}
		s.handle(work, data)
	}
}

// writeLoop writes queued messages, each in frames of at most
// MaxFrameBytes, until told to close or the socket is gone.
func (s *socket) writeLoop() {
	for {
		select {
		case <-s.dead:
			return
		case o := <-s.out:
			if o.close {
				_ = s.conn.Close(websocket.StatusNormalClosure, o.reason)
				return
			}
			err := s.write(o.msg)
			if o.sent != nil {
				o.sent()
			}
			if err != nil {
				s.lose("could not write to it: " + lossReason(err))
				return
			}
		}
	}
}

func (s *socket) write(m protocol.Message) error {
	b, err := protocol.Encode(m)
	if err != nil {
		s.log.Warn("message not sent: it does not encode", "type", m.MessageType(), "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := writeMessage(ctx, s.conn, b, s.m.cfg.MaxFrameBytes); err != nil {
		return err
	}
	s.touch()
	return nil
}

// writeMessage writes one text message in frames of at most maxFrame
// bytes: coder/websocket's message Writer sends one frame per Write call,
// and API Gateway closes the socket with 1009 at a frame over 32 KB.
func writeMessage(ctx context.Context, conn *websocket.Conn, b []byte, maxFrame int) error {
	if len(b) <= maxFrame {
		return conn.Write(ctx, websocket.MessageText, b)
	}
	w, err := conn.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for len(b) > 0 {
		n := min(len(b), maxFrame)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return w.Close()
}

// pingLoop pings every interval and gives the socket up when a pong does
// not come within timeout.
func (s *socket) pingLoop(interval, timeout time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-tick.C:
		}
		select { // a late pong of an earlier ping does not count
		case <-s.pong:
		default:
		}
		if !s.send(outMsg{msg: &protocol.Ping{}}) {
			return
		}
		t := time.NewTimer(timeout)
		select {
		case <-s.dead:
			t.Stop()
			return
		case <-s.pong:
			t.Stop()
		case <-t.C:
			s.lose(fmt.Sprintf("no answer to a ping within %v", timeout))
			return
		}
	}
}

// handle acts on one message from the service.
func (s *socket) handle(work context.Context, data []byte) {
	msg, err := protocol.Decode(data)
	if err != nil {
		s.badMessage(data, err)
		return
	}
	switch msg := msg.(type) {
	case *protocol.Request:
		s.request(work, msg)
	case *protocol.Pong:
		select {
		case s.pong <- struct{}{}:
		default:
		}
	case *protocol.Error:
		s.log.Warn("the service reported an error", "code", msg.Code, "message", msg.Message, "requestId", msg.RequestID)
	default:
		s.log.Debug("message ignored", "type", msg.MessageType())
	}
}

// badMessage answers a malformed request chunk with 400 when its request
// id can be read, and logs anything else.
func (s *socket) badMessage(data []byte, err error) {
	var probe struct {
		Type      protocol.Type `json:"type"`
		RequestID string        `json:"requestId"`
	}
	_ = json.Unmarshal(data, &probe)
	if probe.Type != protocol.TypeRequest || protocol.ValidateRequestID(probe.RequestID) != nil {
		s.log.Warn("bad message from the service dropped", "err", err)
		return
	}
	if _, ok := s.assemblies[probe.RequestID]; ok {
		delete(s.assemblies, probe.RequestID)
	} else {
		s.busy.Add(1) // answered below
	}
	s.log.Warn("bad request message from the service", "requestId", probe.RequestID, "err", err)
	s.respond(forward.ErrorPage(probe.RequestID, http.StatusBadRequest, "bad_request", "The agent received a malformed request: "+err.Error()))
}

// request adds a chunk to its request and serves the request once whole.
func (s *socket) request(work context.Context, c *protocol.Request) {
	s.touch()
	now := time.Now()
	a := s.assemblies[c.RequestID]
	if c.Seq == 0 {
		if a != nil {
			delete(s.assemblies, c.RequestID)
			s.respond(forward.ErrorPage(c.RequestID, http.StatusBadRequest, "bad_request", "The agent received chunk 0 of this request twice."))
			return
		}
		s.sweep(now)
		s.busy.Add(1)
		if len(s.assemblies) >= 2*s.m.cfg.MaxInFlight {
			if !c.Final {
				// Not tracked: its later chunks are dropped as unknown.
				s.respond(busyPage(c.RequestID, s.m.cfg.MaxInFlight))
				return
			}
		}
		a = &assembly{head: c, started: now}
		a.asm.MaxBytes = s.m.cfg.MaxRequestBytes
		s.assemblies[c.RequestID] = a
	} else if a == nil {
		s.log.Debug("chunk of an unknown or refused request dropped", "requestId", c.RequestID, "seq", c.Seq)
		return
	}
	complete, err := a.asm.Add(c.Seq, c.Final, c.Body)
	if err != nil {
		delete(s.assemblies, c.RequestID)
		status, code := http.StatusBadRequest, "bad_request"
		if errors.Is(err, protocol.ErrTooLarge) {
			status, code = http.StatusRequestEntityTooLarge, "request_too_large"
		}
		s.log.Warn("request refused", "requestId", c.RequestID, "err", err)
		s.respond(forward.ErrorPage(c.RequestID, status, code, "The agent could not take this request: "+err.Error()))
		return
	}
	if !complete {
		return
	}
	delete(s.assemblies, c.RequestID)
	body, err := a.asm.Body()
	if err != nil { // cannot happen once complete
		s.respond(forward.ErrorPage(c.RequestID, http.StatusBadRequest, "bad_request", err.Error()))
		return
	}
	req := *a.head
	req.Seq, req.Final, req.Body = 0, true, body
	s.serve(work, &req)
}

// sweep drops requests whose chunks stopped coming.
func (s *socket) sweep(now time.Time) {
	for id, a := range s.assemblies {
		if now.Sub(a.started) > assemblyTTL {
			delete(s.assemblies, id)
			s.busy.Add(-1)
			s.log.Warn("incomplete request dropped", "requestId", id, "chunks", a.asm.Size())
		}
	}
}

// serve runs the handler in its own goroutine, within the in-flight bound.
func (s *socket) serve(work context.Context, req *protocol.Request) {
	if s.m.stopping.Load() {
		s.respond(forward.ErrorPage(req.RequestID, http.StatusServiceUnavailable, "agent_stopping", "The tunnel's agent is shutting down."))
		return
	}
	select {
	case s.m.slots <- struct{}{}:
	default:
		s.respond(busyPage(req.RequestID, s.m.cfg.MaxInFlight))
		return
	}
	go func() {
		defer func() { <-s.m.slots }()
		resp := s.m.cfg.Handler.Serve(work, req)
		if resp == nil {
			resp = forward.ErrorPage(req.RequestID, http.StatusBadGateway, "no_response", "The agent produced no response.")
		}
		resp.RequestID = req.RequestID
		s.respond(resp)
	}()
}

func busyPage(requestID string, limit int) *protocol.Response {
	return forward.ErrorPage(requestID, http.StatusServiceUnavailable, "agent_busy",
		fmt.Sprintf("The tunnel's agent is serving %d requests already; try again.", limit))
}

// respond queues a whole response in chunks that each fit in a message;
// the request stops counting as busy once the last chunk is written.
func (s *socket) respond(r *protocol.Response) {
	var once sync.Once
	done := func() { once.Do(func() { s.busy.Add(-1) }) }
	head := *r
	body := head.Body
	head.Body = ""
	chunks, err := protocol.SplitResponse(head, body, s.m.cfg.MaxMessageBytes)
	if err != nil {
		s.log.Warn("response does not fit in messages", "requestId", r.RequestID, "err", err)
		page := forward.ErrorPage(r.RequestID, http.StatusBadGateway, "response_headers_too_large",
			"The local app's response headers do not fit in one WebSocket message.")
		chunks, err = protocol.SplitResponse(*page, page.Body, s.m.cfg.MaxMessageBytes)
		if err != nil {
			done()
			return
		}
	}
	for i, c := range chunks {
		o := outMsg{msg: c}
		if i == len(chunks)-1 {
			o.sent = done
		}
		if !s.send(o) {
			done()
			return
		}
	}
}
