package tunnel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// fakeAsset is a directory with a placeholder bootstrap; the real binary
// comes from make build-lambda and is not needed to synthesize.
func fakeAsset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// synthesized is a tunnel in a stack of its own, and its template.
type synthesized struct {
	stack    awscdk.Stack
	tunnel   *Tunnel
	template assertions.Template
	// resources is the template's Resources section as plain JSON values.
	resources map[string]resource
}

type resource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
}

// synth builds a tunnel with props; an empty AssetPath gets a fake asset.
func synth(t *testing.T, props TunnelProps) *synthesized {
	t.Helper()
	if props.AssetPath == "" {
		props.AssetPath = fakeAsset(t)
	}
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Test"), nil)
	tun := NewTunnel(stack, jsii.String("Tunnel"), &props)
	template := assertions.Template_FromStack(stack, nil)

	raw, err := json.Marshal(template.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]resource `json:"Resources"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return &synthesized{stack: stack, tunnel: tun, template: template, resources: doc.Resources}
}

// id is the logical id of c's CloudFormation resource.
func (s *synthesized) id(c constructs.IConstruct) string {
	return *s.stack.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))
}

func ref(id string) map[string]any { return map[string]any{"Ref": id} }

func getAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

// ofType returns the resources of one type by logical id.
func (s *synthesized) ofType(typ string) map[string]resource {
	out := map[string]resource{}
	for id, r := range s.resources {
		if r.Type == typ {
			out[id] = r
		}
	}
	return out
}

// resolve renders a token string as its CloudFormation JSON.
func (s *synthesized) resolve(t *testing.T, v *string) string {
	t.Helper()
	b, err := json.Marshal(s.stack.Resolve(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// has asserts that a resource of type typ has props (matched object-like
// at the top level); a mismatch fails t instead of panicking.
func (s *synthesized) has(t *testing.T, typ string, props map[string]any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", typ, r)
		}
	}()
	s.template.HasResourceProperties(jsii.String(typ), props)
}

// count asserts how many resources of each type the template has.
func (s *synthesized) count(t *testing.T, want map[string]int) {
	t.Helper()
	for typ, n := range want {
		if got := len(s.ofType(typ)); got != n {
			t.Errorf("%d resources of type %s, want %d", got, typ, n)
		}
	}
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
