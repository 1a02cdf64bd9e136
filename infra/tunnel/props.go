package tunnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

// Defaults applied by NewTunnel to zero-valued TunnelProps fields.
const (
	DefaultMemorySize           = 256
	DefaultLogRetention         = awslogs.RetentionDays_ONE_WEEK
	DefaultThrottlingRateLimit  = 100
	DefaultThrottlingBurstLimit = 200
	DefaultResponseDeadline     = 28 * time.Second

	// MaxResponseDeadline is API Gateway's hard HTTP API integration
	// timeout; forward must answer (504) before it.
	MaxResponseDeadline = 30 * time.Second
)

// Errors returned by TunnelProps.Validate, matched with errors.Is.
var (
	ErrResponseDeadline = errors.New("response deadline out of range")
	ErrDomain           = errors.New("invalid domain configuration")
	ErrLimits           = errors.New("invalid memory or throttling limit")
	ErrAsset            = errors.New("lambda asset missing")
)

// TunnelProps configures a Tunnel. Every field is optional: nil props (or
// the zero value) deploy with the default API Gateway endpoints, path-style
// public URLs and a generated token secret.
type TunnelProps struct {
	// DomainName is the base domain of public URLs: "tunnel.example.com"
	// gives https://<sub>.tunnel.example.com/ and the agent endpoint
	// wss://agent.tunnel.example.com. Empty: no custom domain; public URLs
	// are path style, https://<api-id>.execute-api.<region>.amazonaws.com/<sub>/.
	DomainName string

	// HostedZoneId and HostedZoneName name an existing Route 53 public
	// hosted zone that contains DomainName (both or neither). With them the
	// alias records are created and, unless CertificateArn is set, a
	// DNS-validated ACM certificate for *.DomainName. The zone is imported
	// from these attributes, never looked up, so synth needs no credentials.
	HostedZoneId   string
	HostedZoneName string

	// CertificateArn is an existing ACM certificate in the stack's region
	// that covers *.DomainName (which also covers agent.DomainName). It is
	// required with DomainName when no hosted zone is given.
	CertificateArn string

	// MemorySize of every function in MB. Default 256.
	MemorySize int

	// Architecture of every function; it must match the bootstrap binary.
	// Default arm64.
	Architecture awslambda.Architecture

	// LogRetention of the functions' log groups. Default one week.
	LogRetention awslogs.RetentionDays

	// ThrottlingRateLimit (requests per second) and ThrottlingBurstLimit
	// apply to the stages of both APIs. Defaults 100 and 200.
	ThrottlingRateLimit  float64
	ThrottlingBurstLimit float64

	// ResponseDeadline is how long forward waits for the agent's response
	// before answering 504. It must be below 30s, API Gateway's hard limit.
	// Default 28s.
	ResponseDeadline time.Duration

	// TokenSecretArn is the complete ARN of an existing Secrets Manager
	// secret whose value signs agent tokens. Empty: a secret with a
	// generated 64-character value is created.
	TokenSecretArn string

	// AssetPath is the directory holding the prebuilt Lambda binary
	// `bootstrap` (make build-lambda). Default: build/lambda under the
	// nearest directory, from the working directory up, that has cdk.json.
	AssetPath string
}

// withDefaults returns a copy of p (nil allowed) with defaults filled in.
func (p *TunnelProps) withDefaults() TunnelProps {
	var out TunnelProps
	if p != nil {
		out = *p
	}
	if out.MemorySize == 0 {
		out.MemorySize = DefaultMemorySize
	}
	if out.Architecture == nil {
		out.Architecture = awslambda.Architecture_ARM_64()
	}
	if out.LogRetention == "" {
		out.LogRetention = DefaultLogRetention
	}
	if out.ThrottlingRateLimit == 0 {
		out.ThrottlingRateLimit = DefaultThrottlingRateLimit
	}
	if out.ThrottlingBurstLimit == 0 {
		out.ThrottlingBurstLimit = DefaultThrottlingBurstLimit
	}
	if out.ResponseDeadline == 0 {
		out.ResponseDeadline = DefaultResponseDeadline
	}
	if out.AssetPath == "" {
		out.AssetPath = DefaultAssetPath()
	}
	out.DomainName = strings.TrimSuffix(strings.ToLower(out.DomainName), ".")
	out.HostedZoneName = strings.TrimSuffix(strings.ToLower(out.HostedZoneName), ".")
	return out
}

// Validate reports every problem with p (nil allowed) after defaults are
// applied, joined; each wraps one of the Err* values. NewTunnel panics
// with the same error, so an app calls Validate first to exit cleanly.
func (p *TunnelProps) Validate() error {
	v := p.withDefaults()
	var errs []error
	if v.ResponseDeadline <= 0 || v.ResponseDeadline >= MaxResponseDeadline {
		errs = append(errs, fmt.Errorf("%w: %s, want more than 0 and less than %s",
			ErrResponseDeadline, v.ResponseDeadline, MaxResponseDeadline))
	}
	if v.MemorySize < 128 || v.MemorySize > 10240 {
		errs = append(errs, fmt.Errorf("%w: memory size %d MB, want 128 to 10240", ErrLimits, v.MemorySize))
	}
	if v.ThrottlingRateLimit < 0 || v.ThrottlingBurstLimit < 0 {
		errs = append(errs, fmt.Errorf("%w: throttling limits must not be negative", ErrLimits))
	}
	errs = append(errs, validateDomain(v)...)
	if _, err := os.Stat(filepath.Join(v.AssetPath, "bootstrap")); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w (run make build-lambda, or set AssetPath)", ErrAsset, err))
	}
	return errors.Join(errs...)
}

func validateDomain(v TunnelProps) []error {
	var errs []error
	hasZone := v.HostedZoneId != "" || v.HostedZoneName != ""
	if hasZone && (v.HostedZoneId == "" || v.HostedZoneName == "") {
		errs = append(errs, fmt.Errorf("%w: give both hostedZoneId and hostedZoneName, or neither", ErrDomain))
	}
	if v.DomainName == "" {
		if hasZone || v.CertificateArn != "" {
			errs = append(errs, fmt.Errorf("%w: a hosted zone or certificate needs a domain name", ErrDomain))
		}
		return errs
	}
	if strings.ContainsAny(v.DomainName, "*/: ") || !strings.Contains(v.DomainName, ".") {
		errs = append(errs, fmt.Errorf("%w: domain name %q is not a DNS name like tunnel.example.com", ErrDomain, v.DomainName))
	}
	if !hasZone && v.CertificateArn == "" {
		errs = append(errs, fmt.Errorf("%w: domain %q needs a hosted zone (to validate a new certificate) or a certificate ARN", ErrDomain, v.DomainName))
	}
	if v.HostedZoneName != "" && v.DomainName != v.HostedZoneName && !strings.HasSuffix(v.DomainName, "."+v.HostedZoneName) {
		errs = append(errs, fmt.Errorf("%w: domain %q is not inside hosted zone %q", ErrDomain, v.DomainName, v.HostedZoneName))
	}
	return errs
}

// DefaultAssetPath is build/lambda under the nearest directory, from the
// working directory up, that holds cdk.json (the repository root when the
// CDK CLI runs the app), or under the working directory if none does.
func DefaultAssetPath() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("build", "lambda")
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "cdk.json")); err == nil {
			return filepath.Join(dir, "build", "lambda")
		}
		if filepath.Dir(dir) == dir {
			return filepath.Join(wd, "build", "lambda")
		}
	}
}
