# Two commands do everything: `make run` serves the API on SQLite, `make test` runs the suite.
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
export VENV  # scripts/provision installs Playwright's Chromium with its Python where no Debian one exists

.PHONY: run test test-fast fuzz lint audit bench clients clean

run: $(VENV)/.installed .env  ## Set up and serve the API on http://127.0.0.1:$(PORT)
	$(BIN)/flask db upgrade
	@echo "API on http://127.0.0.1:$(PORT)/api/v1 - Swagger UI on http://127.0.0.1:$(PORT)/swagger"
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# Both install the system programs they run and lack (scripts/provision: apt-get as root or with
# passwordless sudo, Homebrew on macOS), or stop before pytest naming the one command to run.
test: $(VENV)/.installed  ## Run the whole suite on SQLite and on a throwaway Postgres; fails under 90% branch coverage
	scripts/provision all -- $(BIN)/pytest --cov --cov-report=term-missing:skip-covered

test-fast: $(VENV)/.installed  ## The in-process tests only (no nginx, gunicorn, redis or browser); needs Postgres' binaries
	scripts/provision fast -- $(BIN)/pytest -m "not system"

fuzz: $(VENV)/.installed  ## Schemathesis with many more examples than the suite runs (FUZZ_EXAMPLES, FUZZ_SEED)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} TEST_DATABASES=sqlite $(BIN)/pytest tests/system/test_fuzz.py -p no:cacheprovider

lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed  ## ruff, mypy, bandit, checkov, and the CI workflow, Dependabot and pre-commit configs
	$(BIN)/ruff check app tests migrations typings bench deploy examples clients wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check app tests migrations typings bench deploy examples clients wsgi.py gunicorn.conf.py
	$(BIN)/mypy
	$(BIN)/mypy examples/client.py clients/journey.py clients/python/api_client
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml
	$(BIN)/bandit --quiet --recursive app --severity-level high  # fails on any high-severity finding
	scripts/checkov  # the Dockerfile, compose and the rendered Kubernetes manifests

# checkov in a venv of its own, from requirements-checkov.txt (requirements-checkov.in says why).
.PHONY: checkov
checkov: $(VENV)/.installed $(CHECKOV_VENV)/.installed  ## checkov over the Dockerfile, compose and the rendered Kubernetes manifests
	scripts/checkov

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV) || { rm -rf $(CHECKOV_VENV); $(NO_VENV); }
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-checkov.txt
	touch $@

# Needs the PyPI advisory service, which the offline CI here cannot reach; --strict fails rather than
# pass when a pin could not be checked. The GitHub workflow runs it.
audit: $(VENV)/.installed  ## Known vulnerabilities in the pinned requirements (pip-audit)
	$(BIN)/pip-audit --strict --requirement requirements.txt --progress-spinner off

# A benchmark, not a test (never part of `make test`): app vs a bare Flask floor on Postgres + Redis,
# under gunicorn and wrk, a few minutes. BENCH_QUICK=1 for a short run; see bench/run.py.
bench: $(VENV)/.installed  ## Measure throughput, latency, CPU and memory per request against a floor
	@missing=""; command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql-15"; \
	if [ -n "$$missing" ]; then echo "installing$$missing (Debian)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	$(BIN)/python bench/run.py

# The real compose stack, built and run through podman (no Docker engine needed); a few minutes,
# not part of `make test`; CI runs it. As root, after: scripts/provision compose
.PHONY: compose-smoke
compose-smoke:  ## docker-compose up --build for real, the API flow through nginx, then down -v
	bash scripts/compose-smoke

# The OpenAPI document in clients/openapi.json and the clients generated from it, all committed: the Python
# package api_client in clients/python (openapi-python-client) and clients/typescript/src/schema.d.ts
# (openapi-typescript; npm ci first if need be). tests/system/test_clients.py fails when they are out of date.
clients: $(VENV)/.installed  ## Regenerate clients/: the OpenAPI document, the Python and the TypeScript client
	scripts/generate-clients

# Re-pin both requirement files from the short lists in requirements.in and requirements-dev.in, with the
# sha256 of every file each pin may install (pip then refuses anything else: --require-hashes below).
# Today's pins stay unless an .in file rules them out; `make lock UPGRADE=1` takes the newest allowed.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --no-strip-extras --no-emit-options \
    --generate-hashes --allow-unsafe --annotation-style line $(if $(UPGRADE),--upgrade)
.PHONY: lock
lock: $(VENV)/.installed  ## Regenerate requirements.txt and requirements-dev.txt (pip-tools)
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -o requirements-checkov.txt requirements-checkov.in

# Debian and Ubuntu ship the venv module apart from python3: `make test` installs it (scripts/provision),
# `make run` only says what to install, as it needs nothing but Python.
NO_VENV = { echo "python3 -m venv failed: install python3-venv (Debian, Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
test test-fast: NO_VENV = scripts/provision venv && python3 -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV) || { rm -rf $(VENV); $(NO_VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	@# The generated client (clients/python) importable as api_client, as an editable install would make it.
	echo "$(CURDIR)/clients/python" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/api_client.pth"
	touch $@

# Fresh secrets on first run, so no well-known key ever signs a token.
.env:
	sed -e "s|^SECRET_KEY=.*|SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')|" \
	    -e "s|^JWT_SECRET_KEY=.*|JWT_SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')|" \
	    -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')|" \
	    .env.example > .env
	@echo "Created .env with freshly generated secrets (keep it out of git)."

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) instance .pytest_cache .mypy_cache .ruff_cache
