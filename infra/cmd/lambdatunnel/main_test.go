package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The jsii runtime starts with the process's environment, so the app is
// run as the CDK CLI runs it: in a fresh process (this test binary again)
// with CDK_OUTDIR and CDK_CONTEXT_JSON set.
func TestMain(m *testing.M) {
	if os.Getenv("LAMBDATUNNEL_TEST_RUN_APP") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runApp runs the app with context and returns the output directory.
func runApp(t *testing.T, context map[string]string) (string, error) {
	t.Helper()
	out := t.TempDir()
	raw, err := json.Marshal(context)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"LAMBDATUNNEL_TEST_RUN_APP=1",
		"CDK_OUTDIR="+out,
		"CDK_CONTEXT_JSON="+string(raw),
		"CDK_DEFAULT_REGION=eu-west-1",
	)
	cmd.Stderr = os.Stderr
	return out, cmd.Run()
}

func fakeAsset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestApp(t *testing.T) {
	out, err := runApp(t, map[string]string{"assetPath": fakeAsset(t)})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "LambdaTunnel.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var template struct {
		Resources map[string]json.RawMessage
		Outputs   map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &template); err != nil {
		t.Fatal(err)
	}
	if len(template.Resources) == 0 || template.Outputs["ServerURL"] == nil {
		t.Errorf("template has %d resources and outputs %v", len(template.Resources), template.Outputs)
	}
}

func TestAppRejectsInvalidContext(t *testing.T) {
	out, err := runApp(t, map[string]string{"assetPath": fakeAsset(t), "domainName": "tunnel.example.com"})
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("app with a domain but no zone or certificate: %v, want exit status 1", err)
	}
	if _, err := os.Stat(filepath.Join(out, "LambdaTunnel.template.json")); err == nil {
		t.Error("template written despite invalid context")
	}
}
