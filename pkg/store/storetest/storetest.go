// Package storetest is the conformance suite every store.Store passes: the
// in-memory store and the DynamoDB store run the same tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

// Clock is a settable time source shared by a test and its store.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// NewStore returns an empty store that reads time from now. Each call must
// return a store that shares no items with earlier ones (for example by
// using fresh table names).
type NewStore func(t *testing.T, now func() time.Time) store.Store

// Run runs the conformance suite.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, clock *Clock)
	}{
		{"Connections", testConnections},
		{"ConnectionExpiry", testConnectionExpiry},
		{"ClaimFree", testClaimFree},
		{"ClaimTakenWithoutKey", testClaimTakenWithoutKey},
		{"ClaimTakeoverWithKey", testClaimTakeoverWithKey},
		{"ReleaseOnlyByHolder", testReleaseOnlyByHolder},
		{"ReclaimBySameOwnerInGrace", testReclaimBySameOwner},
		{"ClaimAfterExpiry", testClaimAfterExpiry},
		{"ConcurrentClaims", testConcurrentClaims},
		{"WaitResponseChunks", testWaitResponseChunks},
		{"WaitResponseAlreadyStored", testWaitResponseAlreadyStored},
		{"WaitResponseGone", testWaitResponseGone},
		{"WaitResponseUnknownConnection", testWaitResponseUnknownConnection},
		{"WaitResponseDeadline", testWaitResponseDeadline},
		{"ExpiredChunksAbsent", testExpiredChunksAbsent},
		{"ChunkOverwrite", testChunkOverwrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock()
			tt.fn(t, newStore(t, clock.Now), clock)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPutConn(t *testing.T, s store.Store, clock *Clock, id, owner string) store.Connection {
	t.Helper()
	c := store.Connection{ID: id, Owner: owner, CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(2 * time.Hour)}
	if err := s.PutConnection(ctxT(t), c); err != nil {
		t.Fatalf("PutConnection(%s): %v", id, err)
	}
	return c
}

func claim(sub, conn, owner, key string, clock *Clock) store.Claim {
	return store.Claim{Subdomain: sub, ConnectionID: conn, Owner: owner, KeyHash: store.HashKey(key),
		ExpiresAt: clock.Now().Add(2*time.Hour + 10*time.Minute)}
}

func testConnections(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	want := mustPutConn(t, s, clock, "conn-A=", "alice")
	got, err := s.GetConnection(ctx, "conn-A=")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.Owner != "alice" || !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Subdomain != "" {
		t.Errorf("GetConnection = %+v, want %+v", got, want)
	}
	if err := s.SetConnectionSubdomain(ctx, "conn-A=", "myapp"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetConnection(ctx, "conn-A="); got.Subdomain != "myapp" {
		t.Errorf("subdomain after SetConnectionSubdomain = %q, want myapp", got.Subdomain)
	}
	if err := s.SetConnectionSubdomain(ctx, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetConnectionSubdomain of an unknown connection: %v, want ErrNotFound", err)
	}
	if _, err := s.GetConnection(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConnection of an unknown id: %v, want ErrNotFound", err)
	}
	if err := s.DeleteConnection(ctx, "conn-A="); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConnection(ctx, "conn-A="); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConnection after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteConnection(ctx, "conn-A="); err != nil {
		t.Errorf("deleting an absent connection: %v, want nil", err)
	}
}

func testConnectionExpiry(t *testing.T, s store.Store, clock *Clock) {
	mustPutConn(t, s, clock, "c1", "")
	clock.Advance(2*time.Hour + time.Second)
	if _, err := s.GetConnection(ctxT(t), "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConnection past its expiry: %v, want ErrNotFound", err)
	}
}

func testClaimFree(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	want := claim("myapp", "c1", "alice", "k1", clock)
	if err := s.ClaimSubdomain(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSubdomain(ctx, "myapp")
	if err != nil {
		t.Fatal(err)
	}
	if got.ConnectionID != "c1" || got.Owner != "alice" || got.KeyHash != want.KeyHash || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.Held() {
		t.Errorf("GetSubdomain = %+v, want %+v", got, want)
	}
	if _, err := s.GetSubdomain(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSubdomain of an unclaimed name: %v, want ErrNotFound", err)
	}
}

func testClaimTakenWithoutKey(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c1", "alice", "k1", clock)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Claim{
		claim("myapp", "c2", "bob", "other-key", clock),
		claim("myapp", "c2", "alice", "other-key", clock), // same owner, but c1 still holds it
		claim("myapp", "c2", "", "other-key", clock),
	} {
		if err := s.ClaimSubdomain(ctx, c); !errors.Is(err, store.ErrTaken) {
			t.Errorf("claim %+v of a held name: %v, want ErrTaken", c, err)
		}
	}
	if got, _ := s.GetSubdomain(ctx, "myapp"); got.ConnectionID != "c1" {
		t.Errorf("a refused claim changed the holder to %q", got.ConnectionID)
	}
}

func testClaimTakeoverWithKey(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c1", "", "k1", clock)); err != nil {
		t.Fatal(err)
	}
	// A rotating agent opens c2 while c1 still holds the name.
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c2", "", "k1", clock)); err != nil {
		t.Fatalf("claim with the reclaim key: %v", err)
	}
	got, _ := s.GetSubdomain(ctx, "myapp")
	if got.ConnectionID != "c2" {
		t.Errorf("holder after takeover = %q, want c2", got.ConnectionID)
	}
	// The old socket's disconnect must not release the new holder's name.
	if err := s.ReleaseSubdomain(ctx, "myapp", "c1", clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSubdomain(ctx, "myapp"); got.ConnectionID != "c2" {
		t.Errorf("release by the old connection changed the holder to %q", got.ConnectionID)
	}
}

func testReleaseOnlyByHolder(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c1", "", "k1", clock)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseSubdomain(ctx, "myapp", "c9", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSubdomain(ctx, "myapp"); !got.Held() {
		t.Errorf("release by a stranger released the name: %+v", got)
	}
	until := clock.Now().Add(10 * time.Minute)
	if err := s.ReleaseSubdomain(ctx, "myapp", "c1", until); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSubdomain(ctx, "myapp")
	if err != nil {
		t.Fatal(err)
	}
	if got.Held() || !got.ExpiresAt.Equal(until) {
		t.Errorf("after release = %+v, want released until %v", got, until)
	}
	if err := s.ReleaseSubdomain(ctx, "never-claimed", "c1", until); err != nil {
		t.Errorf("releasing an unclaimed name: %v, want nil", err)
	}
}

