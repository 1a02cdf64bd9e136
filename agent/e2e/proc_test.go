package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lines collects a process's output line by line and lets a test wait for
// a line.
type lines struct {
	mu      sync.Mutex
	all     []string
	partial []byte
	changed chan struct{} // closed and replaced at every new line
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.all = append(l.all, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// snapshot returns the complete lines so far.
func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// count returns how many lines contain s.
func (l *lines) count(s string) int {
	n := 0
	for _, line := range l.snapshot() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// wait returns the first line (at index from or later) that match
// accepts, or false when none comes within timeout or before the process
// exits.
func (l *lines) wait(from int, timeout time.Duration, exited <-chan struct{}, match func(string) bool) (string, bool) {
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		for ; from < len(l.all); from++ {
			if match(l.all[from]) {
				s := l.all[from]
				l.mu.Unlock()
				return s, true
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if exited == nil {
			return "", false // it exited and its last words were read
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-changed:
		case <-exited:
			exited = nil // Wait has copied all output: look once more
		case <-t.C:
			return "", false
		}
		t.Stop()
	}
}

// proc is a process of the test, stopped when the test ends.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *lines
	exited         chan struct{}
	waitErr        error
}

func startProc(t *testing.T, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: newLines(), stderr: newLines(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			p.dump(t)
		}
		for _, line := range p.stderr.snapshot() {
			if strings.Contains(line, "DATA RACE") || strings.HasPrefix(line, "panic:") {
				t.Errorf("%s: %s", name, line)
				p.dump(t)
				break
			}
		}
	})
	return p
}

// stop sends SIGINT and waits, then kills.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *proc) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	if p.waitErr != nil {
		t.Fatalf("%s: %v", p.name, p.waitErr)
	}
	return 0
}

func (p *proc) dump(t *testing.T) {
	t.Helper()
	tail := func(ls []string) string {
		if len(ls) > 60 {
			ls = ls[len(ls)-60:]
		}
		return strings.Join(ls, "\n")
	}
	t.Logf("--- %s stdout (last lines):\n%s\n--- %s stderr (last lines):\n%s", p.name, tail(p.stdout.snapshot()), p.name, tail(p.stderr.snapshot()))
}

func (p *proc) String() string { return fmt.Sprintf("%s (pid %d)", p.name, p.cmd.Process.Pid) }
