package tunnel

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
)

// randomNameLen is the length of generated subdomains: 36^10 names, so a
// guess hits a live tunnel about never.
const randomNameLen = 10

// reserved names are never given to a tunnel: they are the service's own
// hostnames or look like they could be.
var reserved = map[string]bool{
	"www": true, "api": true, "admin": true, "agent": true, "app": true,
	"mail": true, "smtp": true, "ftp": true, "ns": true, "ns1": true, "ns2": true,
	"dashboard": true, "status": true, "static": true, "assets": true,
	"auth": true, "login": true, "tunnel": true, "connect": true,
	"localhost": true, "root": true, "support": true, "help": true, "docs": true,
}

// ValidateSubdomain checks a requested name: a DNS label of 3 to 63
// characters of a-z, 0-9 and inner hyphens, and not a reserved name.
func ValidateSubdomain(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("subdomain %q must be 3 to 63 characters long", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1:
		default:
			return fmt.Errorf("subdomain %q may hold only a-z, 0-9 and hyphens not at either end", name)
		}
	}
	if reserved[name] {
		return fmt.Errorf("subdomain %q is reserved", name)
	}
	return nil
}

// randomName returns a random valid subdomain that starts with a letter.
func randomName(r io.Reader) (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	name := make([]byte, 0, randomNameLen)
	buf := make([]byte, 2*randomNameLen)
	for len(name) < randomNameLen {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("random subdomain: %w", err)
		}
		for _, b := range buf {
			n := len(alphabet)
			if len(name) == 0 {
				n = 26 // a letter first
			}
			// Reject bytes past the last whole multiple of n: no bias.
			if int(b) >= 256/n*n || len(name) == randomNameLen {
				continue
			}
			name = append(name, alphabet[int(b)%n])
		}
	}
	return string(name), nil
}

// randomHex returns n random bytes as hex.
func randomHex(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// connTag is the suffix of request ids sent on a connection, so the
// response handler can tell that an answer arrives on the socket its
// request was sent to.
func connTag(connectionID string) string {
	sum := sha256.Sum256([]byte(connectionID))
	return hex.EncodeToString(sum[:4])
}

// newRequestID returns a fresh request id for a connection.
func newRequestID(r io.Reader, connectionID string) (string, error) {
	h, err := randomHex(r, 12)
	if err != nil {
		return "", fmt.Errorf("request id: %w", err)
	}
	return h + "-" + connTag(connectionID), nil
}

// sentOn reports whether requestID was made for connectionID.
func sentOn(requestID, connectionID string) bool {
	return strings.HasSuffix(requestID, "-"+connTag(connectionID))
}

// publicURL returns the public base URL of a subdomain.
func (s *Service) publicURL(sub string) string {
	if s.cfg.Domain != "" {
		return s.cfg.Scheme + "://" + sub + "." + s.cfg.Domain
	}
	return strings.TrimRight(s.cfg.PublicURL, "/") + "/" + sub + "/"
}

// subdomainOf finds the subdomain a public request is for: the first label
// of a host under the configured domain, or else the first path segment.
// It returns the name and the path with the name removed.
func (s *Service) subdomainOf(host, path string) (sub, rest string, pathStyle bool) {
	if s.cfg.Domain != "" {
		h := strings.ToLower(stripPort(host))
		domain := strings.ToLower(stripPort(s.cfg.Domain))
		if label, ok := strings.CutSuffix(h, "."+domain); ok && label != "" && !strings.Contains(label, ".") {
			return label, path, false
		}
	}
	trimmed := strings.TrimPrefix(path, "/")
	sub, rest, found := strings.Cut(trimmed, "/")
	if !found {
		return sub, "/", true
	}
	return sub, "/" + rest, true
}

func stripPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
