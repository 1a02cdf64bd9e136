// Package stack is the LambdaTunnel stack that `cdk deploy` deploys: one
// tunnel.Tunnel and the outputs a user needs to run the agent against it.
package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/lambdatunnel/lambdatunnel/infra/tunnel"
)

// Output keys of the stack (CfnOutput ids).
const (
	OutputServerURL            = "ServerURL"
	OutputPublicURLPattern     = "PublicURLPattern"
	OutputTokenSecretArn       = "TokenSecretArn"
	OutputTokenCommand         = "TokenCommand"
	OutputWildcardDomainTarget = "WildcardDomainTarget"
	OutputAgentDomainTarget    = "AgentDomainTarget"
)

// LambdaTunnelProps configures NewLambdaTunnel.
type LambdaTunnelProps struct {
	awscdk.StackProps
	// Tunnel configures the service; its zero value is valid.
	Tunnel tunnel.TunnelProps
}

// NewLambdaTunnel makes the stack. props may be nil.
func NewLambdaTunnel(scope constructs.Construct, id string, props *LambdaTunnelProps) awscdk.Stack {
	if props == nil {
		props = &LambdaTunnelProps{}
	}
	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("lambdatunnel: an HTTP tunnel on API Gateway, Lambda and DynamoDB")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	tunnelProps := props.Tunnel
	t := tunnel.NewTunnel(stack, jsii.String("Tunnel"), &tunnelProps)
	addOutputs(stack, t)
	return stack
}

func addOutputs(stack awscdk.Stack, t *tunnel.Tunnel) {
	output(stack, OutputServerURL, t.WebSocketURL,
		"the agent's --server (WebSocket URL)")
	output(stack, OutputPublicURLPattern, t.PublicURLPattern,
		"where a tunnel named <subdomain> is served")
	output(stack, OutputTokenSecretArn, t.TokenSecret.SecretArn(),
		"the secret whose value signs agent tokens")
	output(stack, OutputTokenCommand,
		jsii.String("go run ./lambda token --secret-arn "+*t.TokenSecret.SecretArn()+" --subject you"),
		"mints an agent token (run at the repository root with AWS credentials)")
	if d := t.Domain; d != nil && d.Zone == nil {
		output(stack, OutputWildcardDomainTarget, d.Wildcard.RegionalDomainName(),
			"create a CNAME *."+d.Name+" pointing here")
		output(stack, OutputAgentDomainTarget, d.Agent.RegionalDomainName(),
			"create a CNAME "+d.AgentHost+" pointing here")
	}
}

func output(stack awscdk.Stack, id string, value *string, description string) {
	awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{
		Value:       value,
		Description: jsii.String(description),
	})
}
