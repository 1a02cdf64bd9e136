package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/lambdatunnel/lambdatunnel/infra/tunnel"
)

func TestConsumerStack(t *testing.T) {
	defer jsii.Close()
	asset := t.TempDir()
	if err := os.WriteFile(filepath.Join(asset, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	stack := newConsumerStack(awscdk.NewApp(nil), "TunnelConsumer", &tunnel.TunnelProps{MemorySize: 512, AssetPath: asset})
	template := assertions.Template_FromStack(stack, nil)

	template.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(5))
	template.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Api"), jsii.Number(2))
	template.AllResourcesProperties(jsii.String("AWS::Lambda::Function"), map[string]any{"MemorySize": 512})
	template.HasOutput(jsii.String("DevTunnelServer"), map[string]any{
		"Export": map[string]any{"Name": "TunnelConsumer-DevTunnelServer"},
		"Value": map[string]any{"Fn::Join": assertions.Match_ArrayWith(&[]any{
			assertions.Match_ArrayWith(&[]any{"wss://"}),
		})},
	})
	template.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]any{
		"PolicyDocument": map[string]any{"Statement": []any{map[string]any{
			"Action": "secretsmanager:GetSecretValue", "Effect": "Allow",
			"Resource": map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^DevTunnelTokenSecret"))},
		}}},
		"Roles": []any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^TokenMinter"))}},
	})
}
