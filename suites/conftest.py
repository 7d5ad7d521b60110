"""Parametrization and session fixtures of the benchmark suite.

Cases are generated in an interleaved order -- for each profile and each
sequence length, every variant in turn -- so that slow drifts of a shared,
noisy machine hit all variants alike instead of whichever ran last.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.session import BenchSession, Case

def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _cases(config: pytest.Config) -> list[Case]:
    import compressors
    from harness import backends
    from harness.models.profiles import get_profile

    profiles = _csv(config.getoption("--profiles"))
    # "profile/variant" restricts a variant to one profile (e.g. minilm-l6/edgemin-s1 beside
    # distilbert-base's fp32), so a run need not build every variant of every profile.
    variants = [tuple(v.split("/", 1)) if "/" in v else (None, v) for v in _csv(config.getoption("--variants"))]
    names = _csv(config.getoption("--backends")) or [backends.DEFAULT]
    for p in profiles:
        get_profile(p)  # unknown profile: one clear error at collection
    for only, v in variants:
        compressors.get(v)
        if only is not None and only not in profiles:
            raise pytest.UsageError(f"--variants entry '{only}/{v}' names profile '{only}', which is not in "
                                    f"--profiles ({', '.join(profiles)}); add it there or drop the prefix")
    adapters = [backends.get(b) for b in names]
    # Interleaved: for each variant, every backend in turn.
    return [Case(p, v, b.name, b.unsupported(v, get_profile(p).task, get_profile(p).onnx_file is not None))
            for p in profiles for only, v in variants if only in (None, p) for b in adapters]


def _param(values: tuple, case: Case, id_: str):
    """A parametrize entry; a case its backend cannot run is skipped with the reason."""
    marks = [pytest.mark.skip(reason=case.skip)] if case.skip else []
    return pytest.param(*values, id=id_, marks=marks)


def _task(case: Case):
    """The case's task (harness.models.tasks): length tag and eval sets come from it, not from here."""
    from harness.models.profiles import get_profile

    return get_profile(case.profile).make_task()


