package stack

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

func fakeAsset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// outputs synthesizes the stack an app with context gives, and returns
// its template's Outputs section.
func outputs(t *testing.T, context map[string]any) map[string]any {
	t.Helper()
	context[ContextAssetPath] = fakeAsset(t)
	app := awscdk.NewApp(&awscdk.AppProps{Context: &context})
	props := PropsFromContext(app.Node(), func(string) string { return "" })
	stack := NewLambdaTunnel(app, "LambdaTunnel", props)
	out := *assertions.Template_FromStack(stack, nil).ToJSON()
	return out["Outputs"].(map[string]any)
}

func TestOutputs(t *testing.T) {
	tests := []struct {
		name      string
		give      map[string]any
		server    any
		pattern   any
		dnsTarget bool
	}{
		{
			name: "no domain",
			give: map[string]any{},
		},
		{
			name: "hosted zone",
			give: map[string]any{
				ContextDomainName: "tunnel.example.com", ContextHostedZoneID: "Z0123456789ABCDEFGHIJ", ContextHostedZoneName: "example.com",
			},
			server:  "wss://agent.tunnel.example.com",
			pattern: "https://<subdomain>.tunnel.example.com/",
		},
		{
			name: "certificate, DNS by hand",
			give: map[string]any{
				ContextDomainName: "tunnel.example.com", ContextCertificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/abc",
			},
			server:    "wss://agent.tunnel.example.com",
			pattern:   "https://<subdomain>.tunnel.example.com/",
			dnsTarget: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := outputs(t, tt.give)
			value := func(key string) any {
				o, ok := out[key].(map[string]any)
				if !ok {
					return nil
				}
				return o["Value"]
			}
			for _, key := range []string{OutputServerURL, OutputPublicURLPattern, OutputTokenSecretArn, OutputTokenCommand} {
				if value(key) == nil {
					t.Errorf("no output %s", key)
				}
			}
			if tt.server != nil && value(OutputServerURL) != tt.server {
				t.Errorf("%s = %v, want %v", OutputServerURL, value(OutputServerURL), tt.server)
			}
			if tt.pattern != nil && value(OutputPublicURLPattern) != tt.pattern {
				t.Errorf("%s = %v, want %v", OutputPublicURLPattern, value(OutputPublicURLPattern), tt.pattern)
			}
			for _, key := range []string{OutputWildcardDomainTarget, OutputAgentDomainTarget} {
				if got := value(key) != nil; got != tt.dnsTarget {
					t.Errorf("output %s present = %v, want %v", key, got, tt.dnsTarget)
				}
			}
		})
	}
}

func TestPropsFromContext(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		ContextDomainName: "t.example.com", ContextHostedZoneID: "Z1", ContextHostedZoneName: "example.com",
		ContextCertificateArn: "arn:cert", ContextTokenSecretArn: "arn:secret", ContextAssetPath: "/asset",
	}})
	env := map[string]string{"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"}
	p := PropsFromContext(app.Node(), func(k string) string { return env[k] })
	tp := p.Tunnel
	if tp.DomainName != "t.example.com" || tp.HostedZoneId != "Z1" || tp.HostedZoneName != "example.com" ||
		tp.CertificateArn != "arn:cert" || tp.TokenSecretArn != "arn:secret" || tp.AssetPath != "/asset" {
		t.Errorf("tunnel props = %+v", tp)
	}
	if p.Env == nil || *p.Env.Account != "123456789012" || *p.Env.Region != "eu-west-1" {
		t.Errorf("env = %+v", p.Env)
	}

	empty := PropsFromContext(awscdk.NewApp(nil).Node(), func(string) string { return "" })
	if empty.Env != nil || empty.Tunnel.DomainName != "" {
		t.Errorf("without context or env: %+v", empty)
	}
}
