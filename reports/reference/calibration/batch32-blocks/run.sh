#!/bin/bash
# A/A probe for issue 16: batch-32 block length. Alternating 0.05 s (1 round/block) and 1.5 s blocks.
cd /work/main
for i in 1 2 3; do for bs in 0.05 1.5; do
  out=/tmp/probe/bs${bs}_$i.json
  .venv/bin/python -m pytest suites/ -q -p no:cacheprovider --profiles minilm-l6 --variants fp32,int8-dynamic \
    --backends torch --seq-lengths 128 --batch-sizes 32 -k "throughput" --timing-cap-s 150 --processes 3 \
    --block-seconds $bs --benchmark-json=$out > /tmp/probe/bs${bs}_$i.log 2>&1
  echo "$bs $i rc=$? $(date +%T)" >> /tmp/probe/progress
done; done
echo done >> /tmp/probe/progress
