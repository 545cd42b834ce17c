# fieldapp: `make run` serves the app with demo data; `make test` runs every test.
# Both install what they need first, from this repository's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
INSTANCE := instance

.PHONY: run test bench install assets chromium clean

install: $(VENV)/.installed assets

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Third-party front-end code is never committed: it is copied from the pinned npm packages.
assets: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js

$(INSTANCE)/secret_key:
	mkdir -p $(INSTANCE)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

# The audit log's HMAC key: kept in a file of its own, never in the database.
$(INSTANCE)/audit_key:
	mkdir -p $(INSTANCE)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

KEYS = FIELDAPP_SECRET_KEY=$$(cat $(INSTANCE)/secret_key) FIELDAPP_AUDIT_KEY=$$(cat $(INSTANCE)/audit_key)

run: install $(INSTANCE)/secret_key $(INSTANCE)/audit_key
	$(KEYS) $(BIN)/fieldapp init
	@echo "Serving on http://$(HOST):$(PORT)/"
	$(KEYS) $(BIN)/fieldapp run --host $(HOST) --port $(PORT)

chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Chromium is missing: run 'sudo apt-get install chromium' (the browser tests drive /usr/bin/chromium)." >&2; exit 1; fi

test: install chromium
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks, never run by the tests or CI: see docs/performance.md.
bench: install
	$(BIN)/python bench/pdf_bench.py

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
