import json, sys, glob
from harness.results.rows import rows_from_results
for f in sorted(glob.glob("reports/reference/calibration/batch32-blocks/*.json")):
    run = json.load(open(f))
    rows = rows_from_results([b["extra_info"] for b in run["benchmarks"]])
    out = []
    for e in rows:
        for shape, v in (e.get("aa_ratio") or {}).items():
            out.append(f"A/A {shape} {v['ratio']:.3f} [{v['ci95'][0]:.3f},{v['ci95'][1]:.3f}] n={v.get('n')} hw={(v['ci95'][1]-v['ci95'][0])/2:.3f}")
        for shape, v in (e.get("throughput_ratio") or {}).items():
            out.append(f"{e['variant']} thr@{shape} {v['ratio']:.3f} [{v['ci95'][0]:.3f},{v['ci95'][1]:.3f}] n={v.get('n')}")
    print(f.split("/")[-1], " | ".join(sorted(set(out))))
