# The two commands of the README:  make run  (the main job)  and  make test  (the suite).
# Both set the machine up on first use (scripts/setup.sh).

VENV  := .venv
STAMP := $(VENV)/.installed
OUT   ?= ppr-out
# Numba's on-disk cache, kept out of the source tree.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: run test setup lint bench

run: $(STAMP)
	@mkdir -p $(OUT)
	$(VENV)/bin/ppr plan --out $(OUT)/plan.json --gantt $(OUT)/plan.png

test: $(STAMP)
	$(VENV)/bin/python -m pytest

setup $(STAMP): pyproject.toml scripts/setup.sh
	scripts/setup.sh
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/planning.py
