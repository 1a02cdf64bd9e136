// Command consumer shows the tunnel construct inside someone else's
// stack: it adds a tunnel to a stack of its own, exports the agent URL
// for other stacks, and gives a role of its own the right to mint tokens.
//
//	npx cdk synth --app 'go -C infra build -o ../build/cdk/consumer ./examples/consumer && build/cdk/consumer'
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/lambdatunnel/lambdatunnel/infra/tunnel"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run() error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	props := &tunnel.TunnelProps{MemorySize: 512}
	if v, ok := app.Node().TryGetContext(jsii.String("assetPath")).(string); ok {
		props.AssetPath = v
	}
	if err := props.Validate(); err != nil {
		return fmt.Errorf("invalid tunnel configuration: %w", err)
	}
	newConsumerStack(app, "TunnelConsumer", props)
	app.Synth(nil)
	return nil
}

// newConsumerStack is a team's own stack that embeds a tunnel.
func newConsumerStack(scope constructs.Construct, id string, props *tunnel.TunnelProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), &awscdk.StackProps{
		Description: jsii.String("a team stack that embeds lambdatunnel"),
	})
	t := tunnel.NewTunnel(stack, jsii.String("DevTunnel"), props)

	// Other stacks import the agent URL with Fn::ImportValue.
	awscdk.NewCfnOutput(stack, jsii.String("DevTunnelServer"), &awscdk.CfnOutputProps{
		Value:      t.WebSocketURL,
		ExportName: jsii.String(id + "-DevTunnelServer"),
	})

	// CI mints agent tokens with this role; it may read the signing key
	// and nothing else.
	minter := awsiam.NewRole(stack, jsii.String("TokenMinter"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewAccountRootPrincipal(),
	})
	minter.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
		Resources: jsii.Strings(*t.TokenSecret.SecretArn()),
	}))
	return stack
}
