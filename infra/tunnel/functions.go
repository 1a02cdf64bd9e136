package tunnel

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Functions are the five functions; all run the one bootstrap binary and
// differ in EnvHandler, environment and role.
type Functions struct {
	Connect    awslambda.Function
	Disconnect awslambda.Function
	Forward    awslambda.Function
	Response   awslambda.Function
	Authorizer awslambda.Function
}

// functionEnv is the environment of each function, EnvHandler aside.
type functionEnv struct {
	connect, disconnect, forward, response, authorizer map[string]*string
}

// forwardTimeout leaves forward a moment past its deadline to answer 504,
// within API Gateway's 30 s.
func forwardTimeout(deadline time.Duration) time.Duration {
	if deadline <= DefaultResponseDeadline {
		return 29 * time.Second
	}
	return MaxResponseDeadline
}

func newFunctions(scope constructs.Construct, p TunnelProps, env functionEnv) Functions {
	code := awslambda.Code_FromAsset(jsii.String(p.AssetPath), nil)
	short := 10 * time.Second
	return Functions{
		Connect:    newFunction(scope, "Connect", code, p, HandlerConnect, short, env.connect),
		Disconnect: newFunction(scope, "Disconnect", code, p, HandlerDisconnect, short, env.disconnect),
		Forward:    newFunction(scope, "Forward", code, p, HandlerForward, forwardTimeout(p.ResponseDeadline), env.forward),
		Response:   newFunction(scope, "Response", code, p, HandlerResponse, short, env.response),
		Authorizer: newFunction(scope, "Authorizer", code, p, HandlerAuthorizer, short, env.authorizer),
	}
}

// newFunction makes one function with its own log group and its own role,
// which may only write to that log group until policies are added.
func newFunction(scope constructs.Construct, id string, code awslambda.Code, p TunnelProps,
	handler string, timeout time.Duration, env map[string]*string) awslambda.Function {
	logs := awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     p.LogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(scope, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("lambdatunnel " + handler + " function"),
	})
	role.AddToPolicy(allow([]string{"logs:CreateLogStream", "logs:PutLogEvents"}, logs.LogGroupArn()))

	environment := map[string]*string{EnvHandler: jsii.String(handler)}
	for k, v := range env {
		environment[k] = v
	}
	return awslambda.NewFunction(scope, jsii.String(id), &awslambda.FunctionProps{
		Description:  jsii.String("lambdatunnel " + handler),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Handler:      jsii.String("bootstrap"),
		Code:         code,
		Architecture: p.Architecture,
		MemorySize:   jsii.Number(float64(p.MemorySize)),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(timeout.Seconds())),
		Environment:  &environment,
		Role:         role,
		LogGroup:     logs,
	})
}
