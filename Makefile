# The two commands of the README:  make run  (the main job)  and  make test  (the suite).
# Both set the machine up on first use (scripts/setup.sh).

VENV  := .venv
STAMP := $(VENV)/.installed
OUT   ?= ppr-out
KEYS  ?= ppr-keys
# Numba's on-disk cache, kept out of the source tree, one per version of the kernels:
# Numba checks only the file a cached function is defined in, and a kernel compiled
# against another file's old NamedTuple layout crashes the process when loaded.
KERNELS := $(shell cat scheduler/*.py scheduler/lagrangian/*.py 2>/dev/null | sha1sum | cut -c1-12)
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba/$(KERNELS)

.PHONY: run test setup lint bench

run: $(STAMP)
	$(VENV)/bin/ppr run --out $(OUT) --keys $(KEYS)

# Two workers (pytest-xdist): most tests wait on frames, sockets and child processes, so
# two share two cores well; TEST_WORKERS=0 runs them in this process, one by one.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal

setup $(STAMP): pyproject.toml scripts/setup.sh
	scripts/setup.sh
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/planning.py
