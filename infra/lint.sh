#!/usr/bin/env bash
# lint.sh: synthesize the CDK apps the way `cdk deploy` would, in every
# shape they can take, and run cfn-lint on every template.
#
#   infra/lint.sh            (from anywhere; needs node/npx, go, cfn-lint)
#
# Variants: the LambdaTunnel app without a domain, with a domain and a
# Route 53 hosted zone, with a domain and an existing certificate, and the
# examples/consumer app. Output goes to cdk.out/lint/<variant>/ at the
# repository root. No AWS credentials or Docker are needed.
#
# The Lambda asset: build/lambda/bootstrap is used when it exists (make
# build-lambda); otherwise a placeholder bootstrap in a temporary directory
# stands in, since synth only zips it and cfn-lint never looks inside.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "lint.sh: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed (needed by the CDK CLI and jsii); install Node.js 20 or later"
command -v npx >/dev/null || die "npx is not installed (it comes with npm); install npm"
command -v go >/dev/null || die "go is not installed"
command -v cfn-lint >/dev/null || die "cfn-lint is not installed; pip install cfn-lint"

if [[ ! -x node_modules/.bin/cdk ]]; then
	echo "lint.sh: installing the pinned CDK CLI (npm ci)"
	npm ci --no-audit --no-fund >/dev/null
fi
# aws-cdk ships Go templates; a go.mod makes node_modules its own module so
# that `go vet ./...` and `go test ./...` at the root pass over it.
[[ -f node_modules/go.mod ]] || echo 'module nodemodules' >node_modules/go.mod

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
export AWS_EC2_METADATA_DISABLED=true # no instance-metadata probing for an account

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
asset="$root/build/lambda"
if [[ ! -f "$asset/bootstrap" ]]; then
	echo "lint.sh: $asset/bootstrap not built; using a placeholder"
	asset="$tmp/lambda"
	mkdir -p "$asset"
	printf 'placeholder\n' >"$asset/bootstrap"
fi

out="$root/cdk.out/lint"
rm -rf "$out"

# synth VARIANT [cdk synth args...]
synth() {
	local variant="$1"
	shift
	echo "lint.sh: cdk synth $variant"
	npx --no-install cdk synth --quiet --no-notices --no-version-reporting \
		--output "$out/$variant" -c assetPath="$asset" "$@" >"$tmp/$variant.log" 2>&1 ||
		{ cat "$tmp/$variant.log" >&2; die "cdk synth $variant failed"; }
}

synth no-domain
synth hosted-zone -c domainName=tunnel.example.com \
	-c hostedZoneId=Z0123456789ABCDEFGHIJ -c hostedZoneName=example.com
synth certificate -c domainName=tunnel.example.com \
	-c certificateArn=arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555
synth consumer --app "go -C infra build -o ../build/cdk/consumer ./examples/consumer && build/cdk/consumer"

templates=("$out"/*/*.template.json)
[[ -e "${templates[0]}" ]] || die "no templates synthesized under $out"
for t in "${templates[@]}"; do
	python3 - "$t" <<'PY' || true
import collections, json, sys
t = json.load(open(sys.argv[1]))
n = collections.Counter(r["Type"] for r in t["Resources"].values())
print("lint.sh: %s: %d resources (%s), %d outputs" % (
    sys.argv[1].split("cdk.out/")[-1], sum(n.values()),
    ", ".join("%s %d" % (k.split("::", 1)[1], v) for k, v in sorted(n.items())),
    len(t.get("Outputs", {}))))
PY
done

# W3005 (DependsOn already implied by a GetAtt): the CDK makes each function
# depend on its role and the role's policy on purpose, so the function is
# never created before its permissions exist. Everything else must pass.
echo "lint.sh: cfn-lint $(cfn-lint --version | awk '{print $2}') on ${#templates[@]} templates"
cfn-lint --ignore-checks W3005 -- "${templates[@]}" || die "cfn-lint found problems (above)"
echo "lint.sh: ok"
