// Package connections posts to agents' sockets through API Gateway's
// @connections management API, with the real aws-sdk-go-v2 client. The
// same client talks to AWS and to the local emulator of serve mode.
package connections

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/lambdatunnel/lambdatunnel/pkg/tunnel"
)

var _ tunnel.Poster = (*Client)(nil)

// Client is a tunnel.Poster over the management API.
type Client struct {
	api *apigatewaymanagementapi.Client
}

// New returns a Client for the management endpoint of a WebSocket API
// stage: https://{api-id}.execute-api.{region}.amazonaws.com/{stage} on AWS
// (https, not wss), or the emulator's address in serve mode.
func New(cfg aws.Config, endpoint string) (*Client, error) {
	if endpoint == "" {
		return nil, errors.New("no @connections endpoint configured (TUNNEL_MANAGEMENT_ENDPOINT)")
	}
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	return &Client{api: api}, nil
}

// PostToConnection sends data as one message to a connection. A connection
// that no longer exists is reported as tunnel.ErrGone.
func (c *Client) PostToConnection(ctx context.Context, connectionID string, data []byte) error {
	_, err := c.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         data,
	})
	var gone *types.GoneException
	switch {
	case errors.As(err, &gone):
		return fmt.Errorf("post to %s: %w", connectionID, tunnel.ErrGone)
	case err != nil:
		return fmt.Errorf("post %d bytes to %s: %w", len(data), connectionID, err)
	}
	return nil
}
