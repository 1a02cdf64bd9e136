package tunnel

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

var (
	match  = assertions.Match_ObjectLike
	absent = assertions.Match_Absent
)

func TestWithoutDomain(t *testing.T) {
	s := synth(t, TunnelProps{})
	ws, http := s.id(s.tunnel.WebSocketAPI), s.id(s.tunnel.HTTPAPI)

	s.count(t, map[string]int{
		"AWS::DynamoDB::Table":                 3,
		"AWS::Lambda::Function":                5,
		"AWS::Logs::LogGroup":                  5,
		"AWS::IAM::Role":                       5,
		"AWS::ApiGatewayV2::Api":               2,
		"AWS::ApiGatewayV2::Stage":             2,
		"AWS::ApiGatewayV2::Route":             4,
		"AWS::ApiGatewayV2::Authorizer":        1,
		"AWS::SecretsManager::Secret":          1,
		"AWS::ApiGatewayV2::DomainName":        0,
		"AWS::ApiGatewayV2::ApiMapping":        0,
		"AWS::Route53::RecordSet":              0,
		"AWS::CertificateManager::Certificate": 0,
	})

	t.Run("apis and stages", func(t *testing.T) {
		s.has(t, "AWS::ApiGatewayV2::Api", map[string]any{"ProtocolType": "WEBSOCKET"})
		s.has(t, "AWS::ApiGatewayV2::Api", map[string]any{"ProtocolType": "HTTP"})
		throttle := map[string]any{"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}
		s.has(t, "AWS::ApiGatewayV2::Stage", map[string]any{
			"ApiId": ref(ws), "StageName": "live", "AutoDeploy": true, "DefaultRouteSettings": match(&throttle),
		})
		s.has(t, "AWS::ApiGatewayV2::Stage", map[string]any{
			"ApiId": ref(http), "StageName": "$default", "AutoDeploy": true, "DefaultRouteSettings": match(&throttle),
		})
	})

	t.Run("routes and authorizer", func(t *testing.T) {
		authorizer := s.ofType("AWS::ApiGatewayV2::Authorizer")
		for id := range authorizer {
			s.has(t, "AWS::ApiGatewayV2::Authorizer", map[string]any{
				"ApiId": ref(ws), "AuthorizerType": "REQUEST",
				"IdentitySource": []any{"route.request.querystring.token"},
			})
			s.has(t, "AWS::ApiGatewayV2::Route", map[string]any{
				"ApiId": ref(ws), "RouteKey": "$connect", "AuthorizationType": "CUSTOM", "AuthorizerId": ref(id),
			})
		}
		for _, key := range []string{"$disconnect", "$default"} {
			s.has(t, "AWS::ApiGatewayV2::Route", map[string]any{
				"ApiId": ref(ws), "RouteKey": key, "AuthorizerId": absent(),
			})
		}
		s.has(t, "AWS::ApiGatewayV2::Route", map[string]any{
			"ApiId": ref(http), "RouteKey": "$default",
		})
		s.has(t, "AWS::ApiGatewayV2::Integration", map[string]any{
			"ApiId": ref(http), "IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0",
			"IntegrationUri": getAtt(s.id(s.tunnel.Functions.Forward), "Arn"),
		})
	})

	t.Run("tables", func(t *testing.T) {
		ttl := map[string]any{"AttributeName": "ttl", "Enabled": true}
		s.has(t, "AWS::DynamoDB::Table", map[string]any{
			"BillingMode":             "PAY_PER_REQUEST",
			"KeySchema":               []any{map[string]any{"AttributeName": "connectionId", "KeyType": "HASH"}},
			"TimeToLiveSpecification": ttl,
			"GlobalSecondaryIndexes": []any{map[string]any{
				"IndexName":  "subdomain-index",
				"KeySchema":  []any{map[string]any{"AttributeName": "subdomain", "KeyType": "HASH"}},
				"Projection": map[string]any{"ProjectionType": "ALL"},
			}},
		})
		s.has(t, "AWS::DynamoDB::Table", map[string]any{
			"BillingMode":             "PAY_PER_REQUEST",
			"KeySchema":               []any{map[string]any{"AttributeName": "subdomain", "KeyType": "HASH"}},
			"AttributeDefinitions":    []any{map[string]any{"AttributeName": "subdomain", "AttributeType": "S"}},
			"TimeToLiveSpecification": ttl,
			"GlobalSecondaryIndexes":  absent(),
		})
		s.has(t, "AWS::DynamoDB::Table", map[string]any{
			"BillingMode": "PAY_PER_REQUEST",
			"KeySchema": []any{
				map[string]any{"AttributeName": "requestId", "KeyType": "HASH"},
				map[string]any{"AttributeName": "seq", "KeyType": "RANGE"},
			},
			"AttributeDefinitions": []any{
				map[string]any{"AttributeName": "requestId", "AttributeType": "S"},
				map[string]any{"AttributeName": "seq", "AttributeType": "N"},
			},
			"TimeToLiveSpecification": ttl,
		})
	})

	t.Run("functions", func(t *testing.T) {
		tables := map[string]any{
			"TUNNEL_STORE":             "dynamodb",
			"TUNNEL_CONNECTIONS_TABLE": ref(s.id(s.tunnel.Tables.Connections)),
			"TUNNEL_SUBDOMAINS_TABLE":  ref(s.id(s.tunnel.Tables.Subdomains)),
			"TUNNEL_RESPONSES_TABLE":   ref(s.id(s.tunnel.Tables.Responses)),
		}
		publicURL := getAtt(http, "ApiEndpoint")
		f := s.tunnel.Functions
		tests := []struct {
			fn      awslambda.Function
			handler string
			timeout int
			env     map[string]any
		}{
			{f.Connect, "connect", 10, tables},
			{f.Disconnect, "disconnect", 10, tables},
			{f.Forward, "forward", 29, merge(tables, map[string]any{
				"TUNNEL_MANAGEMENT_ENDPOINT": assertions.Match_AnyValue(),
				"TUNNEL_PUBLIC_URL":          publicURL,
				"TUNNEL_RESPONSE_DEADLINE":   "28s",
				"TUNNEL_DOMAIN":              absent(),
			})},
			{f.Response, "response", 10, merge(tables, map[string]any{
				"TUNNEL_MANAGEMENT_ENDPOINT": assertions.Match_AnyValue(),
				"TUNNEL_PUBLIC_URL":          publicURL,
				"TUNNEL_DOMAIN":              absent(),
			})},
			{f.Authorizer, "authorizer", 10, map[string]any{
				"TUNNEL_TOKEN_SECRET_ARN":  ref(s.id(s.tunnel.TokenSecret)),
				"TUNNEL_STORE":             absent(),
				"TUNNEL_CONNECTIONS_TABLE": absent(),
			}},
		}
		for _, tt := range tests {
			t.Run(tt.handler, func(t *testing.T) {
				env := merge(tt.env, map[string]any{"TUNNEL_HANDLER": tt.handler})
				s.has(t, "AWS::Lambda::Function", map[string]any{
					"Runtime": "provided.al2023", "Architectures": []any{"arm64"}, "Handler": "bootstrap",
					"MemorySize": 256, "Timeout": tt.timeout,
					"Environment": map[string]any{"Variables": match(&env)},
				})
				props := s.resources[s.id(tt.fn)].Properties
				logGroup, _ := props["LoggingConfig"].(map[string]any)["LogGroup"].(map[string]any)["Ref"].(string)
				if got := s.resources[logGroup]; got.Type != "AWS::Logs::LogGroup" || got.Properties["RetentionInDays"] != 7.0 {
					t.Errorf("log group %q = %+v, want a LogGroup with 7 days retention", logGroup, got)
				}
			})
		}
	})

	t.Run("urls", func(t *testing.T) {
		for name, tt := range map[string]struct {
			give *string
			want []string
		}{
			"websocket":  {s.tunnel.WebSocketURL, []string{`"wss://"`, ws, `"/live"`}},
			"management": {s.tunnel.ManagementEndpoint, []string{`"https://"`, ws, `".execute-api."`, `"/live"`}},
			"public":     {s.tunnel.PublicURLPattern, []string{http, `"ApiEndpoint"`, `"/\u003csubdomain\u003e/"`}},
		} {
			got := s.resolve(t, tt.give)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s URL %s does not contain %s", name, got, w)
				}
			}
		}
	})
}

