"""Bad input, tried systematically (hypothesis): the budgets parser, the saved-run loader and the CLI.

Each property: whatever the input, the code returns normally or raises our
one-line ``HarnessError`` (the CLI: exit 0/1/2, argparse usage errors exit 2),
never another exception, and nothing is written.  ``max_examples`` is modest
so ``tests/`` stays fast; the count tried is printed with ``--hypothesis-show-statistics``.
"""
import copy
import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.gate import budgets
from harness.report import summary as report_summary
from harness.report import tables as report
from harness.results import storage

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
BUDGETS_TEXT = (ROOT / "baselines" / "budgets.toml").read_text()


def _snapshot(*folders: Path) -> dict[str, str]:
    """sha256 of every file under ``folders`` (the 'writes nothing' check)."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")) if folder.exists() else []:
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# --- budgets.toml ------------------------------------------------------------------

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v)  # a TOML basic string


SCALARS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), st.text(max_size=20),
                    st.sampled_from(["fp32", "int8-dynamic", "*", "minilm-l6", "p50_ms@128", "size_mb", "x+y", "@",
                                     "heads-grad@0.2+int8", "magnitude-global@2", "int8-dynamic@torchao+int8"]))
BUDGET_KEYS = st.sampled_from(["profile", "variant", "metric", "why", "max", "min", "max_ratio", "min_ratio", "bogus"])
ENTRY = st.dictionaries(BUDGET_KEYS, st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=7)


def _toml(schema, entries, tolerances):
    lines = [f"schema = {_toml_value(schema)}"]
    if tolerances is not None:
        lines.append("[tolerances]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in tolerances.items()]
    for entry in entries:
        lines.append("[[budget]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def _parse_budgets(tmp_path, content: bytes):
    path = tmp_path / "budgets.toml"
    path.write_bytes(content)
    before = _snapshot(tmp_path, ROOT / "baselines")
    for parse in (budgets.load_budgets, budgets.load_tolerances):
        try:
            parse(path)
        except HarnessError as exc:
            assert "\n" not in str(exc).strip() and str(exc)
    assert _snapshot(tmp_path, ROOT / "baselines") == before


@settings(max_examples=60, **SETTINGS)
@given(cut=st.integers(0, len(BUDGETS_TEXT.encode())))
def test_truncated_budgets_file_is_parsed_or_a_clear_error(tmp_path, cut):
    _parse_budgets(tmp_path, BUDGETS_TEXT.encode()[:cut])


@settings(max_examples=60, **SETTINGS)
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_random_bytes_as_budgets_file_are_a_clear_error(tmp_path, data):
    _parse_budgets(tmp_path, data)


@settings(max_examples=100, **SETTINGS)
@given(schema=st.one_of(st.just(1), SCALARS), entries=st.lists(ENTRY, max_size=3),
       tolerances=st.none() | st.dictionaries(st.sampled_from(["size_mb", "accuracy_abs", "p50_ms", "nope"]),
                                              SCALARS, max_size=3))
def test_structured_random_budgets_are_parsed_or_a_clear_error(tmp_path, schema, entries, tolerances):
    _parse_budgets(tmp_path, _toml(schema, entries, tolerances).encode())


# --- saved runs --------------------------------------------------------------------

def _reference_run() -> dict:
    """The committed real run, cut to 12 benchmarks of every metric with 5 raw samples each."""
    run = json.loads((ROOT / "reports" / "reference" / "run.json").read_text())
    seen, keep = {}, []
    for b in run["benchmarks"]:
        metric = b["extra_info"]["metric"]
        if seen.get(metric, 0) < 2:
            seen[metric] = seen.get(metric, 0) + 1
            b["stats"]["data"] = b["stats"]["data"][:5]
            keep.append(b)
    run["benchmarks"] = keep
    run["edgebench"]["failures"] = [{"name": "test_x", "variant": "v", "profile": "p", "reason": "boom"}]
    return run


REFERENCE = _reference_run()
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                    max_leaves=6)


def _mutate(doc, data, n):
    """Apply ``n`` random deletions/replacements at random depths of ``doc``."""
    for _ in range(n):
        node, depth = doc, data.draw(st.integers(1, 5))
        for _ in range(depth):
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            key = data.draw(st.sampled_from(keys))
            child = node[key]
            if not isinstance(child, (dict, list)) or data.draw(st.booleans()):
                if isinstance(node, dict) and data.draw(st.booleans()):
                    del node[key]
                else:
                    node[key] = data.draw(JSON)
                break
            node = child
    return doc


def _load_and_render(path: Path) -> None:
    """What `harness report` and `harness check` do with a saved run."""
    try:
        run = storage.load_run(path)
    except HarnessError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    doc = report_summary.summary(run, path)
    report.render({**doc, "budgets": report_summary.budget_verdicts(doc["rows"])})


@settings(max_examples=100, **SETTINGS)
@given(data=st.data(), n=st.integers(1, 4))
def test_mutated_saved_run_loads_and_renders_or_is_a_clear_error(tmp_path, data, n):
    path = tmp_path / "0001_run.json"
    path.write_text(json.dumps(_mutate(copy.deepcopy(REFERENCE), data, n)))
    before = _snapshot(tmp_path)
    _load_and_render(path)
    assert _snapshot(tmp_path) == before


@settings(max_examples=40, **SETTINGS)
@given(cut=st.integers(0, 4000))
def test_truncated_saved_run_is_a_clear_error(tmp_path, cut):
    text = json.dumps(REFERENCE)
    path = tmp_path / "0001_run.json"
    path.write_text(text[:cut] if cut < 4000 else text[: len(text) - 1])
    with pytest.raises(HarnessError):
        storage.load_run(path)


# --- the command line ----------------------------------------------------------------

def _cli_world(tmp_path):
    """Run files the CLI strategy points at, all inside tmp_path."""
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(REFERENCE))
    crafted = copy.deepcopy(REFERENCE)
    crafted["machine_info"]["edgebench"]["machine_id"] = "../../../escaped"
    (tmp_path / "crafted.json").write_text(json.dumps(crafted))
    (tmp_path / "garbage.json").write_bytes(b"\xff\xfe{")
    return valid


TOKENS = st.sampled_from(["report", "check", "bless", "compare", "--out", "--budgets", "--against", "--alpha",
                          "--threshold", "--force", "--no-finetune", "-h", "valid.json", "crafted.json",
                          "garbage.json", "missing.json", "../../../../etc/edgebench", "/etc/edgebench", "out",
                          "a\x00b", "0.01", "-1", "nan", "1e309", ".", ""])
ARGV = st.lists(st.one_of(TOKENS, st.text(max_size=12)), max_size=6)


@settings(max_examples=150, **SETTINGS)
@given(argv=ARGV)
@example(argv=["report", "valid.json", "--out", "out"])  # the valid command: writes world/out, exit 0
@example(argv=["report", "valid.json", "--out", "../../../../etc/edgebench"])
@example(argv=["bless", "crafted.json"])  # machine id '../../../escaped' from the file
@example(argv=["check", "garbage.json", "--budgets", "garbage.json"])
def test_random_cli_arguments_exit_cleanly_and_write_only_where_allowed(tmp_path, monkeypatch, argv):
    from harness import cli
    from harness.core import paths
    from harness.data import assets
    from harness.gate import baselines

    world = tmp_path / "world"
    world.mkdir(exist_ok=True)
    _cli_world(world)
    monkeypatch.chdir(world)
    monkeypatch.setattr(baselines, "BASELINES", world / "baselines")
    monkeypatch.setattr(paths, "reports_dir", lambda: world / "reports")
    monkeypatch.setattr(storage, "benchmarks_dir", lambda: world / "no-runs")
    monkeypatch.setattr(assets, "fetch_all", lambda force=False: {})  # `setup` must not download in a test
    watched = (ROOT / "baselines", ROOT / "reports", world)
    before = _snapshot(*watched)
    try:
        code = cli.main(["setup", "--no-finetune"] if argv[:1] == ["setup"] else argv)
    except SystemExit as exc:  # argparse: usage error or --help
        code = exc.code
    assert code in (0, 1, 2)
    after = _snapshot(*watched)
    if argv == ["report", "valid.json", "--out", "out"]:
        assert code == 0 and (world / "out" / "report.md").is_file()
    if code == 2:
        assert after == before  # a usage error writes nothing
    new = set(after) - set(before)
    # Anything written lies inside the sandboxed output folders, never above them.
    assert all(Path(p).is_relative_to(world) for p in new), new
    assert {p: h for p, h in after.items() if p in before} == before or code == 0
