#!/bin/bash
# Issue 16 follow-up: batch-32 A/A with 5 worker processes per cell (the gate uses 3).
cd /work/main
for i in 1 2 3; do
  out=/tmp/probe/p5_$i.json
  .venv/bin/python -m pytest suites/ -q -p no:cacheprovider --profiles minilm-l6 --variants fp32,int8-dynamic \
    --backends torch --seq-lengths 128 --batch-sizes 32 -k "throughput" --timing-cap-s 150 --processes 5 \
    --block-seconds 0.05 --benchmark-json=$out > /tmp/probe/p5_$i.log 2>&1
  echo "p5 $i rc=$? $(date +%T)" >> /tmp/probe/progress5
done
echo done >> /tmp/probe/progress5
