# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv if it is missing and install what they need.
# TORCH pins a CPU-friendly build; override it for your accelerator, e.g. `make demo TORCH=torch`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lmtune-installed

.PHONY: install demo test check lab readme clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/lmtune demo

# Fails when a notebook carries outputs, when lmtune/ differs from the notebooks, or when
# README.md differs from nbs/index.ipynb; then runs every notebook and the integration tests.
check: install
	$(BIN)/python tools/check_sync.py

# Two notebook workers on two cores: one torch thread each, or they slow each other down many times over.
# pytest likewise runs two workers (pytest-xdist), a test file per worker at a time, so each file's fixtures are built once.
test: check
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests/
	@[ -x "$${LMTUNE_CHROMIUM:-/usr/bin/chromium}" ] || echo "make test: the browser tests (pytest -m browser) were SKIPPED: no Chromium at $${LMTUNE_CHROMIUM:-/usr/bin/chromium}; install it with: apt-get install -y chromium"

# The docs site (docs/README.md): every notebook executed as nbdev-test runs it, nbdev's processing, then
# nbdev-docs (Quarto, where installed) into _docs/ and Sphinx + MyST-NB into _build/html/.
.PHONY: docs
docs: install
	OMP_NUM_THREADS=1 $(BIN)/python tools/build_docs.py

readme: install
	$(BIN)/python tools/make_readme.py

lab: install
	$(BIN)/jupyter lab nbs

clean-demo:
	rm -rf lmtune-demo
