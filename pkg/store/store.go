// Package store defines the state the tunnel handlers share between
// invocations: connections, subdomain claims and response chunks. The
// memory package keeps it in one process (local mode); the dynamo package
// keeps it in DynamoDB (AWS). Both pass the storetest conformance suite.
package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

// Errors of the store. Implementations wrap them; match with errors.Is.
var (
	// ErrNotFound: no such item, or it has expired.
	ErrNotFound = errors.New("not found")
	// ErrTaken: the subdomain is held by another connection.
	ErrTaken = errors.New("subdomain is in use")
	// ErrGone: the connection a caller waits on has ended.
	ErrGone = errors.New("connection is gone")
)

// Connection is one agent socket, recorded at $connect.
type Connection struct {
	ID string
	// Subdomain is empty until the agent's hello claims one.
	Subdomain string
	// Owner is the token subject from the authorizer, or empty.
	Owner     string
	CreatedAt time.Time
	// ExpiresAt is when the item stops being valid (API Gateway's maximum
	// connection life after CreatedAt).
	ExpiresAt time.Time
}

// Claim is the ownership record of one subdomain: at most one claim per
// name, so two agents can never hold one name.
type Claim struct {
	Subdomain string
	// ConnectionID holds the name; empty once released.
	ConnectionID string
	Owner        string
	// KeyHash is the SHA-256 of the reclaim key (see HashKey).
	KeyHash string
	// ExpiresAt: after it the claim is void and anyone may take the name.
	ExpiresAt time.Time
}

// Held reports whether a connection holds the claim.
func (c Claim) Held() bool { return c.ConnectionID != "" }

// HashKey returns the hash under which a reclaim key is stored.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// KeyMatches reports whether the stored hash and a presented hash are equal,
// in constant time.
func KeyMatches(stored, presented string) bool {
	return stored != "" && subtle.ConstantTimeCompare([]byte(stored), []byte(presented)) == 1
}

// Store is the state of the service. Every read treats an item whose
// expiry has passed as absent, whether or not it has been deleted yet.
type Store interface {
	// PutConnection records a connection, replacing any with its id.
	PutConnection(ctx context.Context, c Connection) error
	// GetConnection returns the connection or ErrNotFound.
	GetConnection(ctx context.Context, id string) (Connection, error)
	// SetConnectionSubdomain records the subdomain a connection holds; it
	// returns ErrNotFound when the connection does not exist.
	SetConnectionSubdomain(ctx context.Context, id, subdomain string) error
	// DeleteConnection removes a connection (absent is not an error) and
	// wakes everyone waiting on it with ErrGone.
	DeleteConnection(ctx context.Context, id string) error

	// ClaimSubdomain gives c.Subdomain to c.ConnectionID, replacing the old
	// claim when there is none or it has expired, when c.KeyHash matches
	// the stored hash (a reconnecting agent, even while its old socket still
	// holds the name), or when the claim is released and c.Owner is the same
	// non-empty owner. Otherwise it returns ErrTaken.
	ClaimSubdomain(ctx context.Context, c Claim) error
	// GetSubdomain returns the claim of a name or ErrNotFound.
	GetSubdomain(ctx context.Context, subdomain string) (Claim, error)
	// ReleaseSubdomain marks the claim released and sets its expiry to
	// until, only if connectionID still holds it; otherwise it does nothing.
	ReleaseSubdomain(ctx context.Context, subdomain, connectionID string, until time.Time) error

	// PutChunk stores one response chunk until expires.
	PutChunk(ctx context.Context, c *protocol.Response, expires time.Time) error
	// WaitResponse blocks until every chunk of requestID, 0 through the
	// final one, is stored and returns them in any order. It returns ErrGone
	// as soon as connectionID's connection no longer exists, and ctx's error
	// when ctx ends first.
	WaitResponse(ctx context.Context, connectionID, requestID string) ([]*protocol.Response, error)
}
