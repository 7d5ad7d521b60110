"""pytest-benchmark hooks and the suite's command-line options.

* ``pytest_benchmark_update_machine_info`` adds the machine fingerprint
  (``harness.results.fingerprint``) to every saved run.
* ``pytest_benchmark_update_json`` stamps the run with our schema version and
  the options that shape its numbers.
* the fault hooks (``harness.results.faults``): failed benchmark items recorded in the
  stamp (``failures``), SIGTERM handled like Ctrl-C, the saved run written
  atomically, output options kept inside the output folders.
* ``pytest_benchmark_compare_machine_info`` refuses to compare timings of runs
  whose timing-relevant fingerprint differs (pytest-benchmark only warns).
"""
from __future__ import annotations

import pytest

RUN_SCHEMA = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    from harness.session import TimingOptions

    timing = TimingOptions()  # the one owner of the timing defaults
    group = parser.getgroup("edgebench", "compressed-model benchmark suite")
    group.addoption("--config", default=None,
                    help="project file with your own models, data and profiles (default: $EDGEBENCH_CONFIG, "
                         "else ./edgebench.toml if present; `python -m harness init` writes a starter)")
    group.addoption("--profiles", default="minilm-l6,distilbert-base",
                    help="comma-separated model profiles to benchmark (default: %(default)s)")
    group.addoption("--variants", default="fp32,int8-dynamic,int8-dynamic-pc",
                    help="comma-separated variants to benchmark; 'profile/variant' restricts one to that profile "
                         "(default: %(default)s)")
    group.addoption("--backends", default="torch,onnxruntime",
                    help="comma-separated inference backends (harness.backends): torch (eager), onnxruntime; "
                         "variants a backend cannot run are skipped with the reason (default: %(default)s)")
    group.addoption("--threads", type=int, default=None,
                    help="intra-op threads for every measurement (default: physical cores)")
    group.addoption("--blocks", type=int, default=timing.min_repetitions,
                    help="minimum repetitions of every latency/throughput campaign: each repetition times one "
                         "block of every cell of the shape, in a shuffled order (default: %(default)s)")
    group.addoption("--block-seconds", type=float, default=timing.block_s,
                    help="seconds per timed block, at least one round (default: %(default)s)")
    group.addoption("--timing-cap-s", type=float, default=timing.cap_s,
                    help="a campaign adds repetitions until its paired ratios are within --timing-precision and "
                         "no budget is undecided, for at most this many seconds (default: %(default)s)")
    group.addoption("--timing-info-blocks", type=int, default=timing.info_min_repetitions,
                    help="minimum repetitions of a campaign that judges no budget (at most --blocks; "
                         "default: %(default)s)")
    group.addoption("--timing-info-cap-s", type=float, default=timing.info_cap_s,
                    help="the same cap for a campaign that judges no budget (its shape is information only; "
                         "default: %(default)s)")
    group.addoption("--timing-precision", type=float, default=timing.precision,
                    help="target half-width of every paired ratio's 95%% CI, as a fraction (default: %(default)s)")
    group.addoption("--processes", type=int, default=timing.processes,
                    help="worker processes per timed cell, used in turn, so one process's memory-layout offset "
                         "shows in the cell's CI instead of biasing it (default: %(default)s)")
    group.addoption("--reload-every", type=int, default=timing.reload_every,
                    help="each timing worker reloads its model from disk every N repetitions (new allocations: "
                         "another memory layout within one process; 0: never; default: %(default)s)")
    group.addoption("--bench-seconds", type=float, default=3.0,
                    help="target timed seconds of the in-process INT8 engine probe (default: %(default)s)")
    group.addoption("--min-rounds", type=int, default=20,
                    help="minimum timed rounds of the in-process INT8 engine probe (default: %(default)s)")
    group.addoption("--cold-start-samples", type=int, default=2,
                    help="fresh processes per cold-start measurement with the variant's files in the page cache "
                         "(default: %(default)s)")
    group.addoption("--cold-cache-samples", type=int, default=1,
                    help="fresh processes per cold-start measurement with the variant's files evicted from the "
                         "page cache first, alternating with the warm ones (default: %(default)s, which keeps "
                         "make bench within 30 min; 0: none)")
    group.addoption("--memory-samples", type=int, default=3,
                    help="fresh processes per peak-memory measurement: the cold-start processes, warm or cold, "
                         "topped up with warm ones (default: %(default)s)")
    group.addoption("--seq-lengths", default=None,
                    help="comma-separated sequence lengths for latency (default: the profile's)")
    group.addoption("--batch-sizes", default=None,
                    help="comma-separated batch sizes for throughput (default: the profile's)")
    group.addoption("--budgets", default=None,
                    help="budgets file (default: baselines/budgets.toml)")
    group.addoption("--no-rebuild", action="store_true",
                    help="a cached variant whose weights fail their sha256 is an error instead of being rebuilt")
    group.addoption("--eval-limit", type=int, default=None,
                    help="evaluate quality on at most N evenly spaced examples of each set (default: all; "
                         "for time-boxed runs on a busy machine: the CIs widen accordingly)")
    group.addoption("--journal", default=None,
                    help="append every finished benchmark to this journal (default: a new file in "
                         ".benchmarks/journal/); a killed run loses at most the cell in flight")
    group.addoption("--resume", default=None, metavar="JOURNAL",
                    help="continue an interrupted run: replay what JOURNAL holds, measure the rest, append there")
    group.addoption("--results-uri", default=None,
                    help="publish the saved run to this results store (MLflow tracking URI: sqlite:///PATH.db, "
                         "postgresql://..., http(s)://HOST:PORT; 'off': do not publish; default: "
                         "$EDGEBENCH_RESULTS_URI, else results.db beside the saved runs)")
    group.addoption("--variants-from", default=None, metavar="URI",
                    help="take built variants (FP32 baselines included) from this results store instead of "
                         "building them; pushed by 'python -m harness push' on the device that built them")
    group.addoption("--gate", action="store_true",
                    help="also compare this run with the runs blessed for this machine (baselines/<machine-id>/)")
    group.addoption("--gate-from-store", action="store_true",
                    help="with --gate: the blessed runs are the newest 10 of this testbed blessed in the results "
                         "store (--results-uri; 'python -m harness bless RUN --results-uri URI'), not baselines/")


