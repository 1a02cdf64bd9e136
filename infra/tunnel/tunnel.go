// Package tunnel is the lambdatunnel service as one CDK construct: the
// WebSocket API agents connect to, the HTTP API the public calls, the five
// functions behind them, their tables, token secret and optional domain.
package tunnel

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// StageName is the WebSocket API's stage; the HTTP API uses $default.
const StageName = "live"

// TokenIdentitySource is where the $connect authorizer finds the agent's
// token: wss://...?token=JWT. A connect without it is refused with 401
// before the authorizer runs.
const TokenIdentitySource = "route.request.querystring.token"

// Tunnel is a deployed lambdatunnel service.
type Tunnel struct {
	constructs.Construct

	// WebSocketURL is the agent's --server: wss://agent.<domain> or
	// wss://<api-id>.execute-api.<region>.amazonaws.com/live.
	WebSocketURL *string
	// PublicURLPattern shows where a tunnel named <subdomain> is served:
	// https://<subdomain>.<domain>/ or <HTTPEndpoint>/<subdomain>/.
	PublicURLPattern *string
	// HTTPEndpoint is the HTTP API's default endpoint,
	// https://<api-id>.execute-api.<region>.amazonaws.com.
	HTTPEndpoint *string
	// ManagementEndpoint is the @connections API forward and response
	// post to: https://<api-id>.execute-api.<region>.amazonaws.com/live.
	ManagementEndpoint *string

	// TokenSecret holds the key that signs agent tokens.
	TokenSecret awssecretsmanager.ISecret
	Tables      Tables
	Functions   Functions

	WebSocketAPI   awsapigatewayv2.WebSocketApi
	WebSocketStage awsapigatewayv2.WebSocketStage
	HTTPAPI        awsapigatewayv2.HttpApi
	HTTPStage      awsapigatewayv2.HttpStage

	// Domain is nil without TunnelProps.DomainName.
	Domain *Domain
}

// NewTunnel adds a tunnel service to scope. props may be nil; see
// TunnelProps for the defaults. Like other constructs it panics on invalid
// props, with the error TunnelProps.Validate returns.
func NewTunnel(scope constructs.Construct, id *string, props *TunnelProps) *Tunnel {
	if err := props.Validate(); err != nil {
		panic(fmt.Errorf("tunnel %s: %w", *id, err))
	}
	p := props.withDefaults()
	c := constructs.NewConstruct(scope, id)
	stack := awscdk.Stack_Of(c)
	t := &Tunnel{Construct: c, Tables: newTables(c), TokenSecret: tokenSecret(c, p.TokenSecretArn)}

	t.WebSocketAPI = awsapigatewayv2.NewWebSocketApi(c, jsii.String("WebSocketApi"), &awsapigatewayv2.WebSocketApiProps{
		Description: jsii.String("lambdatunnel agents connect here"),
	})
	t.HTTPAPI = awsapigatewayv2.NewHttpApi(c, jsii.String("HttpApi"), &awsapigatewayv2.HttpApiProps{
		Description:        jsii.String("lambdatunnel public traffic"),
		CreateDefaultStage: jsii.Bool(false),
	})
	t.HTTPEndpoint = t.HTTPAPI.ApiEndpoint()
	t.ManagementEndpoint = jsii.String(fmt.Sprintf("https://%s.execute-api.%s.%s/%s",
		*t.WebSocketAPI.ApiId(), *stack.Region(), *stack.UrlSuffix(), StageName))

	t.Functions = newFunctions(c, p, t.environment(p))
	grantLeastPrivilege(t.Functions, t.Tables, t.TokenSecret, t.WebSocketAPI)
	t.addRoutes()

	t.Domain = newDomain(c, p)
	httpMapping, wsMapping := t.Domain.mappings()
	throttle := &awsapigatewayv2.ThrottleSettings{
		RateLimit:  jsii.Number(p.ThrottlingRateLimit),
		BurstLimit: jsii.Number(p.ThrottlingBurstLimit),
	}
	t.WebSocketStage = awsapigatewayv2.NewWebSocketStage(c, jsii.String("WebSocketStage"), &awsapigatewayv2.WebSocketStageProps{
		WebSocketApi:  t.WebSocketAPI,
		StageName:     jsii.String(StageName),
		AutoDeploy:    jsii.Bool(true),
		Throttle:      throttle,
		DomainMapping: wsMapping,
	})
	t.HTTPStage = awsapigatewayv2.NewHttpStage(c, jsii.String("HttpStage"), &awsapigatewayv2.HttpStageProps{
		HttpApi:       t.HTTPAPI,
		StageName:     jsii.String("$default"),
		AutoDeploy:    jsii.Bool(true),
		Throttle:      throttle,
		DomainMapping: httpMapping,
	})

	if t.Domain != nil {
		t.WebSocketURL = jsii.String("wss://" + t.Domain.AgentHost)
		t.PublicURLPattern = jsii.String("https://<subdomain>." + t.Domain.Name + "/")
	} else {
		t.WebSocketURL = t.WebSocketStage.Url()
		t.PublicURLPattern = jsii.String(*t.HTTPEndpoint + "/<subdomain>/")
	}
	return t
}

