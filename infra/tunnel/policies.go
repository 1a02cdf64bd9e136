package tunnel

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
)

// grantLeastPrivilege gives each function's role exactly the actions its
// handler uses, on exactly the resources it uses them on. Statements are
// written out rather than using Table.Grant* helpers, which add actions
// the handlers never call.
func grantLeastPrivilege(f Functions, t Tables, secret awssecretsmanager.ISecret, ws awsapigatewayv2.WebSocketApi) {
	conns, subs, resps := t.Connections.TableArn(), t.Subdomains.TableArn(), t.Responses.TableArn()

	add(f.Connect,
		allow(dynamo("PutItem"), conns))
	add(f.Disconnect,
		allow(dynamo("GetItem", "DeleteItem"), conns),
		allow(dynamo("UpdateItem"), subs)) // release, conditional on holding it
	add(f.Response,
		allow(dynamo("GetItem", "UpdateItem"), conns), // hello: read owner, record subdomain
		allow(dynamo("PutItem", "UpdateItem"), subs),  // conditional claim; release a previous name
		allow(dynamo("PutItem"), resps),               // one item per response chunk
		allow([]string{"execute-api:ManageConnections"}, connectionsArn(ws, "POST")))
	add(f.Forward,
		allow(dynamo("GetItem", "DeleteItem"), conns), // gone check; drop a connection API Gateway says is gone
		allow(dynamo("GetItem", "UpdateItem"), subs),  // routing read; release a gone connection's name
		allow(dynamo("Query"), resps),                 // the response wait
		allow([]string{"execute-api:ManageConnections"}, connectionsArn(ws, "POST")))
	add(f.Authorizer,
		allow([]string{"secretsmanager:GetSecretValue"}, secret.SecretArn()))
}

func add(fn interface {
	AddToRolePolicy(awsiam.PolicyStatement)
}, statements ...awsiam.PolicyStatement) {
	for _, s := range statements {
		fn.AddToRolePolicy(s)
	}
}

func allow(actions []string, resources ...*string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Effect:    awsiam.Effect_ALLOW,
		Actions:   jsii.Strings(actions...),
		Resources: &resources,
	})
}

func dynamo(actions ...string) []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = "dynamodb:" + a
	}
	return out
}

// connectionsArn is the @connections resource of this API's stage for one
// HTTP method (POST = PostToConnection, DELETE = DeleteConnection).
func connectionsArn(ws awsapigatewayv2.WebSocketApi, method string) *string {
	stack := awscdk.Stack_Of(ws)
	return jsii.String(fmt.Sprintf("arn:%s:execute-api:%s:%s:%s/%s/%s/@connections/*",
		*stack.Partition(), *stack.Region(), *stack.Account(), *ws.ApiId(), StageName, method))
}
