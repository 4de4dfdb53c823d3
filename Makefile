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

.PHONY: install demo serve test bench clean

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

install: $(VENV)/.installed $(STUDIO_JS) $(DOCS_JS)

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
	rm -rf $(VENV) *.egg-info .pytest_cache
