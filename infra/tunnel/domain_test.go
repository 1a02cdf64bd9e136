package tunnel

import (
	"testing"
)

const (
	testZoneID = "Z0123456789ABCDEFGHIJ"
	testCert   = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
)

func TestWithHostedZone(t *testing.T) {
	s := synth(t, TunnelProps{DomainName: "tunnel.example.com", HostedZoneId: testZoneID, HostedZoneName: "example.com."})
	d := s.tunnel.Domain
	ws, http := s.id(s.tunnel.WebSocketAPI), s.id(s.tunnel.HTTPAPI)
	wildcard, agent := s.id(d.Wildcard), s.id(d.Agent)
	cert := s.id(d.Certificate)

	s.count(t, map[string]int{
		"AWS::CertificateManager::Certificate": 1,
		"AWS::ApiGatewayV2::DomainName":        2,
		"AWS::ApiGatewayV2::ApiMapping":        2,
		"AWS::Route53::RecordSet":              2,
		"AWS::Lambda::Function":                5,
	})
	s.has(t, "AWS::CertificateManager::Certificate", map[string]any{
		"DomainName":       "*.tunnel.example.com",
		"ValidationMethod": "DNS",
		"DomainValidationOptions": []any{map[string]any{
			"DomainName": "*.tunnel.example.com", "HostedZoneId": testZoneID,
		}},
	})
	for id, host := range map[string]string{wildcard: "*.tunnel.example.com", agent: "agent.tunnel.example.com"} {
		s.has(t, "AWS::ApiGatewayV2::DomainName", map[string]any{
			"DomainName": host,
			"DomainNameConfigurations": []any{map[string]any{
				"CertificateArn": ref(cert), "EndpointType": "REGIONAL",
			}},
		})
		s.has(t, "AWS::Route53::RecordSet", map[string]any{
			"Name": host + ".", "Type": "A", "HostedZoneId": testZoneID,
			"AliasTarget": map[string]any{
				"DNSName":      getAtt(id, "RegionalDomainName"),
				"HostedZoneId": getAtt(id, "RegionalHostedZoneId"),
			},
		})
	}
	s.has(t, "AWS::ApiGatewayV2::ApiMapping", map[string]any{"ApiId": ref(http), "DomainName": ref(wildcard), "Stage": "$default"})
	s.has(t, "AWS::ApiGatewayV2::ApiMapping", map[string]any{"ApiId": ref(ws), "DomainName": ref(agent), "Stage": "live"})

	for _, handler := range []string{"forward", "response"} {
		env := map[string]any{
			"TUNNEL_HANDLER": handler, "TUNNEL_DOMAIN": "tunnel.example.com", "TUNNEL_PUBLIC_URL": absent(),
		}
		s.has(t, "AWS::Lambda::Function", map[string]any{"Environment": map[string]any{"Variables": match(&env)}})
	}
	if got := *s.tunnel.WebSocketURL; got != "wss://agent.tunnel.example.com" {
		t.Errorf("WebSocketURL = %q", got)
	}
	if got := *s.tunnel.PublicURLPattern; got != "https://<subdomain>.tunnel.example.com/" {
		t.Errorf("PublicURLPattern = %q", got)
	}
	// The management endpoint stays on execute-api: @connections is not
	// served through the custom domain's root mapping.
	if got := s.resolve(t, s.tunnel.ManagementEndpoint); !contains(got, ws, `".execute-api."`, `"/live"`) {
		t.Errorf("ManagementEndpoint = %s", got)
	}
}

func TestWithCertificateOnly(t *testing.T) {
	s := synth(t, TunnelProps{DomainName: "tunnel.example.com", CertificateArn: testCert})
	s.count(t, map[string]int{
		"AWS::CertificateManager::Certificate": 0,
		"AWS::Route53::RecordSet":              0,
		"AWS::ApiGatewayV2::DomainName":        2,
		"AWS::ApiGatewayV2::ApiMapping":        2,
	})
	for _, host := range []string{"*.tunnel.example.com", "agent.tunnel.example.com"} {
		s.has(t, "AWS::ApiGatewayV2::DomainName", map[string]any{
			"DomainName":               host,
			"DomainNameConfigurations": []any{map[string]any{"CertificateArn": testCert, "EndpointType": "REGIONAL"}},
		})
	}
	if s.tunnel.Domain.Zone != nil {
		t.Error("Domain.Zone is set without a hosted zone")
	}
}
