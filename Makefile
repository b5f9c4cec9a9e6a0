# Two entry points for a fresh machine (see README): `make bench` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= $(or $(AIOTBENCH_SHARED),$(abspath ../shared))
export AIOTBENCH_SHARED := $(SHARED)
DATASET ?= $(SHARED)/data/imagenet-val-500
RESULTS ?= results

.PHONY: setup system-deps bench test test-fast clean

# torch is pinned in pyproject (an unpinned torch resolves to a multi-GB CUDA build). executorch shares the venv:
# resolved together with the zoo toolchain (xdsl needs typing_extensions<4.13, so pip picks cattrs 25.2.0), pip
# check is clean; installed on its own afterwards, pip would upgrade typing_extensions past xdsl's pin.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test,zoo,executorch]'
	touch $@

setup: $(BIN)/.installed

# The main job: build the model zoo where missing, then benchmark every case; JSON and HTML in results/.
bench: setup
	BIN=$(BIN) RESULTS=$(RESULTS) DATASET=$(DATASET) bash scripts/main-job.sh

system-deps:
	bash scripts/system-deps.sh

# loadgroup: a test module stays on one worker, and the modules using the one emulated ARM board share a worker
# (xdist_group "arm-board"): one module taking the board down must not cut another's cases off.
test: setup system-deps
	AIOTBENCH_OFFLINE=1 $(BIN)/pytest -n 2 --dist loadgroup -rs

# The fast tier: every module, a few minutes (no whole-dataset runs, zoo exports, farms or emulated board).
test-fast: setup system-deps
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow"

clean:
	rm -rf $(VENV) $(RESULTS)
