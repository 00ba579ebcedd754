# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes side by side (pytest-xdist): CI has 2 cores.
TEST_WORKERS ?= 2

.PHONY: demo test test-slow bench figures clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bioplastic run protocols/quickstart.toml --out results/quickstart/demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_trial_loop.py
	$(BIN)/python benchmarks/bench_block_loop.py
	$(BIN)/python benchmarks/bench_reward_learning.py
	$(BIN)/python benchmarks/bench_distal_reward.py
	$(BIN)/python benchmarks/bench_dnms.py
	$(BIN)/python benchmarks/bench_eprop.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_cost.py

# The scaling studies' gallery figures, from scratch (about 40 min on 2 cores): each sweep into
# results/, then its figures into docs/figures/.
figures: $(STAMP)
	for p in scaling_width scaling_samples scaling_sigma werfel2005 zuege2023; do \
	  $(BIN)/bioplastic sweep protocols/$$p.toml --out results/figures/$$p || exit 1; done
	$(BIN)/python analysis/scaling.py results/figures/scaling_width --out docs/figures/scaling_width
	$(BIN)/python analysis/scaling.py results/figures/scaling_samples --out docs/figures/scaling_samples
	$(BIN)/python analysis/scaling.py results/figures/scaling_sigma --out docs/figures/scaling_sigma
	$(BIN)/python analysis/werfel.py results/figures/werfel2005 --out docs/figures/werfel2005
	$(BIN)/python analysis/zuege.py results/figures/zuege2023 --out docs/figures/zuege2023

clean:
	rm -rf $(VENV) .bioplastic_cache results *.egg-info
