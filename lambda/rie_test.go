package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo/dynamotest"
)

// rieBinary finds the AWS Lambda Runtime Interface Emulator that `make
// tools` installs.
func rieBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AWS_LAMBDA_RIE"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../build/tools/aws-lambda-rie"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	t.Fatal("aws-lambda-rie is not installed: run `make tools` (it installs " +
		"github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie into build/tools)")
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRuntimeInterfaceEmulator runs the bootstrap binary, built as for
// Lambda (-tags lambda.norpc), under the AWS Lambda Runtime Interface
// Emulator with DynamoDB at moto, and invokes it with a WebSocket CONNECT
// event and an HTTP API v2 event: the Lambda runtime path, end to end.
func TestRuntimeInterfaceEmulator(t *testing.T) {
	rie := rieBinary(t)
	endpoint := dynamotest.Start(t)
	client := dynamotest.NewClient(t, endpoint)
	tables := dynamotest.NewTables(t, client)

	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrap, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bootstrap: %v\n%s", err, out)
	}

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, rie, "--runtime-interface-emulator-address", addr,
		"--runtime-api-address", freeAddr(t), bootstrap)
	cmd.Env = append(os.Environ(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_DYNAMODB="+endpoint,
		"TUNNEL_CONNECTIONS_TABLE="+tables.Connections,
		"TUNNEL_SUBDOMAINS_TABLE="+tables.Subdomains,
		"TUNNEL_RESPONSES_TABLE="+tables.Responses,
		"TUNNEL_DOMAIN=tunnel.example.com",
		"TUNNEL_MANAGEMENT_ENDPOINT=http://127.0.0.1:9", // not reached by these events
		"TUNNEL_TOKEN_SECRET=0123456789abcdef0123456789abcdef",
	)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", logs.String())
		}
	})

	invoke := func(fixture string) []byte {
		t.Helper()
		event, err := os.ReadFile(filepath.Join("..", "pkg", "dispatch", "testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + addr + "/2015-03-31/functions/function/invocations"
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Post(url, "application/json", bytes.NewReader(event))
			if err == nil {
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("invoke with %s: HTTP %d %s", fixture, resp.StatusCode, b)
				}
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("the emulator did not answer within 20 s: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	var connect events.APIGatewayProxyResponse
	if out := invoke("ws-connect.json"); json.Unmarshal(out, &connect) != nil || connect.StatusCode != 200 {
		t.Fatalf("CONNECT answered %s", out)
	}
	c, err := dynamo.New(client, tables).GetConnection(context.Background(), "CbVb1dD7oAMCJbg=")
	if err != nil || c.Owner != "alice" {
		t.Fatalf("after CONNECT the connection is %+v, %v; want it recorded with owner alice", c, err)
	}

	var forward events.APIGatewayV2HTTPResponse
	out := invoke("http-v2-get.json")
	if err := json.Unmarshal(out, &forward); err != nil {
		t.Fatalf("forward answered %s: %v", out, err)
	}
	if forward.StatusCode != 404 || forward.Headers["x-lambdatunnel-error"] != "no_tunnel" ||
		!strings.Contains(forward.Body, "No tunnel is connected at https://myapp.tunnel.example.com") {
		t.Fatalf("forward for an unclaimed name answered %s", out)
	}
}
