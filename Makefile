# The two commands of the README: `make run` and `make test`. Both create .venv when it is
# missing or stale (keyed to the sha256 of pyproject.toml), install the project, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pyproject.sha256

.PHONY: venv run test lint bench data pretrain clean-venv

venv:
	@want=$$(sha256sum pyproject.toml | cut -d' ' -f1); \
	have=$$(cat $(STAMP) 2>/dev/null); \
	if [ ! -x $(PY) ] || [ "$$want" != "$$have" ]; then \
		echo "setting up $(VENV) (no venv yet, or pyproject.toml changed)"; \
		$(PYTHON) -m venv $(VENV) && \
		$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' && \
		echo "$$want" > $(STAMP); \
	fi

run: venv
	$(PY) -m unmask.cli.compare

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check src tests experiments
	$(VENV)/bin/ruff format --check src tests experiments

bench: venv
	$(PY) experiments/bench/samplers.py
	$(PY) experiments/bench/partial_cache.py
	$(PY) experiments/bench/eval_scaling.py

data: venv
	$(PY) -m unmask.data.prepare

# Reproduces the shipped checkpoints in src/unmask/checkpoints (see README for the measured time).
pretrain: data
	$(PY) -m unmask.cli.train pretrain=mnist_classifier ship=true
	$(PY) -m unmask.cli.train pretrain=mnist_vq ship=true
	$(PY) -m unmask.cli.train pretrain=mnist ship=true & mnist=$$!; \
	$(PY) -m unmask.cli.train pretrain=shakespeare ship=true; text=$$?; \
	wait $$mnist && [ $$text -eq 0 ]

clean-venv:
	rm -rf $(VENV)
