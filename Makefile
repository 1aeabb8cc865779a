# Hydrostream: the README's commands. Every target bootstraps its own virtualenv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= local
# pytest-xdist workers of `make test`: most of the suite's time is Spark and Kafka processes, which two
# workers overlap (878 s -> 712 s on 2 cores); TEST_WORKERS=0 runs everything in one process. Each test file
# goes whole to one worker (--dist loadfile), in its own order: a module's fixtures (a Kafka cluster, a
# MiniYARNCluster and its jobs) are made once, and a test that must come last in its file does.
# (xdist's loadgroup cannot group under pytest 9: xdist 3.8 renames a test by its private _nodeid, which
# pytest 9 no longer reads.)
TEST_WORKERS ?= 2
# Local file state by default; teams set PULUMI_BACKEND_URL=gs://<bucket> (see README).
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state

.PHONY: test lint venv plan up wait resubmit replace-broker destroy promote verify bundle tools clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==0.13.8
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

lint: venv
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Offline: the real program under Pulumi mocks. WRITE=1 rewrites tests/inventories/$(STACK).yaml.
plan: venv
	$(BIN)/python -m infra.tools.plan $(STACK) $(if $(WRITE),--write)

# The working tree's jobs release digest; ARGS=--help, ARGS="--commit-of <digest>" (the commit it was built from).
bundle: venv
	$(BIN)/python -m infra.release.bundle $(ARGS)

# Deploy a stack (default: local on Docker). Needs the Pulumi CLI (and Docker for local; gcloud for GCP).
# GCP: PULUMI_BACKEND_URL=gs://..., SECRETS_PROVIDER=gcpkms://... (first up) or an explicit passphrase;
# then waits up to JOBS_TIMEOUT (default 15m) for both Dataproc jobs to run and the consumer to commit.
up: venv tools
	@mkdir -p .pulumi-state
	$(BIN)/python -m infra.tools.plan $(STACK) > /dev/null
	JOBS_TIMEOUT=$(JOBS_TIMEOUT) SECRETS_PROVIDER=$(SECRETS_PROVIDER) ./scripts/deploy.sh up $(STACK)

# GCP: check the deployed jobs again (the same wait `make up` ends with).
wait: venv tools
	JOBS_TIMEOUT=$(JOBS_TIMEOUT) ./scripts/deploy.sh wait $(STACK)

# GCP: replace one Dataproc job (JOB=consumer|producer) that died; its unchanged inputs keep `up` from doing it.
resubmit: venv tools
	@test "$(JOB)" = consumer -o "$(JOB)" = producer || { echo "usage: make resubmit STACK=dev JOB=consumer|producer" >&2; exit 2; }
	JOBS_TIMEOUT=$(JOBS_TIMEOUT) ./scripts/deploy.sh resubmit $(STACK) $(JOB)

# GCP, three brokers: bring broker BROKER back as a KRaft voter after its VM, disk or zone was lost, or its
# disk was restored from a snapshot (docs/operations.md, "Replace a broker"). Needs gcloud, not Pulumi.
replace-broker: venv
	@test -n "$(BROKER)" -a "$(STACK)" != local || { echo "usage: make replace-broker STACK=staging|prod BROKER=1|2|3" >&2; exit 2; }
	STACK=$(STACK) ./scripts/replace-broker.sh ./scripts/kafka-broker-gcp.sh $(BROKER)

# Local keeps its data volumes; PURGE=1 removes them too.
destroy: venv tools
	PURGE=$(PURGE) ./scripts/deploy.sh destroy $(STACK)

tools:
	@command -v pulumi >/dev/null 2>&1 || { \
	  echo "The Pulumi CLI is not installed. Install it with:"; \
	  echo "  curl -fsSL https://get.pulumi.com | sh    (then open a new shell)"; \
	  echo "or see https://www.pulumi.com/docs/install/"; exit 1; }
	@if [ "$(STACK)" = local ]; then docker info >/dev/null 2>&1 || { \
	  echo "Docker is not running or not installed: the local stack needs a Docker engine."; \
	  echo "  Debian/Ubuntu: sudo apt-get install docker.io && sudo systemctl start docker"; \
	  echo "  macOS/Windows: install Docker Desktop (https://docs.docker.com/get-docker/)"; exit 1; }; fi

# testinfra checks of a deployed stack's hosts (GCP over IAP, local via docker://); plain outputs only.
verify: venv tools
	@mkdir -p .verify/$(STACK)
	./scripts/deploy.sh outputs $(STACK) > .verify/$(STACK)/outputs.json
	$(BIN)/python tests/hosts/inventory.py --stack $(STACK) --outputs .verify/$(STACK)/outputs.json \
	  --out .verify/$(STACK) $(if $(SSH_USER),--ssh-user $(SSH_USER))
	HYDRO_VERIFY_INVENTORY=$(CURDIR)/.verify/$(STACK)/inventory.json $(BIN)/pytest -p no:cacheprovider tests/hosts

# Pin in TO's stack file the release FROM runs and verified (RELEASE: only a check). Needs the Pulumi CLI.
promote: venv
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make promote FROM=dev TO=staging [RELEASE=<digest>]" >&2; \
	  $(BIN)/python -m infra.release.promote --help | sed 1,2d >&2; exit 2; }
	$(BIN)/python -m infra.release.promote --repo "$(CURDIR)" --from "$(FROM)" --to "$(TO)" $(if $(RELEASE),--release "$(RELEASE)")

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
