# The two commands a new user runs: `make demo` (train the default recipe on Fashion-MNIST and
# write its report) and `make test` (the test suite). Each installs what it needs first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SHARED := $(abspath ../shared/data)

# Use the repository's bundled copy of Fashion-MNIST when it sits beside the checkout.
ifneq ($(wildcard $(SHARED)/fashion-mnist),)
export TRAINWELL_DATA ?= $(SHARED)
endif

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,tune,tensorboard,sklearn,mlflow]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/trainwell fit default

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/run.py --nproc 2 --precision bf16 $(ARGS)
	$(PY) benchmarks/bench_cnn.py

lint: install
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) runs
