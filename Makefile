# forgetflow — every target runs inside the project venv at .venv/
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps run test test-fast tune bench bench-full bench-quick bench-depth bench-cli bench-gpu bench-gate bench-report bench-folder bench-scale bench-ceiling lint format clean repro

setup: $(STAMP) system-deps  ## .venv (pinned deps + the project) and the suite's Debian packages

system-deps:  ## dataset-fashion-mnist + chromium: apt-get as root, else the exact command
	scripts/system-deps install

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24"
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

run: setup  ## the end-to-end demo on the embedded default workspace, then its audit report
	@# production stack: export FORGETFLOW_DB_URL / MLFLOW_TRACKING_URI (postgresql+psycopg://…),
	@# PREFECT_API_DATABASE_CONNECTION_URL (postgresql+asyncpg://…) or PREFECT_API_URL, and the
	@# AWS_* / MLFLOW_S3_ENDPOINT_URL / FORGETFLOW_S3_URL variables: the demo uses them as set.
	@# your own images: make run DATA=folder:/path/to/images (or DATA=s3://bucket/prefix)
	$(BIN)/forgetflow demo $(if $(DATA),--source "$(DATA)")
	$(BIN)/forgetflow report champion --out "$${FORGETFLOW_HOME:-.forgetflow}/report-champion.html"

test: setup  ## the whole suite (code, data, model tiers; slow tests included)
	scripts/system-deps check
	$(BIN)/python -m pytest -q --durations=25

test-fast: setup
	scripts/system-deps check
	$(BIN)/python -m pytest -q -m "not slow"

tune: setup  ## dm's defaults by coordinate search on tuning seeds 100..102 only (~15 min); bench-results/tuning/
	FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.tune

bench: setup  ## the gate and yardstick report dm is judged by: CNN 10k + ResNet-8 3k, 5 seeds, gate_pass, depth_index, F at N=16 (~50 min on 2 cores); rewrites BENCHMARKS.md, embedding make bench-scale's latest section
	BENCH_PROFILE=gate FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.report

bench-full: setup  ## every method, time-matched and head-only rows, more classes, full-split rows, 3 seeds (over 90 min since each row gained the gate and the depth attacks); rewrites BENCHMARKS.md
	BENCH_PROFILE=full FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.report

bench-depth: setup  ## relearn-attack budgets on tuning seeds 100-103 only (~25 min, 1 thread); bench-results/depth/
	FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.depth

bench-quick: setup  ## every column, fewer rows, 3 seeds (<= ~20 min on 2 cores); rewrites BENCHMARKS.md
	BENCH_PROFILE=quick FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.report

bench-gpu: setup  ## ResNet-18 + ResNet-8 on CUDA (AMP, channels_last); appends to BENCHMARKS.md
	$(BIN)/python -m forgetflow.bench.gpu

bench-ceiling: setup  ## how high F can go for any per-row map of the original's confidence (random 10%, CNN 10k, N = 16, tuning seeds 100-101, ~15 min); bench-results/tuning/epsilon_ceiling.json
	FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.ceiling

bench-gate: setup  ## the gate's depth thresholds, calibrated on tuning seeds 100-102 only; bench-results/gate/
	FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.gate_calibration

bench-report: bench  ## the same run as make bench (its earlier name)

bench-scale: setup  ## seconds vs training-set size (5k -> full 54k) for Retrain, dm, scrub; CNN + ResNet-8 (~35 min); BENCHMARKS.md section + bench-scale.png
	FORGETFLOW_THREADS=1 $(BIN)/python -m forgetflow.bench.scale

bench-folder: setup  ## data prepare on a generated folder of 100,000 small images: seconds and peak memory; BENCHMARKS.md section
	$(BIN)/python -m forgetflow.bench.folder_scale

bench-cli: setup  ## wall seconds of the ledger verbs (fresh processes); BENCHMARKS.md section
	$(BIN)/python -m forgetflow.bench.cli_latency

repro: setup  ## dvc repro of dvc.yaml: prepare → train → evaluate of the base model
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf .forgetflow bench-cache .pytest_cache
