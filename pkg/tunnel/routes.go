package tunnel

import (
	"sync"
	"time"
)

// routeCache remembers for a short while which connection serves a
// subdomain, so that a warm forward function reads the store once per name
// rather than once per request. Entries are dropped when the connection
// turns out to be gone.
type routeCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]route
}

type route struct {
	connectionID string
	expires      time.Time
}

func newRouteCache(ttl time.Duration, now func() time.Time) *routeCache {
	return &routeCache{ttl: ttl, now: now, entries: make(map[string]route)}
}

func (c *routeCache) get(sub string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.entries[sub]
	if !ok || !c.now().Before(r.expires) {
		delete(c.entries, sub)
		return "", false
	}
	return r.connectionID, true
}

func (c *routeCache) put(sub, connectionID string) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 10_000 {
		clear(c.entries) // a bound, not an eviction policy: a cache miss is cheap
	}
	c.entries[sub] = route{connectionID: connectionID, expires: c.now().Add(c.ttl)}
}

// drop forgets sub's route if it still points at connectionID.
func (c *routeCache) drop(sub, connectionID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.entries[sub]; ok && r.connectionID == connectionID {
		delete(c.entries, sub)
	}
}
