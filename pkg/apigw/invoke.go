package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

var (
	// errIntegrationTimeout: the Invoker did not answer within
	// Config.IntegrationTimeout.
	errIntegrationTimeout = errors.New("integration timeout")
	// errEventTooLarge: the event JSON is over Lambda's invocation payload
	// limit (6 MB), so Lambda would refuse the invocation.
	errEventTooLarge = errors.New("event exceeds the lambda invocation payload limit")
	// errResultTooLarge: the result JSON is over Lambda's response payload
	// limit (6 MB): Lambda fails the invocation with "response payload too large".
	errResultTooLarge = errors.New("result exceeds the lambda response payload limit")
)

// invoke encodes event, runs the Invoker in its own goroutine and waits for
// its result at most Config.IntegrationTimeout. A slow or stuck Invoker never
// holds up the caller past the timeout; its late result is dropped.
func (s *Server) invoke(ctx context.Context, event any) ([]byte, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	if len(payload) > s.cfg.MaxLambdaPayload {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errEventTooLarge, len(payload), s.cfg.MaxLambdaPayload)
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.IntegrationTimeout)
	defer cancel()

	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("invoker panicked: %v", p)}
			}
			done <- r
		}()
		r.out, r.err = s.fn.Invoke(ctx, payload)
	}()

	select {
	case r := <-done:
		if r.err != nil {
			if errors.Is(r.err, context.DeadlineExceeded) && ctx.Err() != nil {
				return nil, errIntegrationTimeout
			}
			return nil, fmt.Errorf("invoke: %w", r.err)
		}
		if len(r.out) > s.cfg.MaxLambdaPayload {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", errResultTooLarge, len(r.out), s.cfg.MaxLambdaPayload)
		}
		return r.out, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errIntegrationTimeout
		}
		return nil, ctx.Err()
	}
}
