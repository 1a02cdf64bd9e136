package main

import (
	"errors"
	"os"
	"time"

	"github.com/lambdatunnel/lambdatunnel/agent/console"
	"github.com/lambdatunnel/lambdatunnel/agent/session"
	"github.com/lambdatunnel/lambdatunnel/agent/state"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// notKept ends every warning about the state file.
const notKept = "your URL will not be kept across restarts"

// memory is one run's use of the state file: which name to ask for
// first, and every ready recorded so that the next run gets the name back.
// Its methods are called one at a time (before Run, from the manager's
// events, after Run).
type memory struct {
	file   *state.File // nil: nothing is remembered
	server string
	target string // host:port of the local app
	pid    int
	con    *console.Console
	held   map[string]bool // names recorded with this process's pid
}

// openMemory returns the memory for the state file at path ("" for the
// default); off turns it off.
func openMemory(con *console.Console, path string, off bool, server, target string) *memory {
	m := &memory{server: server, target: target, pid: os.Getpid(), con: con, held: make(map[string]bool)}
	if off {
		return m
	}
	if path == "" {
		p, err := state.DefaultPath()
		if err != nil {
			con.Status("no place for the agent state file (%v): %s; give one with --state-file", err, notKept)
			return m
		}
		path = p
	}
	m.file = state.NewFile(path)
	return m
}

// plan sets what the first hello asks for: with a subdomain, the key
// remembered for it; without one (and unless newURL), the name this local
// app had last time with its key, falling back to a random name when the
// service refuses it.
func (m *memory) plan(cfg *session.Config, newURL bool) {
	if m.file == nil {
		return
	}
	st, err := m.file.Load()
	if err != nil {
		m.disable(err)
		return
	}
	if cfg.Subdomain != "" {
		if c, ok := st.Lookup(m.server, cfg.Subdomain); ok && !m.heldElsewhere(c) {
			cfg.ReclaimKey = c.ReclaimKey
		}
		return
	}
	if newURL {
		return
	}
	name, c, ok := st.ForTarget(m.server, m.target)
	if !ok {
		return
	}
	prev := c.URL
	if prev == "" {
		prev = name
	}
	if m.heldElsewhere(c) {
		m.con.Status("your previous URL %s is used by another agent on this machine (pid %d); you have a new one", prev, c.PID)
		return
	}
	cfg.Subdomain, cfg.ReclaimKey = name, c.ReclaimKey
	cfg.Fallback = func(refused *session.ServiceError) {
		if refused.Code == protocol.CodeSubdomainInUse {
			m.con.Status("your previous URL %s is taken; you have a new one", prev)
			return
		}
		m.con.Status("your previous URL %s is no longer accepted (%s); you have a new one", prev, refused.Message)
	}
}

// heldElsewhere: another agent process on this machine holds the name
// now. Presenting its key would take the name away from it.
func (m *memory) heldElsewhere(c state.Claim) bool {
	return c.PID != 0 && c.PID != m.pid && state.Alive(c.PID)
}

// record remembers the name and key of a ready.
func (m *memory) record(r *protocol.Ready) {
	if m.file == nil || r.Subdomain == "" {
		return
	}
	err := m.file.Update(func(st *state.State) {
		now := time.Now()
		for name := range m.held {
			if name != r.Subdomain {
				st.Release(m.server, name, m.pid, now)
			}
		}
		st.Record(m.server, m.target, r.Subdomain, state.Claim{ReclaimKey: r.ReclaimKey, URL: r.URL, PID: m.pid, Updated: now})
	})
	if err != nil {
		m.disable(err)
		return
	}
	clear(m.held)
	m.held[r.Subdomain] = true
}

// release notes that this process holds no name any more.
func (m *memory) release() {
	if m.file == nil || len(m.held) == 0 {
		return
	}
	err := m.file.Update(func(st *state.State) {
		for name := range m.held {
			st.Release(m.server, name, m.pid, time.Now())
		}
	})
	if err != nil {
		m.disable(err)
	}
}

// disable says once why the state file is not used, and stops using it.
// A file that is not a valid state file is left as it is: it may be a
// hand edit gone wrong or the file of a newer agent, and its keys may
// still be wanted.
func (m *memory) disable(err error) {
	if errors.Is(err, state.ErrCorrupt) {
		m.con.Status("%v: leaving it untouched, so %s (fix or remove the file)", err, notKept)
	} else {
		m.con.Status("agent state file: %v: %s", err, notKept)
	}
	m.file = nil
}

// remembering records every ready before the console shows it.
type remembering struct {
	*console.Console
	mem *memory
}

func (r remembering) Ready(rd *protocol.Ready) {
	r.mem.record(rd)
	r.Console.Ready(rd)
}

func (r remembering) Reconnected(rd *protocol.Ready, same bool) {
	r.mem.record(rd)
	r.Console.Reconnected(rd, same)
}

func (r remembering) Rotated(rd *protocol.Ready, same bool) {
	r.mem.record(rd)
	r.Console.Rotated(rd, same)
}

var _ session.Events = remembering{}
