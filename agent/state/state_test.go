package state

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const server = "ws://127.0.0.1:8001"

func newFile(t *testing.T) *File {
	t.Helper()
	return NewFile(filepath.Join(t.TempDir(), "lambdatunnel", "agent-state.json"))
}

func TestRoundTrip(t *testing.T) {
	f := newFile(t)
	st, err := f.Load()
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if _, _, ok := st.ForTarget(server, "127.0.0.1:8080"); ok {
		t.Fatal("a missing file remembers a target")
	}
	now := time.Now().UTC().Truncate(time.Second)
	want := Claim{ReclaimKey: "key-1", URL: "http://abc.localhost:8000", PID: 42, Updated: now}
	if err := f.Update(func(st *State) {
		st.Record(server, "127.0.0.1:8080", "abc", want)
		st.Record("wss://other.example/prod", "127.0.0.1:8080", "xyz", Claim{ReclaimKey: "key-2", Updated: now})
	}); err != nil {
		t.Fatal(err)
	}

	st, err = f.Load()
	if err != nil {
		t.Fatal(err)
	}
	name, got, ok := st.ForTarget(server+"/", "127.0.0.1:8080")
	if !ok || name != "abc" || got != want {
		t.Fatalf("ForTarget = %q %+v %v, want abc %+v", name, got, ok, want)
	}
	if got, ok := st.Lookup(server, "abc"); !ok || got != want {
		t.Fatalf("Lookup = %+v %v", got, ok)
	}
	if name, _, _ := st.ForTarget("wss://other.example/prod", "127.0.0.1:8080"); name != "xyz" {
		t.Fatalf("the other server's target has %q, want xyz", name)
	}
	if _, ok := st.Lookup(server, "xyz"); ok {
		t.Fatal("a name of one server is remembered for another")
	}

	// Release clears the pid only for the process that holds the name.
	if err := f.Update(func(st *State) { st.Release(server, "abc", 7, now) }); err != nil {
		t.Fatal(err)
	}
	st, _ = f.Load()
	if c, _ := st.Lookup(server, "abc"); c.PID != 42 {
		t.Fatalf("another pid released the name: %+v", c)
	}
	if err := f.Update(func(st *State) { st.Release(server, "abc", 42, now) }); err != nil {
		t.Fatal(err)
	}
	st, _ = f.Load()
	if c, _ := st.Lookup(server, "abc"); c.PID != 0 || c.ReclaimKey != "key-1" {
		t.Fatalf("after release: %+v, want the key and no pid", c)
	}
}

func TestPrune(t *testing.T) {
	f := newFile(t)
	old := time.Now().Add(-100 * 24 * time.Hour)
	if err := f.Update(func(st *State) {
		st.Record(server, "127.0.0.1:1", "old", Claim{ReclaimKey: "k", Updated: old})
		st.Record(server, "127.0.0.1:2", "new", Claim{ReclaimKey: "k", Updated: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Load()
	if _, ok := st.Lookup(server, "old"); ok {
		t.Error("a claim unused for 100 days is kept")
	}
	if _, _, ok := st.ForTarget(server, "127.0.0.1:1"); ok {
		t.Error("a target pointing to a forgotten claim is kept")
	}
	if _, _, ok := st.ForTarget(server, "127.0.0.1:2"); !ok {
		t.Error("a recent target is forgotten")
	}
}

func TestServerKey(t *testing.T) {
	give := []struct{ give, want string }{
		{"ws://127.0.0.1:8001", "ws://127.0.0.1:8001"},
		{"ws://127.0.0.1:8001/", "ws://127.0.0.1:8001"},
		{"WSS://ABC.execute-api.eu-west-1.amazonaws.com/prod/", "wss://abc.execute-api.eu-west-1.amazonaws.com/prod"},
		{"wss://abc.example/prod?token=secret#x", "wss://abc.example/prod"},
	}
	for _, tt := range give {
		if got := ServerKey(tt.give); got != tt.want {
			t.Errorf("ServerKey(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// A file that is not a state file is an error wrapping ErrCorrupt, and
// Update leaves it as it is.
func TestCorruptFile(t *testing.T) {
	give := []struct{ name, content string }{
		{"not json", "{\"version\": 1, \"servers\": {"},
		{"garbage", "\x00\x01garbage"},
		{"newer format", `{"version": 2, "servers": {}}`},
		{"no version", `{"servers": {}}`},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			f := newFile(t)
			if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f.Path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Load(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), f.Path) {
				t.Fatalf("Load: %v, want ErrCorrupt naming the file", err)
			}
			err := f.Update(func(st *State) { st.Record(server, "t", "abc", Claim{ReclaimKey: "k", Updated: time.Now()}) })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Update: %v, want ErrCorrupt", err)
			}
			if b, _ := os.ReadFile(f.Path); string(b) != tt.content {
				t.Fatalf("Update wrote over the file: %q", b)
			}
		})
	}
}

func TestUnreadableFile(t *testing.T) {
	f := NewFile(t.TempDir()) // a directory
	if _, err := f.Load(); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load of a directory: %v, want a read error", err)
	}
}

func TestPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	f := newFile(t)
	if err := f.Update(func(st *State) { st.Record(server, "t", "abc", Claim{ReclaimKey: "k", Updated: time.Now()}) }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("file mode %v, want 0600", m)
	}
	di, err := os.Stat(filepath.Dir(f.Path))
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Errorf("directory mode %v, want 0700", m)
	}
}

// Agents updating one file at once never leave it torn or half written,
// nor leave temporary files behind; a reader always sees a whole version.
func TestAtomicConcurrentUpdates(t *testing.T) {
	f := newFile(t)
	if err := f.Update(func(*State) {}); err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 8, 25
	pad := strings.Repeat("k", 4096) // large enough that a torn write would show
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := NewFile(f.Path).Load(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := NewFile(f.Path) // as another process would
			for i := range rounds {
				name := fmt.Sprintf("w%d", w)
				if err := g.Update(func(st *State) {
					st.Record(server, "127.0.0.1:"+name, name, Claim{ReclaimKey: fmt.Sprintf("%s-%d-%s", name, i, pad), Updated: time.Now()})
				}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-readErr; err != nil {
		t.Fatalf("a reader saw a torn file: %v", err)
	}
	st, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	// The last writer wins: at least the last write is there.
	if len(st.Servers[server].Targets) == 0 {
		t.Fatal("no target remembered")
	}
	entries, _ := os.ReadDir(filepath.Dir(f.Path))
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files left in the directory: %q", names)
	}
}

func TestDefaultPath(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG_CONFIG_HOME is the config dir on Linux")
	}
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	p, err := DefaultPath()
	if err != nil || p != filepath.Join(dir, "lambdatunnel", "agent-state.json") {
		t.Fatalf("DefaultPath = %q, %v", p, err)
	}
}

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
	if Alive(0) || Alive(-1) {
		t.Fatal("pid 0 or -1 is alive")
	}
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true command")
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if runtime.GOOS == "linux" {
		// Exited but not reaped yet: a zombie, not alive.
		deadline := time.Now().Add(10 * time.Second)
		for Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if Alive(pid) {
			t.Error("an exited, unreaped child is still alive after 10s")
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) {
		t.Error("a reaped child is alive")
	}
}