def threads(config: pytest.Config) -> int:
    from harness.session import default_threads

    return config.getoption("--threads") or default_threads()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    from harness.results import fingerprint

    machine_info["edgebench"] = fingerprint.collect(threads(config))


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    import shlex
    import uuid

    from harness.store.uri import redact

    output_json["edgebench"] = {
        "schema": RUN_SCHEMA,
        "run_id": uuid.uuid4().hex[:16],  # the results store's key: publishing the file twice gives one record
        # Redacted: a --results-uri with a password must not reach the run file, the store or a report.
        "command": redact(shlex.join(["pytest", *config.invocation_params.args])),
        "threads": threads(config),
        "profiles": config.getoption("--profiles"),
        "variants": config.getoption("--variants"),
        "variants_from": None if config.getoption("--variants-from") is None
        else redact(config.getoption("--variants-from")),
        "backends": config.getoption("--backends"),
        "timing_design": "interleaved",
        "blocks": config.getoption("--blocks"),
        "block_seconds": config.getoption("--block-seconds"),
        "timing_cap_s": config.getoption("--timing-cap-s"),
        "timing_info_cap_s": config.getoption("--timing-info-cap-s"),
        "timing_info_blocks": config.getoption("--timing-info-blocks"),
        "reload_every": config.getoption("--reload-every"),
        "processes": config.getoption("--processes"),
        "timing_precision": config.getoption("--timing-precision"),
        "bench_seconds": config.getoption("--bench-seconds"),
        "min_rounds": config.getoption("--min-rounds"),
    }
    from harness.results import faults

    output_json["edgebench"].update(faults.stamp(config))


def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark) -> None:
    from harness.results import fingerprint

    ours = machine_info.get("edgebench", {})
    theirs = compared_benchmark.get("machine_info", {}).get("edgebench", {})
    differ = fingerprint.timing_mismatch(ours, theirs)
    if differ:
        raise pytest.UsageError(
            f"refusing to compare timings with a run from another machine "
            f"(fingerprint differs in: {', '.join(differ)}); compare runs made on this machine"
        )


def pytest_configure(config: pytest.Config) -> None:
    from harness.results import faults

    faults.check_output_options(config)
    _check_results_uri(config)
    faults.install_signal_handlers(config)


def _check_results_uri(config: pytest.Config) -> None:
    """An unknown store scheme is a usage error before anything is measured, not a surprise at the end."""
    from harness.core.errors import HarnessError
    from harness.store import uri

    try:
        gate_store = uri.resolve(config.getoption("--results-uri"))
        if config.getoption("--gate-from-store") and (gate_store is None or not config.getoption("--gate")):
            raise HarnessError("--gate-from-store needs --gate and a results store (--results-uri), not 'off'")
        if config.getoption("--variants-from") is not None and uri.resolve(config.getoption("--variants-from")) is None:
            raise HarnessError("--variants-from needs a results store, not 'off'")
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    from harness.results import faults

    faults.restore_signal_handlers(config)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    from harness.results import faults

    faults.make_saving_atomic(session.config)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Runs before pytest-benchmark's own wrapper saves the run."""
    from harness.results import faults

    faults.drop_incomplete(session.config)
    yield
    _publish(session.config)


def _publish(config: pytest.Config) -> None:
    """Publish the run pytest-benchmark just saved; a store that fails costs one line, never the run."""
    from harness.core.errors import HarnessError
    from harness.results import faults

    saved = config.stash.get(faults.SAVED, None)
    if saved is None:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter else print
    interrupted = config.stash.get(faults.INTERRUPTED, None)
    if interrupted:  # a partial run would read as a real point of the testbed's history
        say(f"results store: not published: the run was interrupted ({interrupted}); to publish the partial run "
            f"anyway: python -m harness publish {saved}")
        return
    try:
        from harness.store import publish, uri

        target = uri.resolve(config.getoption("--results-uri"), storage=saved.parent.parent)
        if target is None:
            return
        done = publish.publish(saved, target)
        say(f"results store: published {saved.name} ({done.cells} cells) to {uri.redact(target)} "
            f"in {done.seconds:.1f} s")
    except HarnessError as exc:  # the run is saved; the suite's exit status stays the benchmark's own
        say(f"results store: not published: {exc}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    from harness.results import faults

    report = yield
    faults.skip_unsupported(item, call, report)  # before note_failure: a skip is no failure
    faults.note_failure(item, call, report)
    return report