func testReclaimBySameOwner(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c1", "alice", "k1", clock)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseSubdomain(ctx, "myapp", "c1", clock.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute)
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c2", "bob", "kb", clock)); !errors.Is(err, store.ErrTaken) {
		t.Errorf("another owner's claim in the grace period: %v, want ErrTaken", err)
	}
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c2", "", "kb", clock)); !errors.Is(err, store.ErrTaken) {
		t.Errorf("an anonymous claim in the grace period: %v, want ErrTaken", err)
	}
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c3", "alice", "k-new", clock)); err != nil {
		t.Errorf("the same owner's claim in the grace period: %v, want success", err)
	}
	if got, _ := s.GetSubdomain(ctx, "myapp"); got.ConnectionID != "c3" {
		t.Errorf("holder = %q, want c3", got.ConnectionID)
	}
}

func testClaimAfterExpiry(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c1", "alice", "k1", clock)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseSubdomain(ctx, "myapp", "c1", clock.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Minute)
	if _, err := s.GetSubdomain(ctx, "myapp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSubdomain after the grace period: %v, want ErrNotFound", err)
	}
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c2", "bob", "kb", clock)); err != nil {
		t.Errorf("claim of an expired name: %v, want success", err)
	}
	// A held claim whose connection vanished without a disconnect expires too.
	clock.Advance(3 * time.Hour)
	if err := s.ClaimSubdomain(ctx, claim("myapp", "c3", "carol", "kc", clock)); err != nil {
		t.Errorf("claim of a name whose holder expired: %v, want success", err)
	}
}

func testConcurrentClaims(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	const n = 16
	var wins, taken atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.ClaimSubdomain(ctx, claim("race", fmt.Sprintf("c%d", i), fmt.Sprintf("o%d", i), fmt.Sprintf("k%d", i), clock))
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrTaken):
				taken.Add(1)
			default:
				t.Errorf("claim %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || taken.Load() != n-1 {
		t.Errorf("%d concurrent claims: %d won, %d refused; want 1 and %d", n, wins.Load(), taken.Load(), n-1)
	}
}

