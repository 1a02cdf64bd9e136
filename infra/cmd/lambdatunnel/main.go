// Command lambdatunnel is the CDK app that deploys the LambdaTunnel stack.
// Run it through the CDK CLI from the repository root (cdk.json):
//
//	npx cdk deploy [-c domainName=... -c hostedZoneId=... -c hostedZoneName=...]
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/lambdatunnel/lambdatunnel/infra/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lambdatunnel:", err)
		os.Exit(1)
	}
}

func run() error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	props := stack.PropsFromContext(app.Node(), os.Getenv)
	if err := props.Tunnel.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	stack.NewLambdaTunnel(app, "LambdaTunnel", props)
	app.Synth(nil)
	return nil
}