func merge(maps ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestCustomProps(t *testing.T) {
	s := synth(t, TunnelProps{
		MemorySize:       512,
		Architecture:     awslambda.Architecture_X86_64(),
		LogRetention:     awslogs.RetentionDays_ONE_MONTH,
		ResponseDeadline: 20 * time.Second,
		TokenSecretArn:   "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tunnel-key-AbCdEf",
	})
	s.count(t, map[string]int{"AWS::SecretsManager::Secret": 0})
	for id, fn := range s.ofType("AWS::Lambda::Function") {
		if fn.Properties["MemorySize"] != 512.0 || fn.Properties["Architectures"].([]any)[0] != "x86_64" {
			t.Errorf("%s: memory %v, architectures %v; want 512, x86_64", id, fn.Properties["MemorySize"], fn.Properties["Architectures"])
		}
	}
	for id, lg := range s.ofType("AWS::Logs::LogGroup") {
		if lg.Properties["RetentionInDays"] != 30.0 {
			t.Errorf("%s: retention %v, want 30", id, lg.Properties["RetentionInDays"])
		}
	}
	s.has(t, "AWS::Lambda::Function", map[string]any{
		"Timeout": 29,
		"Environment": map[string]any{"Variables": match(&map[string]any{
			"TUNNEL_HANDLER": "forward", "TUNNEL_RESPONSE_DEADLINE": "20s",
		})},
	})
	s.has(t, "AWS::Lambda::Function", map[string]any{
		"Environment": map[string]any{"Variables": map[string]any{
			"TUNNEL_HANDLER":          "authorizer",
			"TUNNEL_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tunnel-key-AbCdEf",
		}},
	})
}
