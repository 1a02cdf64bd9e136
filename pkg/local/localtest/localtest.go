// Package localtest runs the whole local service in a test's process.
package localtest

import (
	"context"
	"testing"

	"github.com/lambdatunnel/lambdatunnel/pkg/local"
)

// Start runs the service on free loopback ports (cfg's addresses are
// overridden) and stops it, checking that Run ended cleanly, when the test
// ends.
func Start(t testing.TB, cfg local.Config) *local.Service {
	t.Helper()
	cfg.Gateway.HTTPAddr, cfg.Gateway.WSAddr = "127.0.0.1:0", "127.0.0.1:0"
	svc, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("local service: %v", err)
		}
	})
	return svc
}
