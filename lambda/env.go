package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lambdatunnel/lambdatunnel/pkg/auth"
	"github.com/lambdatunnel/lambdatunnel/pkg/connections"
	"github.com/lambdatunnel/lambdatunnel/pkg/dispatch"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo"
	"github.com/lambdatunnel/lambdatunnel/pkg/tunnel"
)

// lambdaFromEnv builds the dispatcher from the environment the CDK stack
// sets on each function:
//
//	TUNNEL_HANDLER               connect|disconnect|forward|response|authorizer; unset: detect
//	TUNNEL_CONNECTIONS_TABLE,
//	TUNNEL_SUBDOMAINS_TABLE,
//	TUNNEL_RESPONSES_TABLE       DynamoDB table names
//	TUNNEL_MANAGEMENT_ENDPOINT   https://{api-id}.execute-api.{region}.amazonaws.com/{stage}
//	TUNNEL_DOMAIN                wildcard domain of public URLs; or
//	TUNNEL_PUBLIC_URL            base of path-style public URLs
//	TUNNEL_RESPONSE_DEADLINE     how long forward waits, e.g. 28s
//	TUNNEL_TOKEN_SECRET_ARN      Secrets Manager secret the authorizer verifies tokens with
//	                             (or TUNNEL_TOKEN_SECRET, the secret itself)
//	TUNNEL_LOG_LEVEL             debug|info|warn|error
func lambdaFromEnv(ctx context.Context, log *slog.Logger) (*dispatch.Dispatcher, error) {
	kind, err := dispatch.ParseKind(os.Getenv("TUNNEL_HANDLER"))
	if err != nil {
		return nil, err
	}
	if s := os.Getenv("TUNNEL_STORE"); s != "" && s != "dynamodb" {
		return nil, fmt.Errorf("TUNNEL_STORE=%q: inside Lambda only dynamodb keeps state between invocations", s)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	cfg := tunnel.Config{Domain: os.Getenv("TUNNEL_DOMAIN"), PublicURL: os.Getenv("TUNNEL_PUBLIC_URL")}
	if s := os.Getenv("TUNNEL_RESPONSE_DEADLINE"); s != "" {
		if cfg.Deadline, err = time.ParseDuration(s); err != nil {
			return nil, fmt.Errorf("TUNNEL_RESPONSE_DEADLINE: %w", err)
		}
	}
	if cfg.Domain == "" && cfg.PublicURL == "" && (kind == dispatch.Connect || kind == dispatch.Disconnect || kind == dispatch.Authorizer) {
		cfg.PublicURL = "https://unused.invalid" // these handlers make no public URLs
	}

	var poster tunnel.Poster = noPoster{}
	if needs(kind, dispatch.Forward, dispatch.Response) {
		if poster, err = connections.New(awsCfg, os.Getenv("TUNNEL_MANAGEMENT_ENDPOINT")); err != nil {
			return nil, err
		}
	}
	opts := []tunnel.Option{tunnel.WithLogger(log)}
	if needs(kind, dispatch.Authorizer) {
		secret, err := tokenSecret(ctx, awsCfg)
		if err != nil {
			return nil, err
		}
		if secret != nil {
			tokens, err := auth.New(secret, nil)
			if err != nil {
				return nil, err
			}
			opts = append(opts, tunnel.WithVerifier(tokens))
		}
	}
	st := dynamo.New(dynamo.NewClient(awsCfg), dynamo.TablesFromEnv())
	svc, err := tunnel.New(cfg, st, poster, opts...)
	if err != nil {
		return nil, err
	}
	log.Debug("lambda handler ready", "handler", kind, "version", version)
	return dispatch.New(svc, kind), nil
}

// needs reports whether a function fixed to kind (or detecting, when kind
// is empty) may run one of the given handlers.
func needs(kind dispatch.Kind, kinds ...dispatch.Kind) bool {
	return kind == "" || slices.Contains(kinds, kind)
}

// tokenSecret reads the token secret from TUNNEL_TOKEN_SECRET or from the
// Secrets Manager secret TUNNEL_TOKEN_SECRET_ARN names. It returns nil when
// neither is set: the authorizer then denies everyone and says why.
func tokenSecret(ctx context.Context, cfg aws.Config) ([]byte, error) {
	if s := os.Getenv("TUNNEL_TOKEN_SECRET"); s != "" {
		return []byte(s), nil
	}
	arn := os.Getenv("TUNNEL_TOKEN_SECRET_ARN")
	if arn == "" {
		return nil, nil
	}
	return secretFromARN(ctx, cfg, arn)
}

func secretFromARN(ctx context.Context, cfg aws.Config, arn string) ([]byte, error) {
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("read token secret %s: %w", arn, err)
	}
	if out.SecretString != nil {
		return []byte(*out.SecretString), nil
	}
	return out.SecretBinary, nil
}

// noPoster is the poster of handlers that never post.
type noPoster struct{}

func (noPoster) PostToConnection(context.Context, string, []byte) error {
	return errors.New("this function has no @connections endpoint (TUNNEL_MANAGEMENT_ENDPOINT)")
}
