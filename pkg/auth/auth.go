// Package auth mints and verifies the tokens agents connect with: JWTs
// signed with HMAC-SHA256 under the deployment's secret, naming their owner
// as the subject.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the iss claim of every token.
const Issuer = "lambdatunnel"

// MinSecretBytes is the shortest secret accepted: HS256 needs 256 bits.
const MinSecretBytes = 32

// ErrExpired is wrapped by Verify's error for a token past its expiry.
var ErrExpired = errors.New("token has expired")

// Tokens mints and verifies tokens under one secret.
type Tokens struct {
	secret []byte
	now    func() time.Time
}

// New returns Tokens for a secret of at least MinSecretBytes bytes, reading
// time from now (time.Now when nil).
func New(secret []byte, now func() time.Time) (*Tokens, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("token secret is %d bytes; it must be at least %d", len(secret), MinSecretBytes)
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{secret: secret, now: now}, nil
}

// Mint returns a token for subject that is valid for ttl.
func (t *Tokens) Mint(subject string, ttl time.Duration) (string, error) {
	if subject == "" {
		return "", errors.New("a token needs a subject (its owner)")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token lifetime %v must be positive", ttl)
	}
	now := t.now()
	claims := jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   subject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
}

// Verify checks a token's signature, issuer and expiry and returns its
// subject.
func (t *Tokens) Verify(token string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims,
		func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", fmt.Errorf("%w (at %v)", ErrExpired, claims.ExpiresAt.Time.UTC().Format(time.RFC3339))
	case err != nil:
		return "", fmt.Errorf("invalid token: %w", err)
	case claims.Subject == "":
		return "", errors.New("invalid token: no subject")
	}
	return claims.Subject, nil
}
