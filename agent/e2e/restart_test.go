package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestURLSurvivesRestart: an agent started again for the same local app
// with the same state file gets the URL it had, after Ctrl-C and after a
// crash; --new-url asks for another; a remembered name that another agent
// holds gives way to a new random one, with a sentence.
func TestURLSurvivesRestart(t *testing.T) {
	srv := startServe(t, stores[0])
	org := newOrigin(t)
	c := client(srv)

	// through checks that u reaches a's local app: a prints the request.
	through := func(t *testing.T, a *agent, u string) {
		t.Helper()
		tok := "restart-" + randomHex(t, 4)
		status, body, err := get(c, u+"/token/"+tok)
		if err != nil || status != 200 || body != tok {
			t.Fatalf("GET %s: %d %q %v", u, status, body, err)
		}
		if _, ok := a.stdout.wait(0, 10*time.Second, a.exited, func(s string) bool { return strings.Contains(s, tok) }); !ok {
			t.Fatalf("%s did not serve %s", a, tok)
		}
	}
	stateFile := func(t *testing.T) string { return filepath.Join(t.TempDir(), "state", "agent-state.json") }
	stop := func(t *testing.T, a *agent) {
		t.Helper()
		a.stop(10 * time.Second)
		if code := a.waitExit(t, 15*time.Second); code != 0 {
			t.Fatalf("exit code %d after Ctrl-C", code)
		}
	}

	t.Run("after Ctrl-C", func(t *testing.T) {
		t.Parallel()
		state := stateFile(t)
		first := startAgent(t, srv, org.port, "--state-file", state)
		stop(t, first)
		fi, err := os.Stat(state)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); runtime.GOOS != "windows" && m != 0o600 {
			t.Fatalf("state file mode %v, want 0600", m)
		}
		again := startAgent(t, srv, org.port, "--state-file", state)
		if again.url != first.url {
			t.Fatalf("after a restart: %s, want %s", again.url, first.url)
		}
		through(t, again, again.url)
	})

	t.Run("after a crash", func(t *testing.T) {
		t.Parallel()
		state := stateFile(t)
		first := startAgent(t, srv, org.port, "--state-file", state)
		if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		first.waitExit(t, 15*time.Second)
		// The name is reserved for the key holder: without the key it is
		// refused...
		name := strings.TrimPrefix(strings.SplitN(first.url, ".", 2)[0], "http://")
		other := launchAgent(t, srv, org.port, "--subdomain", name, "--no-state")
		if code := other.waitExit(t, 20*time.Second); code == 0 || other.stderr.count("is in use") == 0 {
			t.Fatalf("another agent asking for %q during the grace period: exit %d, stderr %q", name, code, other.stderr.snapshot())
		}
		// ...and the restarted agent, which has the key, gets it back.
		again := startAgent(t, srv, org.port, "--state-file", state)
		if again.url != first.url {
			t.Fatalf("after SIGKILL and a restart: %s, want %s", again.url, first.url)
		}
		through(t, again, again.url)
	})

	t.Run("new URL", func(t *testing.T) {
		t.Parallel()
		state := stateFile(t)
		first := startAgent(t, srv, org.port, "--state-file", state)
		stop(t, first)
		second := startAgent(t, srv, org.port, "--state-file", state, "--new-url")
		if second.url == first.url {
			t.Fatalf("--new-url gave the old URL %s", second.url)
		}
		stop(t, second)
		third := startAgent(t, srv, org.port, "--state-file", state)
		if third.url != second.url {
			t.Fatalf("after --new-url, a restart gave %s, want the new URL %s", third.url, second.url)
		}
	})

	t.Run("taken by another agent", func(t *testing.T) {
		t.Parallel()
		state := stateFile(t)
		first := startAgent(t, srv, org.port, "--state-file", state)
		stop(t, first) // Ctrl-C frees the name at once
		name := strings.TrimPrefix(strings.SplitN(first.url, ".", 2)[0], "http://")
		other := startAgent(t, srv, org.port, "--subdomain", name, "--no-state")
		if other.url != first.url {
			t.Fatalf("the other agent asked for %q and got %s", name, other.url)
		}
		again := startAgent(t, srv, org.port, "--state-file", state)
		if again.url == first.url || !urlLine.MatchString(again.url) {
			t.Fatalf("restarted while its name is held elsewhere: %s, want a new URL", again.url)
		}
		want := fmt.Sprintf("your previous URL %s is taken; you have a new one", first.url)
		if _, ok := again.stderr.wait(0, 10*time.Second, again.exited, func(s string) bool { return s == want }); !ok {
			t.Fatalf("stderr %q lacks %q", again.stderr.snapshot(), want)
		}
		through(t, again, again.url)
		through(t, other, other.url) // the other agent keeps its name
	})

	t.Run("two at once", func(t *testing.T) {
		t.Parallel()
		state := stateFile(t)
		first := startAgent(t, srv, org.port, "--state-file", state)
		stop(t, first)
		running := startAgent(t, srv, org.port, "--state-file", state)
		if running.url != first.url {
			t.Fatalf("after a restart: %s, want %s", running.url, first.url)
		}
		// A second agent for the same app and state file must not take the
		// name away from the running one with the remembered key.
		second := startAgent(t, srv, org.port, "--state-file", state)
		if second.url == running.url {
			t.Fatalf("a second agent took the running agent's URL %s", running.url)
		}
		if second.stderr.count("is used by another agent on this machine") != 1 {
			t.Fatalf("stderr %q does not say the URL is in use here", second.stderr.snapshot())
		}
		through(t, running, running.url)
		through(t, second, second.url)
	})

	t.Run("corrupt state file", func(t *testing.T) {
		t.Parallel()
		state := stateFile(t)
		if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
			t.Fatal(err)
		}
		const junk = "{ not json"
		if err := os.WriteFile(state, []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		a := startAgent(t, srv, org.port, "--state-file", state)
		through(t, a, a.url)
		stop(t, a)
		if n := a.stderr.count("not a valid agent state file"); n != 1 {
			t.Fatalf("stderr %q: want one warning about the file", a.stderr.snapshot())
		}
		if b, _ := os.ReadFile(state); string(b) != junk {
			t.Fatalf("the corrupt file was overwritten: %q", b)
		}
	})
}

// TestDefaultStateFile: without --state-file the agent keeps its state in
// the user config dir.
func TestDefaultStateFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the config dir is XDG_CONFIG_HOME on Linux")
	}
	srv := startServe(t, stores[0])
	org := newOrigin(t)
	home := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + home, "HOME=" + home}
	args := []string{"--port", fmt.Sprint(org.port), "--server", srv.wsURL}
	run := func() string {
		p := startProc(t, "agent", bins.agent, args, env)
		line, ok := p.stdout.wait(0, 30*time.Second, p.exited, func(string) bool { return true })
		if !ok {
			t.Fatal("the agent printed no URL")
		}
		p.stop(10 * time.Second)
		return line
	}
	first := run()
	path := filepath.Join(home, "lambdatunnel", "agent-state.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no state file at the default path: %v", err)
	}
	di, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes %v and %v, want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
	if again := run(); again != first {
		t.Fatalf("after a restart: %s, want %s", again, first)
	}
}
