package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// origin is the local web app behind the agent.
type origin struct {
	port    int
	entered chan string // the path of each /block request, as it starts
}

// echoed is what /echo answers: the request as the origin saw it.
type echoed struct {
	Method string
	URI    string
	Host   string
	Header http.Header
	Len    int
	Sha256 string
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	o := &origin{entered: make(chan string, 100)}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e := echoed{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header, Len: len(body), Sha256: sha(body)}
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodHead {
			return
		}
		json.NewEncoder(w).Encode(e)
	})
	mux.HandleFunc("/mirror", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Request-Sha256", sha(body))
		w.Write(body)
	})
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n)) // also on HEAD
		w.Write(payload(n))
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if code == http.StatusNotModified {
			w.Header().Set("ETag", `"v1"`)
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere?from=redirect", http.StatusFound)
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		w.Write(gzipped)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-R"] = []string{"1", "2"}
		h["Set-Cookie"] = []string{"a=1", "b=2; Path=/", "c=3; HttpOnly"}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/token/", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.URL.Path, "/token/")
		w.Header().Set("X-Token", r.Header.Get("X-Token"))
		w.Write([]byte(tok))
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		select {
		case o.entered <- r.URL.RequestURI():
		default:
		}
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			w.Write([]byte("done"))
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	o.port = portOf(t, srv.URL)
	return o
}

// waitEntered waits for a /block request to reach the origin.
func (o *origin) waitEntered(t *testing.T, uri string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case got := <-o.entered:
			if got == uri {
				return
			}
		case <-deadline:
			t.Fatalf("%s did not reach the origin", uri)
		}
	}
}

// payload is n deterministic incompressible bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)}).Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gzipped is a gzip body, passed through compressed.
var gzipped = func() []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(bytes.Repeat([]byte("hello, gzip\n"), 1000))
	zw.Close()
	return buf.Bytes()
}()
