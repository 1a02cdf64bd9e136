// Package dynamotest runs DynamoDB tests against a real moto_server on a
// loopback port, one per test binary, through the real aws-sdk-go-v2 client.
//
//	func TestMain(m *testing.M) { os.Exit(dynamotest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		client := dynamotest.NewClient(t, dynamotest.Start(t))
//		tables := dynamotest.NewTables(t, client)
//		s := dynamo.New(client, tables)
//		...
//	}
//
// Without Main the server still starts once and is shared, but it stops
// when the last test using it ends and starts again for a later one.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo"
)

// Region is the region of the clients NewClient returns.
const Region = "us-east-1"

// NewClient returns a DynamoDB client for endpoint with fake static
// credentials, built by dynamo.NewClient (so with the store's retryer).
// optFns run last, for example to add a dynamo.CallCounter.
//
// The client sends one request at a time to moto (together with every
// other client of this package in the test binary): moto_server serves
// requests on concurrent threads and checks a ConditionExpression and then
// writes without a lock, so two conditional writes to one item can both
// succeed, where DynamoDB makes each item write atomic. One request at a
// time gives DynamoDB's behaviour back.
func NewClient(t testing.TB, endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}
	opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = serialClient{awshttp.NewBuildableClient()}
	}}, optFns...)
	return dynamo.NewClient(cfg, opts...)
}

// NewTables creates a fresh set of the three tables, named with a random
// suffix so that tests sharing one server never share items.
func NewTables(t testing.TB, client *dynamodb.Client) dynamo.Tables {
	t.Helper()
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	prefix := "lt-" + hex.EncodeToString(suffix) + "-"
	tables := dynamo.Tables{
		Connections: prefix + "connections",
		Subdomains:  prefix + "subdomains",
		Responses:   prefix + "responses",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dynamo.CreateTables(ctx, client, tables); err != nil {
		t.Fatalf("create tables: %v", err)
	}
	return tables
}

// motoTurn is held by the request moto is serving.
var motoTurn = make(chan struct{}, 1)

// serialClient sends one request to moto at a time. moto does an
// operation's work before it sends the response's headers, so the turn
// ends when they arrive.
type serialClient struct{ base *awshttp.BuildableClient }

func (c serialClient) Do(req *http.Request) (*http.Response, error) {
	select {
	case motoTurn <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	defer func() { <-motoTurn }()
	return c.base.Do(req)
}
