# The two commands: `make demo` and `make test`. Both create .venv and install the package first.
# `make quality` lints (ruff, configured in pyproject.toml) and checks `# Copied from` blocks; `make style` applies
# ruff's safe fixes.
# On other machines override the torch requirement, e.g. `make test TORCH_SPEC="torch==2.6.0"`.
PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo demo-property test quality style bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -c constraints.txt -e ".[test,demo,quality]"
	$(PY) utils/install_wordnet.py
	touch $(STAMP)

# The main job: molecule-to-text (HSA-Net) and SweetTokenizer, about 9 minutes on 2 cores. Property prediction, the
# secondary use, has its own target: with it `make demo` took 15 minutes (README).
demo: install
	$(PY) examples/run_captioning_demo.py
	$(PY) examples/run_sweet_demo.py

demo-property: install
	$(PY) examples/run_demo.py

test: install
	$(PY) -m pytest -q --durations=25 tests

quality: install
	$(PY) -m ruff check .
	$(PY) utils/check_copies.py

style: install
	$(PY) -m ruff check --fix .

bench: install
	$(PY) benchmarks/bench_hsanet.py
	$(PY) benchmarks/bench_scan.py
	$(PY) benchmarks/bench_featurization.py
	$(PY) benchmarks/bench_sweet.py
	$(PY) benchmarks/bench_captioning.py
	$(PY) benchmarks/bench_gpu.py

clean:
	rm -rf $(VENV) build *.egg-info demo_outputs
