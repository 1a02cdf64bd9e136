package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/urfave/cli/v2"

	"github.com/lambdatunnel/lambdatunnel/pkg/auth"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "mint an agent token (give it to `agent --token`)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Required: true, Usage: "who the token is for; the owner of the names it claims"},
			&cli.StringFlag{Name: "secret", Usage: "the token secret (at least 32 bytes), as given to serve --token-secret", EnvVars: []string{"TUNNEL_TOKEN_SECRET"}},
			&cli.StringFlag{Name: "secret-arn", Usage: "read the secret from this Secrets Manager secret (the stack's TokenSecretArn output)", EnvVars: []string{"TUNNEL_TOKEN_SECRET_ARN"}},
			&cli.DurationFlag{Name: "ttl", Value: 30 * 24 * time.Hour, Usage: "how long the token is valid"},
		},
		Action: func(c *cli.Context) error {
			secret := []byte(c.String("secret"))
			if arn := c.String("secret-arn"); len(secret) == 0 && arn != "" {
				cfg, err := config.LoadDefaultConfig(c.Context)
				if err != nil {
					return fmt.Errorf("aws config: %w", err)
				}
				if secret, err = secretFromARN(c.Context, cfg, arn); err != nil {
					return err
				}
			}
			if len(secret) == 0 {
				return errors.New("give --secret or --secret-arn")
			}
			tokens, err := auth.New(secret, nil)
			if err != nil {
				return err
			}
			tok, err := tokens.Mint(c.String("subject"), c.Duration("ttl"))
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, tok)
			return nil
		},
	}
}

func initTablesCommand() *cli.Command {
	return &cli.Command{
		Name:  "init-tables",
		Usage: "create the DynamoDB tables (with TTL) for serve --store dynamodb",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "endpoint", Usage: "DynamoDB endpoint, e.g. http://127.0.0.1:5000; empty: AWS", EnvVars: []string{"TUNNEL_DYNAMODB_ENDPOINT"}},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
			defer cancel()
			client, err := dynamoClient(ctx, c.String("endpoint"))
			if err != nil {
				return err
			}
			tables := dynamo.TablesFromEnv()
			if err := dynamo.CreateTables(ctx, client, tables); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "tables ready: %s, %s, %s\n", tables.Connections, tables.Subdomains, tables.Responses)
			return nil
		},
	}
}
