package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/auth"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"lambda"}, args...))
	return out.String(), err
}

func TestTokenCommand(t *testing.T) {
	out, err := runApp(t, "token", "--secret", testSecret, "--subject", "alice", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := auth.New([]byte(testSecret), nil)
	if sub, err := tokens.Verify(strings.TrimSpace(out)); err != nil || sub != "alice" {
		t.Fatalf("the printed token %q verifies as %q, %v", out, sub, err)
	}
	tests := []struct {
		give []string
		want string
	}{
		{[]string{"token", "--subject", "alice"}, "give --secret or --secret-arn"},
		{[]string{"token", "--secret", "short", "--subject", "alice"}, "at least 32"},
		{[]string{"token", "--secret", testSecret}, `Required flag "subject" not set`},
		{[]string{"serve", "--store", "postgres"}, `--store "postgres": choose memory or dynamodb`},
	}
	for _, tt := range tests {
		if _, err := runApp(t, tt.give...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("lambda %s: %v, want an error saying %q", strings.Join(tt.give, " "), err, tt.want)
		}
	}
}

func TestLambdaFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // part of the error; "" for success
	}{
		{"bad handler", map[string]string{"TUNNEL_HANDLER": "message"}, "not one of connect, disconnect"},
		{"memory store", map[string]string{"TUNNEL_HANDLER": "connect", "TUNNEL_STORE": "memory"}, "only dynamodb keeps state"},
		{"forward without endpoint", map[string]string{"TUNNEL_HANDLER": "forward", "TUNNEL_DOMAIN": "t.example.com"}, "TUNNEL_MANAGEMENT_ENDPOINT"},
		{"forward without URLs", map[string]string{"TUNNEL_HANDLER": "forward", "TUNNEL_MANAGEMENT_ENDPOINT": "https://x/live"}, "neither a domain nor a public URL"},
		{"bad deadline", map[string]string{"TUNNEL_HANDLER": "forward", "TUNNEL_DOMAIN": "t.example.com", "TUNNEL_RESPONSE_DEADLINE": "soon"}, "TUNNEL_RESPONSE_DEADLINE"},
		{"deadline past API Gateway", map[string]string{"TUNNEL_HANDLER": "forward", "TUNNEL_DOMAIN": "t.example.com",
			"TUNNEL_MANAGEMENT_ENDPOINT": "https://x/live", "TUNNEL_RESPONSE_DEADLINE": "45s"}, "under API Gateway's 30 s"},
		{"short token secret", map[string]string{"TUNNEL_HANDLER": "authorizer", "TUNNEL_TOKEN_SECRET": "short"}, "at least 32"},
		{"connect", map[string]string{"TUNNEL_HANDLER": "connect"}, ""},
		{"authorizer", map[string]string{"TUNNEL_HANDLER": "authorizer", "TUNNEL_TOKEN_SECRET": testSecret}, ""},
		{"forward", map[string]string{"TUNNEL_HANDLER": "forward", "TUNNEL_PUBLIC_URL": "https://abc.execute-api.us-east-1.amazonaws.com",
			"TUNNEL_MANAGEMENT_ENDPOINT": "https://x.execute-api.us-east-1.amazonaws.com/live", "TUNNEL_RESPONSE_DEADLINE": "20s"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"TUNNEL_HANDLER", "TUNNEL_STORE", "TUNNEL_DOMAIN", "TUNNEL_PUBLIC_URL", "TUNNEL_MANAGEMENT_ENDPOINT",
				"TUNNEL_RESPONSE_DEADLINE", "TUNNEL_TOKEN_SECRET", "TUNNEL_TOKEN_SECRET_ARN"} {
				t.Setenv(k, tt.env[k])
			}
			t.Setenv("AWS_REGION", "us-east-1")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, err := lambdaFromEnv(ctx, slog.New(slog.DiscardHandler))
			if tt.want == "" {
				if err != nil || d == nil {
					t.Fatalf("lambdaFromEnv: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("lambdaFromEnv: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
