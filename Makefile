# learnstream: `make run` starts everything on this machine, `make test` proves it.
# Every target installs what it needs first (virtualenv, Kafka jars).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
KAFKA := deploy/kafka/kafka.sh

.PHONY: help system-deps bench-deps venv run test test-unit bench lint translations kafka-up kafka-down migrate clean deploy-check helm image image-smoke cluster-up cluster-down test-cluster bench-cluster

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

system-deps: ## install missing system packages (Java, Maven, PostgreSQL, Chromium) with apt
	bash deploy/system-deps.sh

bench-deps: ## the same, and what the benchmarks need too (wrk)
	bash deploy/system-deps.sh --bench

venv: $(STAMP) ## create .venv and install learnstream with its dev tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

kafka-up: ## start the local single-node Kafka (KRaft) on 127.0.0.1:$${KAFKA_PORT:-9092}
	bash $(KAFKA) start

kafka-down: ## stop the local Kafka
	bash $(KAFKA) stop

migrate: venv ## create the databases and apply every migration
	$(BIN)/learnstream migrate

# make run uses KAFKA_BOOTSTRAP_SERVERS if set, else starts the local broker.
run: system-deps venv ## start Kafka, every service (gunicorn) and worker; prints where each listens
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ]; then bash $(KAFKA) start; fi
	$(BIN)/learnstream run

test: system-deps venv ## the whole suite: unit, then integration and e2e against a real broker and database
	$(BIN)/pytest

test-unit: venv ## domain tests only (no broker, no database server)
	$(BIN)/pytest tests/unit

bench: bench-deps venv ## benchmarks (not part of make test); figures go to stdout and var/bench/
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ]; then bash $(KAFKA) start; fi
	$(BIN)/python -m bench.enrollment
	$(BIN)/python -m bench.assessment
	$(BIN)/python -m bench.certification
	$(BIN)/python -m bench.progress
	$(BIN)/python -m bench.lrs
	$(BIN)/python -m bench.lrs_bulk
	$(BIN)/python -m bench.forwarding
	$(BIN)/python -m bench.cmi5

deploy-check: venv ## the deployment files (image, compose, Helm chart) checked with pinned helm, kubernetes-validate, check-jsonschema
	$(BIN)/pytest tests/deploy -m deploy

helm: ## build the pinned helm (v3.22.0) into var/tools/ if missing; prints its path
	bash deploy/tools/helm.sh

image: ## build localhost/learnstream with podman from a Debian base made by mmdebstrap (no registry)
	bash deploy/container/build-image.sh

image-smoke: venv ## run the image (migrate, enrollment web + relay) against the broker and DATABASE_URL's PostgreSQL
	bash deploy/container/smoke.sh

translations: venv ## update shared/translations' catalogs from the sources and compile them (the .mo files are committed)
	$(BIN)/python -m tools.translations

lint: venv ## ruff
	$(BIN)/ruff check shared services tests bench tools

clean: ## remove local state (databases, broker data, metrics); keeps downloaded jars
	-bash $(KAFKA) stop
	rm -rf var/db var/kafka/data* var/prometheus var/bench

cluster-up: venv ## deploy/cluster: 3 Kafka brokers, PostgreSQL, 2 app hosts, a load host in network namespaces (root)
	bash deploy/system-deps.sh --cluster
	bash deploy/cluster/cluster.sh up

cluster-down: ## take the cluster down: its processes (by PID), namespaces, bridge and var/cluster
	bash deploy/cluster/cluster.sh down

test-cluster: venv ## the fault tests under load against the cluster (root; brings it up and down unless it is up); ~15 min
	bash deploy/system-deps.sh --cluster
	$(BIN)/pytest tests/cluster -m cluster -s

bench-cluster: venv ## the cluster benchmark: statements/s and commit -> read model p99 on 1 and 2 app hosts, failovers
	bash deploy/system-deps.sh --cluster
	$(BIN)/python -m bench.cluster
