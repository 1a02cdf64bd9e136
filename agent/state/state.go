// Package state remembers, across runs of the agent, the name each local
// app had and the reclaim key that takes it back, so that an agent started
// again gets the same public URL.
//
// The file is JSON, one object per server URL:
//
//	{
//	  "version": 1,
//	  "servers": {
//	    "ws://127.0.0.1:8001": {
//	      "subdomains": {
//	        "k3x9qa": {"reclaimKey": "…", "url": "http://k3x9qa.localhost:8000",
//	                   "pid": 4242, "updated": "2026-01-02T15:04:05Z"}
//	      },
//	      "targets": {"127.0.0.1:8080": "k3x9qa"}
//	    }
//	  }
//	}
//
// subdomains holds the reclaim key last received for each name; targets
// the name last used for each local app (host:port); pid is the agent
// process that holds the name now (0 once it has stopped).
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Version is the format of the file this package writes.
const Version = 1

// forget is how long an entry nobody has used is kept.
const forget = 90 * 24 * time.Hour

// ErrCorrupt is wrapped by Load and Update when the file exists but is
// not a state file this package can read (bad JSON, or a newer format).
var ErrCorrupt = errors.New("not a valid agent state file")

// State is the content of the file.
type State struct {
	Version int                `json:"version"`
	Servers map[string]*Server `json:"servers"`
}

// Server is what is remembered for one server URL.
type Server struct {
	// Subdomains maps a name to the claim the agent last had on it.
	Subdomains map[string]*Claim `json:"subdomains,omitempty"`
	// Targets maps a local app's host:port to the name it last used.
	Targets map[string]string `json:"targets,omitempty"`
}

// Claim is a name as the last ready gave it.
type Claim struct {
	ReclaimKey string `json:"reclaimKey"`
	URL        string `json:"url,omitempty"`
	// PID is the agent process using the name now; 0 when none is.
	PID     int       `json:"pid,omitempty"`
	Updated time.Time `json:"updated"`
}

// DefaultPath is os.UserConfigDir()/lambdatunnel/agent-state.json.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "lambdatunnel", "agent-state.json"), nil
}

// ServerKey is the key under which a server URL is remembered: scheme and
// host in lower case, no trailing slash, no query (which could hold a
// token) and no fragment.
func ServerKey(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return strings.TrimRight(server, "/")
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	u.RawQuery, u.Fragment, u.RawFragment, u.User = "", "", "", nil
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), ""
	return u.String()
}

// Lookup returns the claim remembered for the name on the server.
func (st *State) Lookup(server, subdomain string) (Claim, bool) {
	sv := st.Servers[ServerKey(server)]
	if sv == nil || sv.Subdomains[subdomain] == nil {
		return Claim{}, false
	}
	return *sv.Subdomains[subdomain], true
}

// ForTarget returns the name the local app target (host:port) last used
// on the server, with its claim.
func (st *State) ForTarget(server, target string) (string, Claim, bool) {
	sv := st.Servers[ServerKey(server)]
	if sv == nil {
		return "", Claim{}, false
	}
	name := sv.Targets[target]
	c, ok := sv.Subdomains[name]
	if name == "" || !ok || c == nil {
		return "", Claim{}, false
	}
	return name, *c, true
}

// Record remembers that target now uses subdomain with claim c.
func (st *State) Record(server, target, subdomain string, c Claim) {
	if st.Servers == nil {
		st.Servers = make(map[string]*Server)
	}
	key := ServerKey(server)
	sv := st.Servers[key]
	if sv == nil {
		sv = &Server{}
		st.Servers[key] = sv
	}
	if sv.Subdomains == nil {
		sv.Subdomains = make(map[string]*Claim)
	}
	if sv.Targets == nil {
		sv.Targets = make(map[string]string)
	}
	sv.Subdomains[subdomain] = &c
	sv.Targets[target] = subdomain
}

// Release notes that process pid no longer holds subdomain.
func (st *State) Release(server, subdomain string, pid int, now time.Time) {
	sv := st.Servers[ServerKey(server)]
	if sv == nil {
		return
	}
	if c := sv.Subdomains[subdomain]; c != nil && c.PID == pid {
		c.PID = 0
		c.Updated = now
	}
}

// prune drops the claims not updated for a long time and the targets
// that point to no claim.
func (st *State) prune(now time.Time) {
	for key, sv := range st.Servers {
		for name, c := range sv.Subdomains {
			if c == nil || now.Sub(c.Updated) > forget {
				delete(sv.Subdomains, name)
			}
		}
		for target, name := range sv.Targets {
			if sv.Subdomains[name] == nil {
				delete(sv.Targets, target)
			}
		}
		if len(sv.Subdomains) == 0 && len(sv.Targets) == 0 {
			delete(st.Servers, key)
		}
	}
}

// File is a state file on disk. Several agents may share one: every
// Update reads the file afresh and replaces it atomically, so a reader
// sees one whole version or another; when two agents write at once, the
// last one's version wins.
type File struct {
	Path string
	now  func() time.Time
}

// NewFile returns the state file at path; nothing is read yet.
func NewFile(path string) *File { return &File{Path: path, now: time.Now} }

// Load reads the file. A missing file is an empty state, not an error;
// a file that is not a state file this package can read is an error
// wrapping ErrCorrupt.
func (f *File) Load() (*State, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: Version}, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", f.Path, ErrCorrupt, err)
	}
	if st.Version != Version {
		return nil, fmt.Errorf("%s: %w (format version %d; this agent reads %d)", f.Path, ErrCorrupt, st.Version, Version)
	}
	for key, sv := range st.Servers {
		if sv == nil {
			delete(st.Servers, key)
		}
	}
	return &st, nil
}

// Update reads the file, lets fn change the state and writes it back
// atomically (a temporary file in the same directory, then a rename). It
// never writes over a file Load cannot read: that returns the error.
func (f *File) Update(fn func(*State)) error {
	st, err := f.Load()
	if err != nil {
		return err
	}
	fn(st)
	st.Version = Version
	st.prune(f.now())
	return f.write(st)
}

func (f *File) write(st *State) (err error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.Path)
}
