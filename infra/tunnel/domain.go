package tunnel

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53targets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// AgentHostLabel is the host under the domain where agents connect:
// agent.<domain>. API Gateway cannot map one custom domain to both APIs,
// so the WebSocket API gets this name and the HTTP API the wildcard; the
// explicit name wins over the wildcard, so no tunnel can be "agent".
const AgentHostLabel = "agent"

// Domain is the custom-domain part of a Tunnel.
type Domain struct {
	// Name is the base domain, e.g. tunnel.example.com.
	Name string
	// AgentHost is agent.<Name>.
	AgentHost string
	// Certificate covers *.<Name>, and so AgentHost too; it is either
	// imported from CertificateArn or created with DNS validation.
	Certificate awscertificatemanager.ICertificate
	// Wildcard (*.<Name>) is mapped to the HTTP API, Agent (AgentHost)
	// to the WebSocket API.
	Wildcard awsapigatewayv2.DomainName
	Agent    awsapigatewayv2.DomainName
	// Zone is the imported hosted zone, nil when none was given; then
	// the DNS records must be created by hand (CNAME each name to its
	// RegionalDomainName).
	Zone awsroute53.IHostedZone
}

// newDomain returns nil when p has no DomainName.
func newDomain(scope constructs.Construct, p TunnelProps) *Domain {
	if p.DomainName == "" {
		return nil
	}
	d := &Domain{Name: p.DomainName, AgentHost: AgentHostLabel + "." + p.DomainName}
	if p.HostedZoneId != "" {
		d.Zone = awsroute53.HostedZone_FromHostedZoneAttributes(scope, jsii.String("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: jsii.String(p.HostedZoneId),
			ZoneName:     jsii.String(p.HostedZoneName),
		})
	}
	if p.CertificateArn != "" {
		d.Certificate = awscertificatemanager.Certificate_FromCertificateArn(scope, jsii.String("Certificate"), jsii.String(p.CertificateArn))
	} else {
		d.Certificate = awscertificatemanager.NewCertificate(scope, jsii.String("Certificate"), &awscertificatemanager.CertificateProps{
			DomainName: jsii.String("*." + p.DomainName),
			Validation: awscertificatemanager.CertificateValidation_FromDns(d.Zone),
		})
	}
	d.Wildcard = d.newName(scope, "WildcardDomain", "*."+p.DomainName)
	d.Agent = d.newName(scope, "AgentDomain", d.AgentHost)
	return d
}

// newName makes a regional API Gateway domain name and, with a hosted
// zone, its alias A record.
func (d *Domain) newName(scope constructs.Construct, id, host string) awsapigatewayv2.DomainName {
	name := awsapigatewayv2.NewDomainName(scope, jsii.String(id), &awsapigatewayv2.DomainNameProps{
		DomainName:  jsii.String(host),
		Certificate: d.Certificate,
	})
	if d.Zone != nil {
		awsroute53.NewARecord(scope, jsii.String(id+"Record"), &awsroute53.ARecordProps{
			Zone:       d.Zone,
			RecordName: jsii.String(host),
			Target: awsroute53.RecordTarget_FromAlias(awsroute53targets.NewApiGatewayv2DomainProperties(
				name.RegionalDomainName(), name.RegionalHostedZoneId())),
		})
	}
	return name
}

// mappings returns the stage domain mappings for the HTTP and the
// WebSocket API; both nil without a domain.
func (d *Domain) mappings() (http, ws *awsapigatewayv2.DomainMappingOptions) {
	if d == nil {
		return nil, nil
	}
	return &awsapigatewayv2.DomainMappingOptions{DomainName: d.Wildcard},
		&awsapigatewayv2.DomainMappingOptions{DomainName: d.Agent}
}
