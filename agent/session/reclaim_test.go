package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/apigw"
	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
)

func nothing(context.Context, *protocol.Request) *protocol.Response { return nil }

// A key from an earlier run (Config.ReclaimKey) goes in the first hello
// and takes the name, which the service otherwise refuses while it is
// held or reserved.
func TestReclaimKeyFromConfig(t *testing.T) {
	svc := startService(t, apigw.Config{})
	first := runManager(t, Config{Server: svc.WSURL(), Handler: HandlerFunc(nothing)}, newEvents())

	m, err := New(Config{Server: svc.WSURL(), Subdomain: first.Subdomain, ReclaimKey: "not-the-key", Handler: HandlerFunc(nothing)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var se *ServiceError
	if err := m.Run(ctx); !errors.As(err, &se) || se.Code != protocol.CodeSubdomainInUse {
		t.Fatalf("with another key: %v, want subdomain_in_use", err)
	}

	again := runManager(t, Config{Server: svc.WSURL(), Subdomain: first.Subdomain, ReclaimKey: first.ReclaimKey, Handler: HandlerFunc(nothing)}, newEvents())
	if again.URL != first.URL || again.ReclaimKey != first.ReclaimKey {
		t.Fatalf("with the key: %s, want %s and the same key", again.URL, first.URL)
	}
}

// With Fallback, a refused name gets a random one at once, and Fallback
// hears why.
func TestFallbackToRandom(t *testing.T) {
	svc := startService(t, apigw.Config{})
	runManager(t, Config{Server: svc.WSURL(), Subdomain: "held", Handler: HandlerFunc(nothing)}, newEvents())
	give := []struct {
		name, sub string
		want      protocol.ErrorCode
	}{
		{"in use", "held", protocol.CodeSubdomainInUse},
		{"invalid", "-bad-", protocol.CodeSubdomainDenied},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			var got []*ServiceError
			r := runManager(t, Config{
				Server: svc.WSURL(), Subdomain: tt.sub, ReclaimKey: "not-the-key", Handler: HandlerFunc(nothing),
				Fallback: func(se *ServiceError) { got = append(got, se) }, // before Run's first ready
			}, newEvents())
			if r.Subdomain == "" || r.Subdomain == tt.sub {
				t.Fatalf("got %q, want a random name", r.Subdomain)
			}
			if len(got) != 1 || got[0].Code != tt.want {
				t.Fatalf("Fallback heard %v, want one %s", got, tt.want)
			}
		})
	}
}