// environment is what each function needs to know, besides its handler.
func (t *Tunnel) environment(p TunnelProps) functionEnv {
	store := func(extra map[string]*string) map[string]*string {
		env := map[string]*string{
			EnvStore:            jsii.String("dynamodb"),
			EnvConnectionsTable: t.Tables.Connections.TableName(),
			EnvSubdomainsTable:  t.Tables.Subdomains.TableName(),
			EnvResponsesTable:   t.Tables.Responses.TableName(),
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	public := map[string]*string{EnvManagementEndpoint: t.ManagementEndpoint}
	if p.DomainName != "" {
		public[EnvDomain] = jsii.String(p.DomainName)
	} else {
		public[EnvPublicURL] = t.HTTPEndpoint
	}
	forward := store(public)
	forward[EnvResponseDeadline] = jsii.String(p.ResponseDeadline.String())
	return functionEnv{
		connect:    store(nil),
		disconnect: store(nil),
		forward:    forward,
		response:   store(public),
		authorizer: map[string]*string{EnvTokenSecretArn: t.TokenSecret.SecretArn()},
	}
}

// addRoutes wires $connect (behind the token authorizer), $disconnect and
// $default on the WebSocket API and the catch-all $default on the HTTP API.
func (t *Tunnel) addRoutes() {
	f := t.Functions
	integration := awsapigatewayv2integrations.NewWebSocketLambdaIntegration
	t.WebSocketAPI.AddRoute(jsii.String("$connect"), &awsapigatewayv2.WebSocketRouteOptions{
		Integration: integration(jsii.String("Connect"), f.Connect, nil),
		Authorizer: awsapigatewayv2authorizers.NewWebSocketLambdaAuthorizer(jsii.String("TokenAuthorizer"), f.Authorizer,
			&awsapigatewayv2authorizers.WebSocketLambdaAuthorizerProps{
				IdentitySource: jsii.Strings(TokenIdentitySource),
			}),
	})
	t.WebSocketAPI.AddRoute(jsii.String("$disconnect"), &awsapigatewayv2.WebSocketRouteOptions{
		Integration: integration(jsii.String("Disconnect"), f.Disconnect, nil),
	})
	t.WebSocketAPI.AddRoute(jsii.String("$default"), &awsapigatewayv2.WebSocketRouteOptions{
		Integration: integration(jsii.String("Response"), f.Response, nil),
	})

	awsapigatewayv2.NewHttpRoute(t.Construct, jsii.String("HttpDefaultRoute"), &awsapigatewayv2.HttpRouteProps{
		HttpApi:  t.HTTPAPI,
		RouteKey: awsapigatewayv2.HttpRouteKey_DEFAULT(),
		Integration: awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("Forward"), f.Forward,
			&awsapigatewayv2integrations.HttpLambdaIntegrationProps{
				PayloadFormatVersion: awsapigatewayv2.PayloadFormatVersion_VERSION_2_0(),
			}),
	})
}

// tokenSecret imports the secret at arn, or creates one with a generated
// value when arn is empty.
func tokenSecret(scope constructs.Construct, arn string) awssecretsmanager.ISecret {
	if arn != "" {
		return awssecretsmanager.Secret_FromSecretCompleteArn(scope, jsii.String("TokenSecret"), jsii.String(arn))
	}
	return awssecretsmanager.NewSecret(scope, jsii.String("TokenSecret"), &awssecretsmanager.SecretProps{
		Description: jsii.String("lambdatunnel: key that signs agent tokens"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(64),
			ExcludePunctuation: jsii.Bool(true),
		},
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
}
