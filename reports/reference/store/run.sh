#!/usr/bin/env bash
# The history and fleet views of this folder, rebuilt from the committed real runs: every minilm-l6
# gate-selection run of one testbed (the Xeon 55b7c07d403e) -- the six calibration runs, the nine
# batch-32 block-length runs and the reference run -- published to a fresh embedded store.
#   bash reports/reference/store/run.sh [STORE_DIR]
set -euo pipefail
cd "$(dirname "$0")/../../.."
STORE=${1:-$(mktemp -d)}
URI="sqlite:///$STORE/results.db"
OUT=reports/reference/store
.venv/bin/python -m harness publish --results-uri "$URI" --no-report \
  reports/reference/calibration/runs/run-0*.json reports/reference/calibration/batch32-blocks/*.json \
  reports/reference/run.json | tee "$OUT/publish.log"
.venv/bin/python -m harness history --results-uri "$URI" --machine 55b7c07d403e --profile minilm-l6 \
  --variant int8-dynamic --variant int8-dynamic-pc --variant slowdown@0.06 \
  --metric 'p50_ratio.seq128' --metric 'throughput_ratio.bs32' --out "$OUT/history"
.venv/bin/python -m harness fleet --results-uri "$URI" --profile minilm-l6 --metric 'p50_ratio.seq128' \
  --metric 'p50_ms.seq128' --metric 'throughput_ratio.bs32' --metric 'size_mb' --metric accuracy \
  --out "$OUT/fleet.md"
