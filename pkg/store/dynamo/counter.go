package dynamo

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/aws/smithy-go/middleware"
)

// CallCounter counts SDK operations by name ("GetItem", "Query", ...): one
// per call the code makes, however many attempts the retryer needs. Add it
// to a client with
//
//	dynamo.NewClient(cfg, func(o *dynamodb.Options) {
//		o.APIOptions = append(o.APIOptions, counter.APIOption)
//	})
//
// or config.WithAPIOptions([]func(*middleware.Stack) error{counter.APIOption}).
// The zero value is ready to use and safe for concurrent use.
type CallCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

// APIOption installs the counter in an operation's middleware stack.
func (c *CallCounter) APIOption(stack *middleware.Stack) error {
	id := fmt.Sprintf("lambdatunnel.CallCounter.%p", c)
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc(id,
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.add(middleware.GetOperationName(ctx))
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

func (c *CallCounter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = make(map[string]int)
	}
	c.calls[op]++
}

// Snapshot returns the counts so far by operation name.
func (c *CallCounter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := maps.Clone(c.calls)
	if out == nil {
		out = map[string]int{}
	}
	return out
}

// Reset sets every count to zero.
func (c *CallCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.calls)
}
