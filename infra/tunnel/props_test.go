package tunnel

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	asset := fakeAsset(t)
	zone := TunnelProps{AssetPath: asset, DomainName: "tunnel.example.com", HostedZoneId: "Z1", HostedZoneName: "example.com"}
	with := func(change func(*TunnelProps)) TunnelProps {
		p := zone
		change(&p)
		return p
	}
	tests := []struct {
		name string
		give TunnelProps
		want error
	}{
		{"no domain", TunnelProps{AssetPath: asset}, nil},
		{"domain with zone", zone, nil},
		{"zone name with trailing dot", with(func(p *TunnelProps) { p.HostedZoneName = "example.com." }), nil},
		{"domain is the zone apex", with(func(p *TunnelProps) { p.DomainName = "example.com" }), nil},
		{"domain with certificate only", TunnelProps{AssetPath: asset, DomainName: "t.example.com", CertificateArn: "arn:aws:acm:us-east-1:1:certificate/x"}, nil},
		{"deadline 29.9s", with(func(p *TunnelProps) { p.ResponseDeadline = 29900 * time.Millisecond }), nil},
		{"deadline 30s", with(func(p *TunnelProps) { p.ResponseDeadline = 30 * time.Second }), ErrResponseDeadline},
		{"negative deadline", with(func(p *TunnelProps) { p.ResponseDeadline = -time.Second }), ErrResponseDeadline},
		{"memory too small", with(func(p *TunnelProps) { p.MemorySize = 64 }), ErrLimits},
		{"negative rate", with(func(p *TunnelProps) { p.ThrottlingRateLimit = -1 }), ErrLimits},
		{"zone id without name", with(func(p *TunnelProps) { p.HostedZoneName = "" }), ErrDomain},
		{"domain outside zone", with(func(p *TunnelProps) { p.DomainName = "tunnel.example.org" }), ErrDomain},
		{"wildcard domain", with(func(p *TunnelProps) { p.DomainName = "*.example.com" }), ErrDomain},
		{"domain without zone or certificate", TunnelProps{AssetPath: asset, DomainName: "t.example.com"}, ErrDomain},
		{"zone without domain", with(func(p *TunnelProps) { p.DomainName = "" }), ErrDomain},
		{"missing bootstrap", with(func(p *TunnelProps) { p.AssetPath = t.TempDir() }), ErrAsset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.want == nil && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWithDefaultsNil(t *testing.T) {
	var p *TunnelProps
	got := p.withDefaults()
	if got.MemorySize != 256 || *got.Architecture.Name() != "arm64" || got.LogRetention != DefaultLogRetention ||
		got.ResponseDeadline != 28*time.Second || got.ThrottlingRateLimit != 100 || got.ThrottlingBurstLimit != 200 {
		t.Errorf("withDefaults(nil) = %+v", got)
	}
	if filepath.Base(got.AssetPath) != "lambda" || filepath.Base(filepath.Dir(got.AssetPath)) != "build" {
		t.Errorf("AssetPath = %q, want <root>/build/lambda", got.AssetPath)
	}
}

func TestNewTunnelPanicsOnInvalidProps(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, ErrResponseDeadline) {
			t.Fatalf("recovered %v, want ErrResponseDeadline", err)
		}
	}()
	synth(t, TunnelProps{ResponseDeadline: time.Minute})
}
