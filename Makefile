# fieldapp: `make run` serves the app with demo data; `make test` runs every test.
# Both install what they need first, from this repository's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
INSTANCE := instance

.PHONY: run test bench install assets system-packages bench-packages clean

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
	$(BIN)/python -m fieldapp.pwa.icons static/icons

$(INSTANCE)/secret_key:
	mkdir -p $(INSTANCE)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

# The audit log's HMAC key: kept in a file of its own, never in the database.
$(INSTANCE)/audit_key:
	mkdir -p $(INSTANCE)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

KEYS = FIELDAPP_SECRET_KEY=$$(cat $(INSTANCE)/secret_key) FIELDAPP_AUDIT_KEY=$$(cat $(INSTANCE)/audit_key)

# `make run TLS=1 HOST=0.0.0.0` serves HTTPS with a self-signed certificate, so that the PWA can be
# tried on a real phone: browsers allow service workers only on HTTPS pages or on localhost.
# TLS_NAMES lists the names and addresses the certificate is valid for (the phone must reach one).
TLS ?= 0
TLS_DIR := $(INSTANCE)/tls
EMPTY :=
SPACE := $(EMPTY) $(EMPTY)
TLS_NAMES ?= DNS:localhost,IP:127.0.0.1$(subst $(SPACE),,$(foreach ip,$(shell hostname -I 2>/dev/null),,IP:$(ip)))
ifeq ($(TLS),1)
SCHEME := https
SERVE_TLS := --cert $(TLS_DIR)/cert.pem --key $(TLS_DIR)/key.pem
TLS_FILES := $(TLS_DIR)/cert.pem
else
SCHEME := http
endif

$(TLS_DIR)/cert.pem:
	@command -v openssl >/dev/null || { echo "TLS=1 needs openssl (apt-get install openssl)." >&2; exit 1; }
	mkdir -p $(TLS_DIR)
	umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 \
	  -subj "/CN=fieldapp development" -addext "subjectAltName=$(TLS_NAMES)" \
	  -addext "basicConstraints=critical,CA:TRUE" \
	  -keyout $(TLS_DIR)/key.pem -out $@ 2>/dev/null
	@echo "Made $@ for $(TLS_NAMES): see docs/deploy.md to trust it on a phone."

run: install $(INSTANCE)/secret_key $(INSTANCE)/audit_key $(TLS_FILES)
	$(KEYS) $(BIN)/fieldapp init
	@echo "Serving on $(SCHEME)://$(HOST):$(PORT)/"
	$(KEYS) $(BIN)/fieldapp run --host $(HOST) --port $(PORT) $(SERVE_TLS)

# Debian packages the tests drive: Chromium for the browser tests, poppler-utils' pdftoppm to
# render PDF pages. Each is named by the program that must exist, then its package.
SYSTEM_PACKAGES := /usr/bin/chromium:chromium /usr/bin/pdftoppm:poppler-utils
# What only `make bench` needs: wrk for HTTP load, taskset to pin it and the server to a core each.
BENCH_PACKAGES := /usr/bin/wrk:wrk /usr/bin/taskset:util-linux

# $(call debian-packages,LIST): install what LIST names and is missing (as root), or say what to run.
define debian-packages
@missing=""; for pair in $(1); do [ -x "$${pair%%:*}" ] || missing="$$missing $${pair##*:}"; done; \
if [ -z "$$missing" ]; then :; \
elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
else echo "Missing Debian packages:$$missing (run 'sudo apt-get install$$missing')." >&2; exit 1; fi
endef

system-packages:
	$(call debian-packages,$(SYSTEM_PACKAGES))

bench-packages:
	$(call debian-packages,$(BENCH_PACKAGES))

test: install system-packages
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks, never run by the tests or CI: see docs/performance.md. Every bench in turn (about
# half an hour, most of it the crash loop and the compliance bench at full scale); the figures
# go into docs/performance.md. BENCH_SCALE=0.1 runs the compliance bench at a tenth of its size;
# BENCH_ONLY=web,pdf runs only those.
BENCH_SCALE ?= 1
bench: install bench-packages
	BENCH_SCALE=$(BENCH_SCALE) $(BIN)/python bench/run.py $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
