# Two commands do everything: `make run` serves the API on SQLite, `make test` runs the suite.
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test lint clean

run: $(VENV)/.installed .env  ## Set up and serve the API on http://127.0.0.1:$(PORT)
	$(BIN)/flask db upgrade
	@echo "API on http://127.0.0.1:$(PORT)/api/v1 - Swagger UI on http://127.0.0.1:$(PORT)/swagger"
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.installed  ## Run the whole suite on SQLite and on a throwaway Postgres
	$(BIN)/pytest

lint: $(VENV)/.installed  ## ruff and mypy
	$(BIN)/ruff check app tests migrations typings wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check app tests migrations typings wsgi.py gunicorn.conf.py
	$(BIN)/mypy

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Fresh secrets on first run, so no well-known key ever signs a token.
.env:
	sed -e "s|^SECRET_KEY=.*|SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')|" \
	    -e "s|^JWT_SECRET_KEY=.*|JWT_SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')|" \
	    .env.example > .env
	@echo "Created .env with freshly generated secrets (keep it out of git)."

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
