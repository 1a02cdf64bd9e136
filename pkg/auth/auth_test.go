package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerify(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tok, err := New(secret, clock)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Mint("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := tok.Verify(s); err != nil || sub != "alice" {
		t.Fatalf("Verify = %q, %v; want alice", sub, err)
	}

	later, _ := New(secret, func() time.Time { return now.Add(2 * time.Hour) })
	if _, err := later.Verify(s); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify of an expired token: %v, want ErrExpired", err)
	}
	other, _ := New([]byte("another-secret-another-secret-xx"), clock)
	if _, err := other.Verify(s); err == nil {
		t.Error("a token verified under another secret")
	}
	if _, err := tok.Verify(s[:len(s)-2]); err == nil {
		t.Error("a truncated token verified")
	}
	// alg=none and tokens without expiry or with another issuer are refused.
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Issuer: Issuer, Subject: "eve",
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: Issuer, Subject: "eve"}).SignedString(secret)
	wrongIss, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: "x", Subject: "eve",
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}).SignedString(secret)
	for name, s := range map[string]string{"alg none": none, "no expiry": noExp, "wrong issuer": wrongIss, "empty": ""} {
		if sub, err := tok.Verify(s); err == nil {
			t.Errorf("%s: verified as %q", name, sub)
		}
	}
}

func TestNewRejectsShortSecret(t *testing.T) {
	if _, err := New([]byte("short"), nil); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("New with a 5-byte secret: %v", err)
	}
}