func chunkOf(id string, seq int, final bool, body string) *protocol.Response {
	c := &protocol.Response{Type: protocol.TypeResponse, RequestID: id, Seq: seq, Final: final, Body: body}
	if seq == 0 {
		c.StatusCode = 200
		c.Headers = protocol.Headers{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}}
	}
	return c
}

func testWaitResponseChunks(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	mustPutConn(t, s, clock, "c1", "")
	type result struct {
		chunks []*protocol.Response
		err    error
	}
	done := make(chan result, 1)
	go func() {
		c, err := s.WaitResponse(ctx, "c1", "req-1")
		done <- result{c, err}
	}()
	// Out of order, as concurrent Lambda invocations may store them.
	for _, c := range []*protocol.Response{chunkOf("req-1", 2, true, "CCCC"), chunkOf("req-1", 0, false, "AAAA")} {
		if err := s.PutChunk(ctx, c, clock.Now().Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("WaitResponse returned with chunk 1 missing: %v %v", r.chunks, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := s.PutChunk(ctx, chunkOf("req-1", 1, false, "BBBB"), clock.Now().Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	got, err := protocol.JoinResponse(r.chunks, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "AAAABBBBCCCC" || got.StatusCode != 200 || len(got.Headers["Set-Cookie"]) != 2 || got.Headers["Content-Type"][0] != "text/plain" {
		t.Errorf("reassembled %+v", got)
	}
}

func testWaitResponseAlreadyStored(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	mustPutConn(t, s, clock, "c1", "")
	if err := s.PutChunk(ctx, chunkOf("req-1", 0, true, ""), clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	chunks, err := s.WaitResponse(ctx, "c1", "req-1")
	if err != nil || len(chunks) != 1 || chunks[0].Body != "" || !chunks[0].Final {
		t.Fatalf("WaitResponse = %+v, %v", chunks, err)
	}
}

func testWaitResponseGone(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	mustPutConn(t, s, clock, "c1", "")
	done := make(chan error, 1)
	go func() {
		_, err := s.WaitResponse(ctx, "c1", "req-1")
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := s.DeleteConnection(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrGone) {
			t.Fatalf("WaitResponse after the connection ended: %v, want ErrGone", err)
		}
		t.Logf("ErrGone %v after the delete", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("WaitResponse did not notice the connection ended within 5 s")
	}
}

func testWaitResponseUnknownConnection(t *testing.T, s store.Store, clock *Clock) {
	_, err := s.WaitResponse(ctxT(t), "nope", "req-1")
	if !errors.Is(err, store.ErrGone) {
		t.Fatalf("WaitResponse on an unknown connection: %v, want ErrGone", err)
	}
}

func testWaitResponseDeadline(t *testing.T, s store.Store, clock *Clock) {
	mustPutConn(t, s, clock, "c1", "")
	ctx, cancel := context.WithTimeout(ctxT(t), 200*time.Millisecond)
	defer cancel()
	if _, err := s.WaitResponse(ctx, "c1", "req-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitResponse past its deadline: %v, want DeadlineExceeded", err)
	}
}

func testExpiredChunksAbsent(t *testing.T, s store.Store, clock *Clock) {
	mustPutConn(t, s, clock, "c1", "")
	if err := s.PutChunk(ctxT(t), chunkOf("req-1", 0, true, "AAAA"), clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	defer cancel()
	if c, err := s.WaitResponse(ctx, "c1", "req-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitResponse found expired chunks: %v, %v", c, err)
	}
}

func testChunkOverwrite(t *testing.T, s store.Store, clock *Clock) {
	ctx := ctxT(t)
	mustPutConn(t, s, clock, "c1", "")
	exp := clock.Now().Add(time.Minute)
	for _, c := range []*protocol.Response{chunkOf("r", 0, false, "AAAA"), chunkOf("r", 0, false, "AAAA"), chunkOf("r", 1, true, "BBBB")} {
		if err := s.PutChunk(ctx, c, exp); err != nil {
			t.Fatal(err)
		}
	}
	chunks, err := s.WaitResponse(ctx, "c1", "r")
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 2 {
		t.Fatalf("a chunk stored twice came back %d times in all (%d chunks, want 2)", len(chunks), len(chunks))
	}
}
