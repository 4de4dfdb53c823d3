# Two commands do all the set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ATELIER_HOME ?= var
HOST ?= 127.0.0.1
PORT ?= 3000
# The CPU wheel; the project's torch range is satisfied by it, so no CUDA build is pulled.
TORCH_VERSION := 2.13.0
export ATELIER_HOME

.PHONY: install demo serve test bench clean clients

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==$(TORCH_VERSION)
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# Studio's front-end package (htmx, from the npm registry; never a CDN). Without npm, Studio
# still works: every page is plain HTML forms, and htmx only spares full-page reloads.
STUDIO_JS := service/studio/node_modules/htmx.org/dist/htmx.min.js
$(STUDIO_JS): service/studio/package.json service/studio/package-lock.json
	npm ci --prefix service/studio --ignore-scripts --no-audit --no-fund --loglevel=error \
		|| echo "npm is unavailable: Studio runs without htmx"

# The API reference's renderer (Swagger UI, from the npm registry; never a CDN), served at /docs.
# Without npm, /docs says how to install it and /docs.json (the contract) still answers.
DOCS_JS := service/gateway/apidocs/node_modules/swagger-ui-dist/swagger-ui-bundle.js
$(DOCS_JS): service/gateway/apidocs/package.json service/gateway/apidocs/package-lock.json
	npm ci --prefix service/gateway/apidocs --ignore-scripts --no-audit --no-fund --loglevel=error \
		|| echo "npm is unavailable: /docs runs without its renderer"

# Atelier's official clients (clients/; `make clients` regenerates them from the contract). The
# Python client's generator runs from a venv of its own (openapi-python-client 0.29.1 pins
# httpx<0.29 and typer<0.28, which the service's venv must not be held to); the client itself is
# installed into the service's venv for the tests. The TypeScript client's packages come from the
# npm registry; without npm, its tests skip and say why.
CLIENT_GEN := clients/.venv/.installed
$(CLIENT_GEN): clients/generator-requirements.txt
	$(PYTHON) -m venv clients/.venv
	clients/.venv/bin/pip install --quiet -r clients/generator-requirements.txt
	touch $@

CLIENT_PY := $(VENV)/.atelier-client
$(CLIENT_PY): $(VENV)/.installed clients/python/pyproject.toml
	$(VENV)/bin/pip install --quiet -e clients/python
	touch $@

CLIENT_TS := clients/typescript/node_modules/.package-lock.json
$(CLIENT_TS): clients/typescript/package.json clients/typescript/package-lock.json
	npm ci --prefix clients/typescript --ignore-scripts --no-audit --no-fund --loglevel=error \
		|| echo "npm is unavailable: the TypeScript client's tests will skip"

install: $(VENV)/.installed $(STUDIO_JS) $(DOCS_JS) $(CLIENT_GEN) $(CLIENT_PY) $(CLIENT_TS)

clients: install
	$(PY) clients/generate.py

demo: install
	$(PY) builds/demo.py --home $(ATELIER_HOME)

serve: demo
	BENTOML_HOME=$(abspath $(ATELIER_HOME))/bentoml $(VENV)/bin/bentoml serve service.gateway.service:Gateway --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest

bench: install demo
	$(VENV)/bin/pip install --quiet -e '.[bench]'
	$(PY) bench/generate.py
	$(PY) bench/adapters.py
	$(PY) bench/watermark.py
	$(PY) bench/audit.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache clients/.venv
