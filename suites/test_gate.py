"""The regression gate: budgets on every run, the stored baseline with ``--gate``.

These items run after the measurements (pytest runs files in order) and read
what this session measured.  A budget whose metric was not measured (deselected
with ``-k``) is skipped, never passed.
"""
from __future__ import annotations

import pytest

from harness.gate import budgets as budgets_mod
from harness.results.rows import rows_from_results


def test_budget(bench, budget, profile, variant, backend):
    verdict = budgets_mod.evaluate(budget, profile, variant, rows_from_results(bench.results), backend)
    if verdict.passed is None:
        pytest.skip(verdict.message)
    if not verdict.passed:  # fail, inconclusive (CI straddles the bound) or too noisy (A/A control)
        load = max((r.get("load_avg_1m") or 0.0 for r in bench.results), default=0.0)
        cores = bench.threads
        hint = (f" [machine load reached {load:.1f} on {cores} threads' worth of cores while measuring: "
                "other processes competed; re-run on a quiet machine before trusting a timing verdict]"
                if load > cores + 0.5 else "")
        pytest.fail(f"{verdict.message} -- {budget.why}{hint}", pytrace=False)


def test_budgets_judged(bench, case):
    """A selected case whose every applicable budget was skipped as "not measured" was not gated
    at all: that is a failure of the selection (e.g. -k left out its measurements), not a pass."""
    from harness.models.profiles import get_profile

    rows = rows_from_results(bench.results)
    if not any(r["profile"] == case.profile and r["variant"] == case.variant and r["backend"] == case.backend
               for r in rows):
        pytest.skip(f"{case.id}: nothing of it was measured in this session (not selected)")
    all_budgets = budgets_mod.load_budgets(bench.budgets_path)
    verdicts = [budgets_mod.evaluate(b, case.profile, case.variant, rows, case.backend)
                for b in budgets_mod.applicable(all_budgets, case.profile, case.variant,
                                                get_profile(case.profile).real_weights, case.backend)]
    # "too noisy" is measured but not judged (the A/A control's verdict), not a selection mistake.
    if verdicts and all(v.state == "not measured" for v in verdicts):
        pytest.fail(f"{case.id}: all {len(verdicts)} budgets were skipped as not measured -- select the "
                    "measurements they judge (static, latency, throughput, cold_start, memory, quality)",
                    pytrace=False)


def test_against_baseline(bench, request):
    """Compare this run with the runs blessed on this machine (``--gate``)."""
    from harness.gate import baselines
    from harness.gate.compare import FAILING, compare_runs
    from harness.report.gate import render_comparisons
    from harness.results import fingerprint

    info = fingerprint.collect(bench.threads)
    run = {"machine_info": {"edgebench": info}, "edgebench": {"schema": 1},
           "benchmarks": [{"extra_info": r, "stats": {"data": r["samples_s"]}, "name": r["name"]}
                          for r in bench.results]}
    if request.config.getoption("--gate-from-store"):
        from harness.store import baselines as store_baselines
        from harness.store import uri

        store = uri.resolve(request.config.getoption("--results-uri"))  # checked at start-up: never 'off'
        source = f"the results store {uri.redact(store)}"
        old = store_baselines.load_blessed(store, info["machine_id"])
    else:
        source = str(baselines.baseline_dir(info["machine_id"]))
        old = baselines.load_baselines(info["machine_id"])
    comps, notes = compare_runs(old, run, budgets_mod.load_tolerances())
    text = f"Against {len(old)} run(s) blessed for testbed {info['machine_id']} in {source}.\n\n" + \
        render_comparisons(comps, notes)
    request.config.stash[GATE_REPORT] = text
    failing = [c for c in comps if c.verdict in FAILING]  # a regression, or a run too noisy to judge
    if failing:
        pytest.fail(f"{len(failing)} failing verdict(s) against the blessed baseline:\n{text}", pytrace=False)


GATE_REPORT = pytest.StashKey[str]()