def _ints(config: pytest.Config, option: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = _csv(config.getoption(option))
    return tuple(int(x) for x in raw) if raw else default


def pytest_configure(config: pytest.Config) -> None:
    """Reject unknown profiles/variants and bad numbers before anything runs (exit 4)."""
    import compressors
    from harness.core.errors import HarnessError
    from harness.gate import budgets

    if config.getoption("--config"):
        import os

        from harness.models import project

        # Through the environment, so every process the suite starts reads the same project file.
        chosen = Path(config.getoption("--config"))
        os.environ[project.CONFIG_ENV] = str(chosen if chosen.is_absolute() else Path(config.invocation_params.dir) / chosen)
    if config.getoption("benchmark_disable", False):
        raise pytest.UsageError("this suite measures: --benchmark-disable would record nothing; "
                                "use -k to run fewer benchmarks instead")
    try:
        cases = _cases(config)
        from harness import backends

        for name in dict.fromkeys(c.backend for c in cases):
            backends.get(name).check_install()  # missing install: one clear error before anything runs
        budgets.load_budgets(config.getoption("--budgets") or budgets.DEFAULT_PATH)
        # The inputs are real IMDB tokens and quality needs MR: fail before any
        # test runs when the set-up step has not fetched them.
        from harness.models.profiles import get_profile

        for profile in dict.fromkeys(c.profile for c in _cases(config)):
            get_profile(profile).check()
        for option in ("--seq-lengths", "--batch-sizes"):
            if any(n < 1 for n in _ints(config, option, ())):
                raise ValueError(f"{option} takes positive integers")
        for option, low in (("--blocks", 3), ("--timing-info-blocks", 3), ("--processes", 1), ("--reload-every", 0), ("--cold-start-samples", 1),
                            ("--cold-cache-samples", 0), ("--memory-samples", 1)):
            if config.getoption(option) < low:
                raise ValueError(f"{option} must be at least {low}, got {config.getoption(option)}")
        for option in ("--block-seconds", "--timing-cap-s", "--timing-info-cap-s", "--timing-precision"):
            if not config.getoption(option) >= 0:
                raise ValueError(f"{option} must be a non-negative number, got {config.getoption(option)}")
        from harness.results import journal

        from harness.core.paths import safe_output_path

        resume = config.getoption("--resume")
        config.stash[RESUMED] = journal.load(Path(resume)) if resume else {}
        chosen = resume or config.getoption("--journal")
        config.stash[JOURNAL] = (safe_output_path(chosen, "--resume" if resume else "--journal",
                                                  base=Path(config.invocation_params.dir))
                                 if chosen else journal.default_path())
    except (HarnessError, compressors.CompressionError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str:
    resumed = config.stash.get(RESUMED, {})
    return (f"journal: {config.stash[JOURNAL]} (after an interrupt, add --resume {config.stash[JOURNAL]})"
            + (f"; resuming {len(resumed)} journaled benchmark(s)" if resumed else ""))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from harness.models.profiles import get_profile

    config = metafunc.config
    cases = _cases(config)
    names = metafunc.fixturenames
    if "seq_len" in names:
        params = [(c, s) for p in dict.fromkeys(c.profile for c in cases)
                  for s in _ints(config, "--seq-lengths", get_profile(p).seq_lengths)
                  for c in cases if c.profile == p]
        metafunc.parametrize(("case", "seq_len"), [_param((c, s), c, f"{c.id}-{_task(c).length_tag}{s}")
                                                   for c, s in params])
    elif "batch_size" in names:
        params = [(c, b) for p in dict.fromkeys(c.profile for c in cases)
                  for b in _ints(config, "--batch-sizes", get_profile(p).batch_sizes)
                  for c in cases if c.profile == p]
        metafunc.parametrize(("case", "batch_size"), [_param((c, b), c, f"{c.id}-bs{b}") for c, b in params])
    elif "eval_set" in names:
        real = [c for c in cases if get_profile(c.profile).real_weights]
        # Grouped by task and its sets (a user's profiles each have their own sets), variants interleaved.
        sets = {c.profile: (_task(c).name, _task(c).eval_sets) for c in real}
        params = [(c, e) for group in dict.fromkeys(sets.values()) for e in group[1]
                  for c in real if sets[c.profile] == group]
        metafunc.parametrize(("case", "eval_set"), [_param((c, e), c, f"{c.id}-{e}") for c, e in params])
    elif "engine" in names:
        profiles = list(dict.fromkeys(c.profile for c in cases if c.backend == "torch" and not c.skip))
        if "int8-dynamic" not in {c.variant for c in cases if c.backend == "torch" and not c.skip}:
            profiles = []
        from compressors.quantize import ENGINES

        params = [(p, e) for p in profiles for e in ENGINES]
        metafunc.parametrize(("profile", "engine"), params, ids=[f"{p}-{e}" for p, e in params])
    elif "budget" in names:
        from harness.gate import budgets

        all_budgets = budgets.load_budgets(config.getoption("--budgets") or budgets.DEFAULT_PATH)
        params = [(b, c.profile, c.variant, c.backend) for c in cases if not c.skip
                  for b in budgets.applicable(all_budgets, c.profile, c.variant, get_profile(c.profile).real_weights,
                                              backend=c.backend)]
        metafunc.parametrize(("budget", "profile", "variant", "backend"), params,
                             ids=[f"{v}/{p}{'' if k == 'torch' else '/' + k} {b.metric} "
                                  f"{'<=' if b.bound.startswith('max') else '>='} "
                                  f"{b.limit:g}{'x fp32' if b.bound.endswith('ratio') else ''}" for b, p, v, k in params])
    elif "case" in names:
        metafunc.parametrize("case", [_param((c,), c, c.id) for c in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The baseline comparison runs only with --gate."""
    if not config.getoption("--gate"):
        items[:] = [i for i in items if i.originalname != "test_against_baseline"]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # After every plugin's modifyitems (-k, -m): the plan holds exactly the selected cells.
    session.config.stash[TIMING_PLAN] = _timing_plan(session.items)
    session.config.stash[REPLAY] = _replayable(session.items, session.config.stash.get(RESUMED, {}))


def _campaign_key(item: pytest.Item) -> tuple[str, int, int] | None:
    """The timing campaign a latency/throughput item belongs to (None for other items)."""
    from harness.models.profiles import get_profile

    params = getattr(getattr(item, "callspec", None), "params", {})
    case = params.get("case")
    if not isinstance(case, Case) or case.skip:
        return None
    if item.originalname == "test_latency":
        return case.profile, 1, params["seq_len"]
    if item.originalname == "test_throughput":
        return case.profile, params["batch_size"], get_profile(case.profile).static_length
    return None


def _replayable(items: list[pytest.Item], resumed: dict[str, dict]) -> set[str]:
    """Node ids to replay from the journal: every journaled item, except the timing items of a
    campaign the journal holds only in part (its paired ratios need one campaign: timed again)."""
    by_campaign: dict[tuple, list[str]] = {}
    for item in items:
        key = _campaign_key(item)
        if key is not None:
            by_campaign.setdefault(key, []).append(item.nodeid)
    partial = {n for ids in by_campaign.values() if not all(i in resumed for i in ids) for n in ids}
    return {i.nodeid for i in items if i.nodeid in resumed and i.nodeid not in partial}


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A journaled item is replayed (its numbers from the journal, nothing measured) on --resume."""
    if pyfuncitem.nodeid not in pyfuncitem.config.stash.get(REPLAY, set()):
        return None
    from harness.results import journal

    record = pyfuncitem.config.stash[RESUMED][pyfuncitem.nodeid]
    benchmark = pyfuncitem.funcargs["benchmark"]
    benchmark.group = record["group"]
    benchmark.extra_info.update(record["extra_info"], resumed_from=str(pyfuncitem.config.stash[JOURNAL]))
    journal.store_samples(benchmark, record["samples_s"])
    bench = pyfuncitem.funcargs.get("bench")
    if bench is not None:  # the gate reads the session's records
        bench.record(dict(benchmark.extra_info, name=benchmark.name), record["samples_s"])
    return True


def _timing_plan(items: list[pytest.Item]) -> dict[tuple[str, int, int], list[Case]]:
    """(profile, batch size, length) -> the cases the selected latency/throughput items time there
    (one interleaved campaign each; batch-1 latency at the static length and throughput at batch 1
    are the same campaign)."""
    plan: dict[tuple[str, int, int], list[Case]] = {}
    for item in items:
        key = _campaign_key(item)
        if key is None:
            continue
        case = item.callspec.params["case"]
        cells = plan.setdefault(key, [])
        if all(c.id != case.id for c in cells):
            cells.append(case)
    return plan


TIMING_PLAN = pytest.StashKey[dict]()
JOURNAL = pytest.StashKey[Path]()
RESUMED = pytest.StashKey[dict]()
REPLAY = pytest.StashKey[set]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Show a HarnessError (corrupt cache, failed worker, ...) as its one-line message."""
    from harness.core.errors import HarnessError

    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(HarnessError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    if (report.when == "call" and report.passed and "benchmark" in item.funcargs
            and item.nodeid not in item.config.stash.get(REPLAY, set())):
        from harness.results import journal

        record = journal.record_of(item.nodeid, item.funcargs["benchmark"])
        if record is not None:
            journal.append(item.config.stash[JOURNAL], record)
    return report


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest):
    from harness.session import default_threads

    from harness.gate import budgets
    from harness.models.profiles import get_profile
    from harness.session import TimingOptions

    config = request.config
    session = BenchSession(config.getoption("--threads") or default_threads(),
                           rebuild=not config.getoption("--no-rebuild"))
    session.eval_limit = config.getoption("--eval-limit")
    session.variants_from = config.getoption("--variants-from")
    session.timing = TimingOptions(block_s=config.getoption("--block-seconds"),
                                   min_repetitions=config.getoption("--blocks"),
                                   cap_s=config.getoption("--timing-cap-s"),
                                   info_cap_s=config.getoption("--timing-info-cap-s"),
                                   info_min_repetitions=config.getoption("--timing-info-blocks"),
                                   reload_every=config.getoption("--reload-every"),
                                   precision=config.getoption("--timing-precision"),
                                   processes=config.getoption("--processes"))
    session.timing_plan = config.stash.get(TIMING_PLAN, {})
    session.budgets_path = config.getoption("--budgets") or budgets.DEFAULT_PATH
    all_budgets = budgets.load_budgets(session.budgets_path)

    def limits(case: Case, batch_size: int, length: int) -> list[float]:
        """Time-ratio bounds the budgets will judge ``case`` against at this shape (a campaign
        keeps adding repetitions while one of them falls inside a CI)."""
        out = []
        for b in budgets.applicable(all_budgets, case.profile, case.variant, get_profile(case.profile).real_weights,
                                    backend=case.backend):
            if b.paired and b.base_metric == "p50_ms" and batch_size == 1 and b.metric == f"p50_ms@{length}":
                out.append(b.limit)
            elif (b.paired and b.metric == f"throughput_sps@{batch_size}"
                  and length == get_profile(case.profile).static_length):
                out.append(1 / b.limit)  # a throughput ratio is the inverse time ratio
        return out

    session.timing_limits = limits
    yield session
    session.close()


@pytest.fixture(scope="session")
def opts(request: pytest.FixtureRequest) -> dict:
    """Options of the fresh-process measurements and the in-process INT8 engine probe."""
    from harness.models.profiles import get_profile

    c = request.config
    return {
        "largest_batch": lambda profile: max(_ints(c, "--batch-sizes", get_profile(profile).batch_sizes)),
        "seconds": c.getoption("--bench-seconds"),
        "min_rounds": c.getoption("--min-rounds"),
        "cold_start_samples": c.getoption("--cold-start-samples"),
        "cold_cache_samples": c.getoption("--cold-cache-samples"),
        "memory_samples": c.getoption("--memory-samples"),
    }
