# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bioplastic run protocols/quickstart.toml --out results/quickstart/demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_trial_loop.py
	$(BIN)/python benchmarks/bench_distal_reward.py
	$(BIN)/python benchmarks/bench_dnms.py
	$(BIN)/python benchmarks/bench_eprop.py
	$(BIN)/python benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) .bioplastic_cache results *.egg-info
