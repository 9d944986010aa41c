# foreshape — make help lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/foreshape
PKGS  := ./...

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-14s %s\n", $$1, $$2}'

# The revision `foreshape version` prints: git describe of the checkout
# (-dirty with uncommitted changes); none outside a git checkout.
REVISION ?= $(shell test -e .git && git describe --always --dirty --abbrev=12 2>/dev/null)
LDFLAGS  := $(if $(REVISION),-X github.com/foreshape/foreshape/command.revision=$(REVISION))

build: ## Build bin/foreshape, stamped with the git revision (foreshape version)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

test: ## Run every test with the race detector
	$(GO) test -race -timeout 20m $(PKGS)

test-v3: ## The forecasting tests (golden forecasts to the bit) built with GOAMD64=v3, whose compiler may fuse a*b+c; skipped on a CPU without x86-64-v3
	@if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && grep -qw bmi1 /proc/cpuinfo && \
		grep -qw bmi2 /proc/cpuinfo && grep -qw movbe /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then \
		GOAMD64=v3 $(GO) test -count=1 ./agent/forecast/...; \
	else echo "test-v3: skipped: this CPU lacks x86-64-v3 instructions (AVX2, FMA, BMI1, BMI2, MOVBE, F16C), or /proc/cpuinfo is missing"; fi

lint: ## gofmt, go vet, go mod tidy leaves no diff, policy examples, example.hcl and deploy/ formatted
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@cp go.mod /tmp/foreshape-go.mod.bak; cp go.sum /tmp/foreshape-go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changed go.mod/go.sum:"; git --no-pager diff -- go.mod go.sum; \
	  cp /tmp/foreshape-go.mod.bak go.mod; cp /tmp/foreshape-go.sum.bak go.sum; exit 1; fi
	$(GO) run . policy fmt -check policies/examples example.hcl deploy

bench: ## Run the benchmarks (no tests)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

dev: build ## Build, then run a dev agent against the embedded simulated cluster (Ctrl-C to stop)
	$(BIN) agent -dev

DATA ?= ../shared/data
EVALSETS = $(DATA)/nab,$(DATA)/bitbrains_rnd,$(DATA)/datacenter_aggregates
eval: ## Backtest every model on $(DATA) (NAB, Bitbrains, datacenter aggregates) at 1 h and 1 day, per folder: the tuning part, then the check part
	@for part in tuning check; do for h in 12 288; do \
	  $(GO) run . forecast eval -data $(EVALSETS) -horizon $$h -by-folder -part $$part -quiet || exit 1; echo; done; done

train: ## Train the learned global forecaster on the tuning part of $(DATA) and write the weights foreshape embeds (deterministic; minutes on 2 cores)
	$(GO) run . forecast train -data $(DATA) -out agent/forecast/global/weights -workers 2

PYTHON ?= /usr/bin/python3
REFPART ?= check
# REFCACHE: a directory keeping each series' reference figures, so that an
# eval-reference stopped part-way resumes with the series it had not finished.
REFCACHE ?=
eval-reference: ## The classical reference (statsmodels ETS, Theta, STL+ETS, ARIMA) beside foreshape on the $(REFPART) part of $(DATA), at 1 h and 1 day; installs python3-statsmodels when missing
	@$(PYTHON) -c 'import statsmodels' 2>/dev/null || { echo "installing python3-statsmodels"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y python3-statsmodels; else sudo apt-get install -y python3-statsmodels; fi; }
	@out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; for h in 12 288; do \
	  $(GO) run . forecast eval -data $(EVALSETS) -horizon $$h -by-folder -part $(REFPART) -format json -quiet \
	    -export $$out/series-$$h.jsonl > $$out/foreshape-$$h.json || exit 1; \
	  $(PYTHON) agent/forecast/eval/reference/reference.py --series $$out/series-$$h.jsonl \
	    --foreshape $$out/foreshape-$$h.json --label "$(REFPART) part" \
	    $(if $(REFCACHE),--cache $(REFCACHE)) || exit 1; echo; done

