// Package memory is the in-process Store of local mode: safe for concurrent
// use, honouring expiry on every read, and waking response waiters by
// notification rather than polling.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

var _ store.Store = (*Store)(nil)

// sweepEvery is how often writes purge expired items.
const sweepEvery = time.Minute

// Store keeps the state in maps behind one mutex.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	conns     map[string]store.Connection
	claims    map[string]store.Claim
	responses map[string]*response
	// signals maps "c/"+connectionID and "r/"+requestID to a channel that
	// is closed (and removed) on the next change to that item.
	signals   map[string]chan struct{}
	lastSweep time.Time
}

type response struct {
	chunks  map[int]*protocol.Response
	final   int // seq of the final chunk; -1 until it arrives
	expires time.Time
}

// New returns an empty store reading time from now (time.Now when nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:       now,
		conns:     make(map[string]store.Connection),
		claims:    make(map[string]store.Claim),
		responses: make(map[string]*response),
		signals:   make(map[string]chan struct{}),
	}
}

func (s *Store) PutConnection(_ context.Context, c store.Connection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c.ID] = c
	s.sweepLocked()
	return nil
}

func (s *Store) GetConnection(_ context.Context, id string) (store.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.connLocked(id)
	if !ok {
		return store.Connection{}, fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
	}
	return c, nil
}

func (s *Store) connLocked(id string) (store.Connection, bool) {
	c, ok := s.conns[id]
	if !ok || !s.now().Before(c.ExpiresAt) {
		return store.Connection{}, false
	}
	return c, true
}

func (s *Store) SetConnectionSubdomain(_ context.Context, id, subdomain string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.connLocked(id)
	if !ok {
		return fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
	}
	c.Subdomain = subdomain
	s.conns[id] = c
	return nil
}

func (s *Store) DeleteConnection(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, id)
	s.notifyLocked("c/" + id)
	return nil
}

func (s *Store) ClaimSubdomain(_ context.Context, c store.Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.claims[c.Subdomain]
	if ok && s.now().Before(old.ExpiresAt) &&
		!store.KeyMatches(old.KeyHash, c.KeyHash) &&
		(old.Held() || c.Owner == "" || c.Owner != old.Owner) {
		return fmt.Errorf("subdomain %q: %w", c.Subdomain, store.ErrTaken)
	}
	s.claims[c.Subdomain] = c
	return nil
}

func (s *Store) GetSubdomain(_ context.Context, subdomain string) (store.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[subdomain]
	if !ok || !s.now().Before(c.ExpiresAt) {
		return store.Claim{}, fmt.Errorf("subdomain %q: %w", subdomain, store.ErrNotFound)
	}
	return c, nil
}

func (s *Store) ReleaseSubdomain(_ context.Context, subdomain, connectionID string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[subdomain]
	if !ok || c.ConnectionID != connectionID || !s.now().Before(c.ExpiresAt) {
		return nil
	}
	c.ConnectionID = ""
	c.ExpiresAt = until
	s.claims[subdomain] = c
	return nil
}

func (s *Store) PutChunk(_ context.Context, c *protocol.Response, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.responses[c.RequestID]
	if !ok || !s.now().Before(r.expires) {
		r = &response{chunks: make(map[int]*protocol.Response), final: -1}
		s.responses[c.RequestID] = r
	}
	cp := *c
	r.chunks[c.Seq] = &cp
	if c.Final {
		r.final = c.Seq
	}
	r.expires = expires
	s.notifyLocked("r/" + c.RequestID)
	s.sweepLocked()
	return nil
}

func (s *Store) WaitResponse(ctx context.Context, connectionID, requestID string) ([]*protocol.Response, error) {
	rkey, ckey := "r/"+requestID, "c/"+connectionID
	defer func() {
		s.mu.Lock()
		delete(s.signals, rkey)
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		if out, ok := s.completeLocked(requestID); ok {
			s.mu.Unlock()
			return out, nil
		}
		if _, ok := s.connLocked(connectionID); !ok {
			s.mu.Unlock()
			return nil, fmt.Errorf("waiting for %s on connection %s: %w", requestID, connectionID, store.ErrGone)
		}
		rch, cch := s.signalLocked(rkey), s.signalLocked(ckey)
		s.mu.Unlock()
		select {
		case <-rch:
		case <-cch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *Store) completeLocked(requestID string) ([]*protocol.Response, bool) {
	r, ok := s.responses[requestID]
	if !ok || r.final < 0 || len(r.chunks) != r.final+1 || !s.now().Before(r.expires) {
		return nil, false
	}
	out := make([]*protocol.Response, 0, len(r.chunks))
	for _, c := range r.chunks {
		cp := *c
		out = append(out, &cp)
	}
	return out, true
}

func (s *Store) signalLocked(key string) chan struct{} {
	ch, ok := s.signals[key]
	if !ok {
		ch = make(chan struct{})
		s.signals[key] = ch
	}
	return ch
}

func (s *Store) notifyLocked(key string) {
	if ch, ok := s.signals[key]; ok {
		close(ch)
		delete(s.signals, key)
	}
}

// sweepLocked purges expired items at most once per sweepEvery, so that a
// long-running serve does not grow without bound.
func (s *Store) sweepLocked() {
	now := s.now()
	if now.Sub(s.lastSweep) < sweepEvery {
		return
	}
	s.lastSweep = now
	for id, c := range s.conns {
		if !now.Before(c.ExpiresAt) {
			delete(s.conns, id)
			s.notifyLocked("c/" + id)
		}
	}
	for name, c := range s.claims {
		if !now.Before(c.ExpiresAt) {
			delete(s.claims, name)
		}
	}
	for id, r := range s.responses {
		if !now.Before(r.expires) {
			delete(s.responses, id)
		}
	}
}
