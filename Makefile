# Two entry points for a fresh machine (see README): `make bench` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= $(abspath ../shared)
export AIOTBENCH_SHARED := $(SHARED)
DATASET ?= $(SHARED)/data/imagenet-val-500
RESULTS ?= results

.PHONY: setup system-deps bench test clean

# torch is pinned in pyproject (an unpinned torch resolves to a multi-GB CUDA build).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test]'
	touch $@

setup: $(BIN)/.installed

# The main job: every case of the shared real models on the shared ImageNet images; JSON and HTML in results/.
bench: setup
	mkdir -p $(RESULTS)
	$(BIN)/pytest --aiotbench --aiotbench-catalog=models/shared.toml --aiotbench-dataset=$(DATASET) \
		--aiotbench-json=$(RESULTS)/aiotbench.json --aiotbench-html=$(RESULTS)/report.html \
		--benchmark-json=$(RESULTS)/benchmark.json

system-deps:
	bash scripts/system-deps.sh

test: setup system-deps
	$(BIN)/pytest -n 2 --dist loadfile

clean:
	rm -rf $(VENV) $(RESULTS)
