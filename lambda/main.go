// Command lambda is the one binary of the service. Inside AWS Lambda
// (AWS_LAMBDA_RUNTIME_API is set) it runs the handler that TUNNEL_HANDLER
// names, or the one the event's shape calls for. Outside Lambda it is a CLI:
// `serve` runs the whole service on this machine, `token` mints agent
// tokens, `init-tables` creates the DynamoDB tables.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		d, err := lambdaFromEnv(context.Background(), newLogger("json", os.Getenv("TUNNEL_LOG_LEVEL")))
		if err != nil {
			// Lambda reports an init failure with what the process printed.
			fmt.Fprintln(os.Stderr, "lambdatunnel:", err)
			os.Exit(1)
		}
		lambda.Start(d)
		return
	}
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "lambdatunnel:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "lambda",
		Usage:   "the lambdatunnel service: one binary for AWS Lambda and for running locally",
		Version: version,
		Description: "Inside AWS Lambda this binary is the connect, disconnect, forward, response or authorizer\n" +
			"handler (TUNNEL_HANDLER, or detected from the event). Here it runs the service locally.",
		Commands:       []*cli.Command{serveCommand(), tokenCommand(), initTablesCommand()},
		DefaultCommand: "",
	}
}

// newLogger returns a slog logger writing to stderr in the given format.
func newLogger(format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil || level == "" {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
