# lambdatunnel — see README.md. `make help` lists the targets.

GO       ?= go
PORT     ?= 8080
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
TOOLS    := $(CURDIR)/build/tools

CDK      := npx --no-install cdk
CDK_ENV  := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 AWS_EC2_METADATA_DISABLED=true
# make deploy DOMAIN=tunnel.example.com ZONE_ID=Z0123... ZONE_NAME=example.com  (or CERT_ARN=arn:aws:acm:...)
CDK_CONTEXT := $(if $(DOMAIN),-c domainName=$(DOMAIN)) $(if $(ZONE_ID),-c hostedZoneId=$(ZONE_ID)) \
               $(if $(ZONE_NAME),-c hostedZoneName=$(ZONE_NAME)) $(if $(CERT_ARN),-c certificateArn=$(CERT_ARN)) \
               $(if $(TOKEN_SECRET_ARN),-c tokenSecretArn=$(TOKEN_SECRET_ARN))

.PHONY: help build build-lambda run test test-go test-infra lint tools bench fuzz synth deploy destroy cdk-bootstrap clean

help:
	@echo "make run PORT=8080   run the service locally (serve) and an agent for localhost:PORT"
	@echo "make test            lint and every test (Go, DynamoDB at moto, CDK synth + cfn-lint)"
	@echo "make bench           throughput and latency through the tunnel, as ratios to direct"
	@echo "make build-lambda    the Lambda bootstrap for provided.al2023 arm64"
	@echo "make deploy          deploy to AWS (see README, Deploy to AWS)"

build:
	$(GO) build ./...
	cd infra && $(GO) build ./...

build-lambda:
	@mkdir -p build/lambda
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath \
		-ldflags "-s -w -X main.version=$(VERSION)" -o build/lambda/bootstrap ./lambda
	@echo "build/lambda/bootstrap: $$(du -h build/lambda/bootstrap | cut -f1) ($$(stat -c %s build/lambda/bootstrap) bytes), linux/arm64"

# Runs the local service and an agent for localhost:$(PORT); Ctrl-C stops both.
run:
	@$(GO) build -o build/bin/lambda ./lambda && $(GO) build -o build/bin/agent ./agent
	@build/bin/lambda serve --log-level warn & pid=$$!; trap 'kill $$pid 2>/dev/null' EXIT INT TERM; \
		sleep 0.5; build/bin/agent --port $(PORT)

test: lint test-go test-infra

test-go: tools
	AWS_LAMBDA_RIE=$(TOOLS)/aws-lambda-rie $(GO) test -race -count=1 -timeout 20m ./...

test-infra: node_modules/.bin/cdk
	cd infra && GOWORK=off $(CDK_ENV) $(GO) test -count=1 ./...
	bash infra/lint.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd infra && $(GO) vet ./...
	GOWORK=off $(GO) build ./...
	cd infra && GOWORK=off $(GO) build ./...

tools: $(TOOLS)/aws-lambda-rie

$(TOOLS)/aws-lambda-rie:
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s -benchmem ./agent/bench/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./pkg/protocol/
	$(GO) test -run '^$$' -fuzz FuzzReassembly -fuzztime 30s ./pkg/protocol/

node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund
	echo 'module nodemodules' > node_modules/go.mod  # keep aws-cdk's Go templates out of ./...
	touch $@

synth: build-lambda node_modules/.bin/cdk
	$(CDK_ENV) $(CDK) synth --no-notices $(CDK_CONTEXT)

deploy: build-lambda node_modules/.bin/cdk
	$(CDK_ENV) $(CDK) deploy --no-notices $(CDK_CONTEXT) --outputs-file cdk.out/outputs.json $(CDK_FLAGS)

destroy: build-lambda node_modules/.bin/cdk
	$(CDK_ENV) $(CDK) destroy --no-notices --force $(CDK_CONTEXT)

cdk-bootstrap: node_modules/.bin/cdk   # once per account and region
	$(CDK_ENV) $(CDK) bootstrap --no-notices

clean:
	rm -rf build cdk.out
