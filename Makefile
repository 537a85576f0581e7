# The two commands of the README: `make demo` and `make test`. Both install what is missing
# (uv itself included) from pyproject.toml + uv.lock; a fresh machine needs python3, git, make.
# The inner loop: `make test-fast` (no pipeline runs, training or servers), `make lint`, and
# `make docs` (the site under site/).
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
# The environment TensorFlow needs is set by tfx_gnn/__init__.py, in every Python process.
# These two are this offline machine's, not the library's: they keep google-auth from probing
# for a GCE metadata server (and would turn off Google Cloud credentials where there is one).
export NO_GCE_CHECK := true
export GCE_METADATA_HOST := 127.0.0.1:1

CONFIG ?= pipelines/configs/demo.yaml
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint docs docs-serve config-reference run clean bench \
        browser postgres mlflow-ui

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools uv==$(UV_VERSION)

# --compile-bytecode: every Python process (the CLI, TFX's children, training workers, the tests)
# imports TensorFlow, TFX and Beam; where PYTHONDONTWRITEBYTECODE is set (as on these machines)
# Python would otherwise compile ~7,000 modules from source in each one (about 7 CPU s).
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra test --compile-bytecode --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

demo: install  ## the main job: the whole pipeline on the embedded graph
	$(VENV)/bin/tfx-gnn run $(CONFIG)

run: install  ## any config: make run CONFIG=pipelines/configs/cora.yaml
	$(VENV)/bin/tfx-gnn run $(CONFIG)

# Debian's Chromium for the MLflow UI / HTML report browser tests (Playwright drives
# /usr/bin/chromium; it never downloads a browser). Installed only when missing; needs root.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

# Debian's PostgreSQL server binaries, for the tests that run ML Metadata and MLflow on a
# private PostgreSQL server (tests/postgres_server.py: initdb + pg_ctl on a temporary directory
# and a loopback port; never the system cluster). Installed only when missing; needs root.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  apt-get update && apt-get install -y --no-install-recommends postgresql; \
	fi

# Everything, as CI runs it (.ci/run): the lint, then every test (tests/test_docs.py builds the
# docs site with --strict and checks the generated configuration reference).
# One xdist worker more than there are cores: the suite's tests wait on child processes and
# servers, so with one worker per core about 13% of the CPU stayed idle (2 cores: 10 min 36 s
# with 2 workers, 9 min 53 s with 3, same tree; benchmarks/README.md).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: install browser postgres lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# Unit and small tests only (about 1 minute on a quiet 2-core machine, much of it importing
# TensorFlow, TFX and Beam once): no pipeline runs, no training, no servers, no TFX children.
test-fast: install
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

# The docs site (MkDocs, Material theme) into site/; `make docs-serve` previews it on 127.0.0.1.
# docs/configuration.md is generated from the config models: `make config-reference` rewrites it.
docs: install
	$(VENV)/bin/mkdocs build --strict

docs-serve: install
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

config-reference: install
	$(VENV)/bin/python -m tfx_gnn.pipelines.config_reference docs/configuration.md

# Benchmarks (benchmarks/*_bench.py), each a table and runs/bench/<name>_bench.json:
#   sampler   the fast sampler vs TF-GNN's samplers
#   input     the trainer's input pipeline and training vs tensorflow_gnn.runner standalone
#   overhead  tfx-gnn run's wall time vs its components' own work (demo config)
#   parity    test accuracy of models trained on either sampling engine's subgraphs
#   inference bulk inference (sampling + model) vs the evaluation pass on the demo graph
#   trim      model.trim_to_layer on vs off: training and bulk inference (demo graph and model)
# `make bench` runs them all; `make bench BENCH=input BENCH_ARGS="--papers 8000"` one of them
# (BENCH_ARGS go to that one: see `.venv/bin/python -m benchmarks.<name>_bench --help`).
BENCH ?= sampler input overhead parity
BENCH_ARGS ?=
bench: install
	@for b in $(BENCH); do \
	  echo "=== make bench: $$b"; \
	  $(VENV)/bin/python -m benchmarks.$${b}_bench $(BENCH_ARGS) || exit 1; \
	done

mlflow-ui: install  ## the MLflow UI of a config's tracking store, on 127.0.0.1 (PORT=5000)
	$(VENV)/bin/tfx-gnn mlflow-ui $(CONFIG) $(if $(PORT),--port $(PORT))

clean:
	rm -rf runs .pytest_cache site
