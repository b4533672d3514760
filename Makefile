# The two commands of the README: `make run` and `make test`. Both create .venv when it is
# missing or stale (keyed to the sha256 of pyproject.toml), install the project, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pyproject.sha256

.PHONY: venv run figures test test-fast lint bench data pretrain clean-venv

venv:
	@want=$$(sha256sum pyproject.toml | cut -d' ' -f1); \
	have=$$(cat $(STAMP) 2>/dev/null); \
	if [ ! -x $(PY) ] || [ "$$want" != "$$have" ]; then \
		echo "setting up $(VENV) (no venv yet, or pyproject.toml changed)"; \
		$(PYTHON) -m venv $(VENV) && \
		$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' && \
		echo "$$want" > $(STAMP); \
	fi

# The main job: unmask-eval -m experiment=quickstart (the MNIST and Shakespeare sweeps side by side,
# one thread each), then unmask-figures on its output (summary table, figure, sample grids in
# outputs/figures/). See the README for the measured time.
run: venv
	$(PY) -m unmask.cli.figures quickstart --run

# Every paper figure from its own command (experiments/README.md; 76 minutes on the 2-core Intel machine).
figures: venv
	$(PY) -m unmask.cli.figures all --run

# The SLURM tests need the local cluster: start it when we can (root, apt) and it is not up yet,
# and stop afterwards only what this run started. Without it they are skipped, with the reason.
test: venv
	@started=0; \
	if ! bash slurm/local_cluster.sh status >/dev/null 2>&1 && bash slurm/local_cluster.sh can-start; then \
		bash slurm/local_cluster.sh start && started=1; \
	fi; \
	$(PY) -m pytest -q -n 2 --dist loadgroup; status=$$?; \
	if [ $$started = 1 ]; then bash slurm/local_cluster.sh stop; fi; \
	exit $$status

# The edit-test loop: unit, statistical and figure tests that start no process and are not
# marked slow (under 3 minutes on 2 cores; see the README for the measured time).
# pytest's exit status 5 (nothing collected) fails it like any other.
test-fast: venv
	$(PY) -m pytest -q -n 2 -m "not slow and not subprocess and not slurm" tests/unit tests/statistical tests/figures

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
	$(PY) -m unmask.cli.train pretrain=mnist_continued ship=true & mnist=$$!; \
	$(PY) -m unmask.cli.train pretrain=shakespeare_continued ship=true; text=$$?; \
	wait $$mnist && [ $$text -eq 0 ]
	$(PY) -m unmask.cli.train pretrain=shakespeare_third ship=true
	$(PY) -m unmask.cli.train pretrain=shakespeare_deeper ship=true
	$(PY) -m unmask.cli.train pretrain=shakespeare_fifth ship=true
	$(PY) -m unmask.cli.train pretrain=shakespeare_nine_blocks ship=true
	$(PY) -m unmask.cli.train pretrain=shakespeare_eighth ship=true

clean-venv:
	rm -rf $(VENV)
