# kovn — build, lab, tests. `make lab` and `make test` are the two commands
# a fresh Debian 12 machine (as root) needs; both install what they use.

GO        ?= go
BIN       := _output/bin
KOVN_LAB  := $(BIN)/kovn-lab
export KOVN_CACHE     ?= /var/cache/kovn
export KOVN_LAB_STATE ?= /var/lib/kovn-lab

.PHONY: all build deps image lab lab-down test test-unit test-image test-e2e test-underlay test-faults conformance generate bench fuzz clean

all: build

# Every kovn binary, static, into _output/bin.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./go-controller/cmd/...

# Debian packages (one list, in go-controller/pkg/lab/deps.go) and the
# Kubernetes binaries (cached in $(KOVN_CACHE), built once per version).
deps: build
	$(KOVN_LAB) deps
	$(KOVN_LAB) build-k8s

# The image of dist/images/Containerfile, without Docker: an OCI tarball in
# $(KOVN_CACHE)/images/kovn.tar (dist/images/README.md). As root; the
# Debian root filesystem below it is built once per package list.
image: build
	$(KOVN_LAB) image

# A 3-node lab from nothing, its status, and a short demo (contrib/lab-demo.sh).
lab: deps
	$(KOVN_LAB) up --skip-deps
	$(KOVN_LAB) status
	./contrib/lab-demo.sh

lab-down: build
	$(KOVN_LAB) down

# Unit and integration tests (real ovsdb-server and ovn-northd), then the
# end-to-end suite in a lab.
test: deps test-unit test-image test-e2e fuzz

test-unit:
	KOVN_REQUIRE_OVN=1 $(GO) test -count=1 ./go-controller/...

# Builds the kovn image without Docker (cached in $(KOVN_CACHE) after the
# first run) and checks it: OVS, OVN and kovn's binaries run from its
# layers, and containerd imports it (dist/images/README.md).
test-image: build
	KOVN_IMAGE_BUILD=1 $(GO) test -count=1 -run 'TestBuildForReal$$' ./go-controller/pkg/lab/kovnimage

# Uses the running lab when there is one (and leaves it up); otherwise
# brings one up, runs the suite and takes it down, checking nothing is left.
test-e2e: build
	./test/e2e/run.sh

# Replaces the running lab with an underlay one (VLAN 100) and runs the
# underlay test (docs/underlay.md); CI runs it from test/e2e/run.sh.
test-underlay: build
	$(KOVN_LAB) down
	$(KOVN_LAB) up --skip-deps --mode underlay --underlay-vlan 100
	KOVN_E2E=1 $(GO) test -count=1 -timeout 10m -v -run 'TestUnderlay$$' ./test/e2e/...

# The fault suite (docs/reliability.md) against the running lab (make lab
# first); writes the fault table to _output/faults.md. make test runs it at
# the end of test/e2e/run.sh, on the clustered lab.
test-faults: build
	KOVN_E2E=1 KOVN_FAULTS=1 $(GO) test -count=1 -timeout 20m -v -run 'TestFaults$$' ./test/e2e/

# Kubernetes' own sig-network conformance specs and NetworkPolicy suite
# (docs/conformance.md), built at the lab's Kubernetes version, on a fresh
# lab with CoreDNS and the upstream images. JUnit, logs and summary.json in
# _output/conformance; exits non-zero if a spec fails. The lab is left up
# for a post-mortem (make lab-down).
conformance: deps
	$(KOVN_LAB) down
	$(KOVN_LAB) up --skip-deps --dns --e2e-images
	$(KOVN_LAB) conformance --report-dir _output/conformance

# Every fuzz target for FUZZTIME each (docs/fuzzing.md); non-zero on a
# failing input. The seed corpora also run as plain tests in test-unit.
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./test/fuzz/run.sh

# The OVSDB models, and docs/flags.md from every binary's flags (each
# binary's TestFlagReference rewrites its section; -p 1 because they all
# write that one file).
generate:
	$(GO) generate ./go-controller/pkg/ovsdb/...
	KOVN_UPDATE_DOCS=1 $(GO) test -count=1 -p 1 -run '^TestFlagReference$$' ./go-controller/cmd/...

# Control-plane benchmarks against a lab (docs/benchmarks.md); reports in
# _output/bench/results.json.
bench: build
	./test/bench/run.sh

clean:
	rm -rf _output