# NAB_RESULTS: the results/ directory of a checkout of NAB's repository at the
# commit $(DATA)/SOURCES.md names (its labels/ and config/ beside it), for the
# published detectors' outputs. Without it only foreshape's detectors are scored.
# When the checkout has its data/ too, NAB's files outside the split are scored
# last (-part unseen).
NAB_RESULTS ?=
NAB_DATA = $(if $(NAB_RESULTS),$(wildcard $(NAB_RESULTS)/../data))
# The detectors scored on the held-out and unseen NAB files (a comma in $(if) would split it).
NAB_DETECTORS = artime,shape,context,shape+context,artime+shape
NABFLAGS = -data $(DATA)/nab -labels $(DATA)/nab/labels/combined_windows.json -max-p 0.001
eval-anomalies: ## Score the anomaly detectors on $(DATA)/nab with NAB's profiles: the tuning part, then the held-out part beside NAB's published detectors (NAB_RESULTS=dir), then NAB's other files when the checkout has them
	$(GO) run . forecast anomalies $(NABFLAGS) -part tuning -detector all $(if $(NAB_RESULTS),-published $(NAB_RESULTS))
	$(GO) run . forecast anomalies $(NABFLAGS) -part held-out -detector $(NAB_DETECTORS) $(if $(NAB_RESULTS),-published $(NAB_RESULTS) -reproduce)
	$(if $(NAB_DATA),$(GO) run . forecast anomalies -data $(NAB_DATA) -labels $(NAB_RESULTS)/../labels/combined_windows.json -max-p 0.001 -part unseen -detector $(NAB_DETECTORS) -published $(NAB_RESULTS))

screenshots: ## Follow the dev scenario in headless Chromium and refresh the dashboard screenshots in testdata/ui/
	$(GO) test ./agent/ui -run TestBrowserDashboard -count=1 -v -timeout 15m -ui.screenshots

PROOF_SCENARIOS ?= maintenance-peak surge-wave crossings bursty large
proof: build ## Compare foreshape with reactive controllers on the proof scenarios: reports/<scenario>/report.{md,html}, reports/summary.txt
	@mkdir -p reports; : > reports/summary.txt
	@set -o pipefail; for s in $(PROOF_SCENARIOS); do \
	  echo "==> $$s"; \
	  $(BIN) sim run -log-level error -scenario $$s -report reports/$$s | tee -a reports/summary.txt || exit 1; \
	  echo >> reports/summary.txt; \
	done
	@echo "Reports: reports/<scenario>/report.html (open offline) and report.md; tables: reports/summary.txt"

proof-holdout: build ## The held-out proof scenarios (proof/holdout/, other trace days from $(DATA)): reports/holdout/
	@mkdir -p reports/holdout; : > reports/holdout/summary.txt
	@set -o pipefail; for f in proof/holdout/*.hcl; do s=$$(basename $$f .hcl); \
	  echo "==> $$s"; \
	  $(BIN) sim run -log-level error -data $(DATA) -scenario $$f -report reports/holdout/$$s | tee -a reports/holdout/summary.txt || exit 1; \
	  echo >> reports/holdout/summary.txt; \
	done

e2e-cluster: ## Kill the leader of a 3-server cluster mid-migration 20 times (e2e, a few minutes)
	FORESHAPE_E2E_KILLS=20 $(GO) test -timeout 30m -run TestClusterKillLeaderMidMigration -v ./e2e

SOAK_RUNS ?= 3
soak-cluster: ## Crash soak: the maintenance on 3 servers with the leader killed with SIGKILL again and again, SOAK_RUNS runs (about 10 minutes each); SOAK_SEED repeats one
	FORESHAPE_SOAK_RUNS=$(SOAK_RUNS) FORESHAPE_SOAK_SEED=$(SOAK_SEED) $(GO) test -timeout 3h -run TestClusterCrashSoak -v ./e2e

golden: ## Regenerate the golden files of the CLI tests
	$(GO) test ./command -run Golden -update

.PHONY: help build test test-v3 lint bench dev eval eval-anomalies proof proof-holdout golden screenshots e2e-cluster soak-cluster eval-reference train
