package tunnel

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestLeastPrivilege checks that each function's role allows exactly the
// actions its handler uses, each on exactly the resources it needs.
func TestLeastPrivilege(t *testing.T) {
	for name, props := range map[string]TunnelProps{
		"defaults": {},
		"domain and imported secret": {
			DomainName: "tunnel.example.com", HostedZoneId: "Z0123456789ABCDEFGHIJ", HostedZoneName: "example.com",
			TokenSecretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
		},
	} {
		t.Run(name, func(t *testing.T) { checkLeastPrivilege(t, synth(t, props)) })
	}
}

func checkLeastPrivilege(t *testing.T, s *synthesized) {
	want := map[string][]string{
		"connect": {
			"dynamodb:PutItem on connections",
		},
		"disconnect": {
			"dynamodb:DeleteItem on connections", "dynamodb:GetItem on connections",
			"dynamodb:UpdateItem on subdomains",
		},
		"response": {
			"dynamodb:GetItem on connections", "dynamodb:UpdateItem on connections",
			"dynamodb:PutItem on subdomains", "dynamodb:UpdateItem on subdomains",
			"dynamodb:PutItem on responses",
			"execute-api:ManageConnections on POST @connections",
		},
		"forward": {
			"dynamodb:DeleteItem on connections", "dynamodb:GetItem on connections",
			"dynamodb:GetItem on subdomains", "dynamodb:UpdateItem on subdomains",
			"dynamodb:Query on responses",
			"execute-api:ManageConnections on POST @connections",
		},
		"authorizer": {
			"secretsmanager:GetSecretValue on token secret",
		},
	}
	got := s.permissions(t)
	for handler, perms := range want {
		perms = append(perms, "logs:CreateLogStream on own log group", "logs:PutLogEvents on own log group")
		slices.Sort(perms)
		if !slices.Equal(got[handler], perms) {
			t.Errorf("%s may:\n  %s\nwant:\n  %s", handler, strings.Join(got[handler], "\n  "), strings.Join(perms, "\n  "))
		}
	}
	if len(got) != len(want) {
		t.Errorf("roles for %d handlers, want %d", len(got), len(want))
	}

	for id, role := range s.ofType("AWS::IAM::Role") {
		if _, ok := role.Properties["ManagedPolicyArns"]; ok {
			t.Errorf("role %s has managed policies (AWSLambdaBasicExecutionRole allows logs on *)", id)
		}
		if _, ok := role.Properties["Policies"]; ok {
			t.Errorf("role %s has inline policies outside the checked AWS::IAM::Policy resources", id)
		}
	}
}

// permissions returns, per TUNNEL_HANDLER, the sorted "action on resource"
// pairs its role's policies allow, resources named by what they are.
func (s *synthesized) permissions(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string]string{
		s.id(s.tunnel.Tables.Connections): "connections",
		s.id(s.tunnel.Tables.Subdomains):  "subdomains",
		s.id(s.tunnel.Tables.Responses):   "responses",
	}
	ws := s.id(s.tunnel.WebSocketAPI)
	secret := s.resolve(t, s.tunnel.TokenSecret.SecretArn())

	type fn struct{ handler, logGroup string }
	byRole := map[string]fn{}
	for _, r := range s.ofType("AWS::Lambda::Function") {
		env := r.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		role := r.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
		logGroup := r.Properties["LoggingConfig"].(map[string]any)["LogGroup"].(map[string]any)["Ref"].(string)
		byRole[role] = fn{env["TUNNEL_HANDLER"].(string), logGroup}
	}

	name := func(f fn, resource any) string {
		b, _ := json.Marshal(resource)
		r := string(b)
		switch {
		case string(b) == secret:
			return "token secret"
		case strings.Contains(r, `"`+f.logGroup+`","Arn"`):
			return "own log group"
		case strings.Contains(r, `"Ref":"`+ws+`"`) && strings.HasSuffix(r, `"/live/POST/@connections/*"]]}`):
			return "POST @connections"
		case strings.Contains(r, `"Ref":"`+ws+`"`) && strings.HasSuffix(r, `"/live/DELETE/@connections/*"]]}`):
			return "DELETE @connections"
		}
		for id, table := range names {
			if r == `{"Fn::GetAtt":["`+id+`","Arn"]}` {
				return table
			}
			if strings.Contains(r, `"`+id+`","Arn"`) && strings.HasSuffix(r, `"/index/subdomain-index"]]}`) && table == "connections" {
				return "subdomain-index"
			}
		}
		return "UNEXPECTED " + r
	}

	out := map[string][]string{}
	for id, p := range s.ofType("AWS::IAM::Policy") {
		for _, roleRef := range p.Properties["Roles"].([]any) {
			f, ok := byRole[roleRef.(map[string]any)["Ref"].(string)]
			if !ok {
				t.Errorf("policy %s is attached to a role no function uses", id)
				continue
			}
			doc := p.Properties["PolicyDocument"].(map[string]any)
			for _, st := range doc["Statement"].([]any) {
				st := st.(map[string]any)
				if st["Effect"] != "Allow" {
					continue
				}
				for _, action := range list(st["Action"]) {
					if a := action.(string); strings.Contains(a, "*") {
						t.Errorf("%s: wildcard action %q", f.handler, a)
					}
					for _, res := range list(st["Resource"]) {
						out[f.handler] = append(out[f.handler], action.(string)+" on "+name(f, res))
					}
				}
			}
		}
	}
	for _, perms := range out {
		slices.Sort(perms)
	}
	return out
}

// list treats a policy's single value as a list of one.
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}
