// Package backoff computes how long the agent waits before it dials the
// service again: exponential growth with full jitter ("Exponential Backoff
// And Jitter", AWS Architecture Blog), so that many agents cut off at once
// do not all come back at the same moment.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff hands out delays. The zero value uses the defaults; it is not
// safe for concurrent use (one connection manager owns one).
type Backoff struct {
	// Base is the upper bound of the first delay; default 1 s.
	Base time.Duration
	// Max caps every delay; default 30 s.
	Max time.Duration
	// Rand returns a number in [0, n); default math/rand/v2's Int64N.
	// Tests set it to pin the jitter.
	Rand func(n int64) int64

	attempt int
}

// Defaults of the zero Backoff.
const (
	DefaultBase = time.Second
	DefaultMax  = 30 * time.Second
)

// Next returns the delay before the next attempt: a uniformly random
// duration in [0, min(Max, Base·2^n)] for the n-th attempt since the last
// Reset.
func (b *Backoff) Next() time.Duration {
	ceiling := b.Ceiling()
	b.attempt++
	r := b.Rand
	if r == nil {
		r = rand.Int64N
	}
	return time.Duration(r(int64(ceiling) + 1))
}

// Ceiling is the upper bound of the delay Next returns next.
func (b *Backoff) Ceiling() time.Duration {
	base, max := b.Base, b.Max
	if base <= 0 {
		base = DefaultBase
	}
	if max <= 0 {
		max = DefaultMax
	}
	c := base
	for i := 0; i < b.attempt && c < max; i++ {
		c *= 2
	}
	return min(c, max)
}

// Attempt is the number of delays handed out since the last Reset.
func (b *Backoff) Attempt() int { return b.attempt }

// Reset starts again from Base, after a healthy connection.
func (b *Backoff) Reset() { b.attempt = 0 }
