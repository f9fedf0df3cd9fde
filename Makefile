# The README's two commands: `make demo` and `make test`. Each sets itself up from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile setup.py isc_kit/_md5x.c isc_kit/_scanx.c isc_kit/_placex.c | cksum | cut -d' ' -f1)
SCALE ?= demo

.PHONY: setup nbfilter demo test docs lint bench clean

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv >/dev/null
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -e '.[dev,notebook,docs]'
	@# bytecode compiled once at install: with PYTHONDONTWRITEBYTECODE set, each CLI run would recompile pandas
	@rm -f $(VENV)/.installed-* && touch $@

## The venv, and git's notebook filter (outputs and volatile metadata never reach git; see .gitattributes).
setup: $(STAMP) nbfilter

nbfilter:
	@# a linked worktree shares its repository's config: leave that to the main checkout
	@if git rev-parse --git-dir >/dev/null 2>&1 && \
	  [ "$$(git rev-parse --git-dir)" = "$$(git rev-parse --git-common-dir)" ]; then \
	  git config filter.nbstrip.clean "python3 scripts/nbstrip.py" && \
	  git config filter.nbstrip.smudge cat && \
	  git config filter.nbstrip.required false; fi

## Start the embedded S3, `dvc repro` the demo selection, print the summary.
demo: setup
	$(BIN)/isc-kit demo --scale $(SCALE)

## Install system packages the tests need (Chromium for the browser tests), then run every test.
test: setup
	@bash scripts/system-deps.sh
	$(BIN)/ruff check isc_kit tests bench
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory docs

## The documentation site from docs/ (strict: a broken link or a missing API object fails), into site/.
docs: setup
	$(BIN)/mkdocs build --strict --quiet

lint: setup
	$(BIN)/ruff format --check isc_kit tests bench
	$(BIN)/ruff check isc_kit tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache .mypy_cache
