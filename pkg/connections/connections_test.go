package connections_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"

	"github.com/lambdatunnel/lambdatunnel/pkg/apigw"
	"github.com/lambdatunnel/lambdatunnel/pkg/connections"
	"github.com/lambdatunnel/lambdatunnel/pkg/tunnel"
)

// connectIDs is a Lambda function that accepts every $connect and reports
// the connection ids it sees.
type connectIDs chan string

func (c connectIDs) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	var ev struct {
		RequestContext struct {
			EventType    string `json:"eventType"`
			ConnectionID string `json:"connectionId"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	if ev.RequestContext.EventType == "CONNECT" {
		c <- ev.RequestContext.ConnectionID
	}
	return []byte(`{"statusCode":200}`), nil
}

func TestPostAndGone(t *testing.T) {
	ids := make(connectIDs, 1)
	gw := apigw.New(apigw.Config{HTTPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0"}, ids)
	if err := gw.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	conn, _, err := websocket.Dial(ctx, gw.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := <-ids
	c, err := connections.New(aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}, gw.ManagementEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PostToConnection(ctx, id, []byte(`{"type":"pong"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := conn.Read(ctx); err != nil || string(b) != `{"type":"pong"}` {
		t.Fatalf("socket read %q, %v", b, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = c.PostToConnection(ctx, id, []byte(`{}`))
		if errors.Is(err, tunnel.ErrGone) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the close reaches the emulator asynchronously
	}
	if !errors.Is(err, tunnel.ErrGone) {
		t.Fatalf("post after close: %v, want tunnel.ErrGone", err)
	}
	if _, err := connections.New(aws.Config{}, ""); err == nil {
		t.Error("New without an endpoint succeeded")
	}
}
