package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Context keys the app reads (cdk deploy -c key=value, or cdk.json).
const (
	ContextDomainName     = "domainName"
	ContextHostedZoneID   = "hostedZoneId"
	ContextHostedZoneName = "hostedZoneName"
	ContextCertificateArn = "certificateArn"
	ContextTokenSecretArn = "tokenSecretArn"
	ContextAssetPath      = "assetPath"
)

// PropsFromContext builds the stack's props from the CDK context of node
// and, through getenv, the CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION the
// CLI sets: when either is present the stack is bound to that environment,
// otherwise it is environment-agnostic (synth needs no credentials).
func PropsFromContext(node constructs.Node, getenv func(string) string) *LambdaTunnelProps {
	get := func(key string) string {
		v := node.TryGetContext(jsii.String(key))
		if v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}
	props := &LambdaTunnelProps{}
	props.Tunnel.DomainName = get(ContextDomainName)
	props.Tunnel.HostedZoneId = get(ContextHostedZoneID)
	props.Tunnel.HostedZoneName = get(ContextHostedZoneName)
	props.Tunnel.CertificateArn = get(ContextCertificateArn)
	props.Tunnel.TokenSecretArn = get(ContextTokenSecretArn)
	props.Tunnel.AssetPath = get(ContextAssetPath)

	account, region := getenv("CDK_DEFAULT_ACCOUNT"), getenv("CDK_DEFAULT_REGION")
	if account != "" || region != "" {
		props.Env = &awscdk.Environment{}
		if account != "" {
			props.Env.Account = jsii.String(account)
		}
		if region != "" {
			props.Env.Region = jsii.String(region)
		}
	}
	return props
}
