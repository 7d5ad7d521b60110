"""The results store (harness.store): a real suite run published to an embedded MLflow store,
read back by ``history`` and ``fleet``; idempotence, a second testbed, a store that is down."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.report import history
from harness.results import storage
from harness.results.rows import collect
from harness.store import publish, read, uri

SUITE = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
         "--profiles", "tiny-random", "--variants", "fp32,int8-dynamic", "--backends", "torch", "--threads", "1",
         "--cold-start-samples", "1", "--memory-samples", "1", "--bench-seconds", "0.1", "--min-rounds", "3",
         "--blocks", "3", "--block-seconds", "0.05", "--timing-cap-s", "1", "--processes", "1",
         "--benchmark-autosave"]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("CI", uri.ENV)}
    return {**env, "PYTHONPATH": str(ROOT)}


def _cli(*args):
    """``python -m harness ARGS`` in a fresh process: what a user sees, stderr lines included."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True,
                          env=_env(), timeout=300)


def _main(*args):
    """The same command in this process (mlflow and torch already imported: seconds saved per call)."""
    import contextlib
    import io
    import types

    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    """(saved run, its embedded store URI): one tiny suite run with no --results-uri (the default)."""
    bench = tmp_path_factory.mktemp("store") / "bench"
    proc = subprocess.run(SUITE + [f"--benchmark-storage=file://{bench}"], cwd=ROOT, capture_output=True,
                          text=True, env=_env(), timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "results store: published" in out and "(2 cells)" in out, out[-2000:]
    return storage.newest_run(bench), uri.default_uri(bench)


def _variant_of(run_path, target, testbed, when, size_scale=1.0, timings=True):
    """A copy of the run as if measured on another testbed at ``when`` (its static sizes scaled;
    without latency/throughput when not ``timings``: the tiny run's A/A control is too noisy to bless)."""
    run = json.loads(run_path.read_text())
    if not timings:
        run["benchmarks"] = [b for b in run["benchmarks"]
                             if b["extra_info"].get("metric") not in ("latency", "throughput")]
    run["machine_info"]["edgebench"].update(machine_id=testbed, cpu_model=f"Test CPU {testbed}",
                                            isa_flags=["sse4_2", "avx", "avx2", "fma"])
    run["edgebench"]["run_id"] = f"{testbed}-{when}"
    run["datetime"] = f"2026-12-{when:02d}T10:00:00+00:00"
    for bench in run["benchmarks"]:
        if bench["extra_info"].get("metric") == "static":
            bench["extra_info"]["size_mb"] *= size_scale
    target.write_text(json.dumps(run))
    return target


def test_a_suite_run_is_published_with_every_row_metric_config_and_artifacts(suite_run):
    run_path, store = suite_run
    run = storage.load_run(run_path)
    cells = read.cells(store)
    assert {(c.profile, c.variant, c.backend) for c in cells} == {("tiny-random", "fp32", "torch"),
                                                                  ("tiny-random", "int8-dynamic", "torch")}
    testbed = run["machine_info"]["edgebench"]["machine_id"]
    assert {c.testbed for c in cells} == {testbed}
    rows = {r["variant"]: r for r in collect(storage.results(run)).rows}
    int8 = next(c for c in cells if c.variant == "int8-dynamic")
    row = rows["int8-dynamic"]
    assert int8.metrics["p50_ms.seq16"] == pytest.approx(row["p50_ms"]["16"])
    assert int8.metrics["p50_ratio.seq16"] == pytest.approx(row["p50_ratio"]["16"]["ratio"])
    assert int8.metrics["p50_ratio_ci_low.seq16"] == pytest.approx(row["p50_ratio"]["16"]["ci95"][0])
    assert int8.metrics["throughput_sps.bs1"] == pytest.approx(row["throughput_sps"]["1"])
    assert int8.metrics["size_mb"] == pytest.approx(row["size_mb"])
    assert int8.params["config.stages"] == "int8-dynamic" and int8.params["config.precision"] == "int8"
    assert int8.fingerprint["cpu_model"] == run["machine_info"]["edgebench"]["cpu_model"]

    client = uri.client(store)
    experiment = uri.experiment_id(client, store, create=False)
    (parent,) = publish.find(client, experiment, run["edgebench"]["run_id"])
    assert parent.data.tags["edgebench.commit"] == run["commit_info"]["id"]
    assert "--profiles tiny-random" in parent.data.tags["edgebench.command"]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"run.json", "report.md", "tables.json"} <= names


def test_publishing_the_same_run_again_adds_nothing(suite_run, tmp_path):
    run_path, store = suite_run
    copy = tmp_path / "copied-off-the-device.json"
    copy.write_bytes(run_path.read_bytes())
    before = len(read.cells(store))
    proc = _main("publish", str(copy), "--results-uri", store, "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert "nothing added" in proc.stdout
    assert len(read.cells(store)) == before
    run = storage.load_run(run_path)
    client = uri.client(store)
    assert len(publish.find(client, uri.experiment_id(client, store, False), run["edgebench"]["run_id"])) == 1


def test_a_half_written_publish_is_invisible_and_redone(suite_run, tmp_path):
    run_path, _ = suite_run
    store = f"sqlite:///{tmp_path / 'r.db'}"
    client = uri.client(store)
    experiment = uri.experiment_id(client, store, create=True)
    key = storage.load_run(run_path)["edgebench"]["run_id"]
    client.create_run(experiment, tags={publish.KIND: publish.SUITE_RUN, publish.RUN_KEY: key})  # died here
    with pytest.raises(HarnessError, match="holds no published run"):
        read.cells(store)
    done = publish.publish(run_path, store, with_report=False)
    assert done.created and done.cells == 2
    assert len(publish.find(client, experiment, key)) == 1 and len(read.cells(store)) == 2


def test_two_testbeds_fleet_shows_both_history_never_mixes_them(suite_run, tmp_path):
    run_path, _ = suite_run
    store = f"sqlite:///{tmp_path / 'fleet.db'}"
    publish.publish(run_path, store, with_report=False)
    here = storage.load_run(run_path)["machine_info"]["edgebench"]["machine_id"]
    for day, scale in enumerate([1.0, 1.0, 1.0, 1.5, 1.5, 1.5], start=3):
        publish.publish(_variant_of(run_path, tmp_path / f"board-{day}.json", "boardtestbed", day, scale),
                        store, with_report=False)

    proc = _main("fleet", "--results-uri", store, "--out", str(tmp_path / "fleet.md"))
    assert proc.returncode == 0, proc.stderr
    assert here in proc.stdout and "boardtestbed" in proc.stdout and "AVX2" in proc.stdout
    assert "never a regression" in proc.stdout
    size_line = next(l for l in proc.stdout.splitlines() if "| fp32 " in l and "size_mb" in l)
    assert size_line.count("|") == 7  # profile, variant, backend, metric, two testbeds

    proc = _main("history", "--results-uri", store, "--machine", "boardtestbed", "--metric", "size_mb",
                "--out", str(tmp_path / "h-board"))
    assert proc.returncode == 0, proc.stderr
    steps = (tmp_path / "h-board" / "steps.csv").read_text().splitlines()
    assert len(steps) == 3  # header + fp32 and int8-dynamic, each one step of +50% at the 4th run
    assert all("boardtestbed" in s and "+50.0%" in s and "2026-12-06" in s for s in steps[1:])
    assert list((tmp_path / "h-board").glob("history-size-mb-boardtestbed-*.png"))

    proc = _main("history", "--results-uri", store, "--machine", here, "--out", str(tmp_path / "h-here"))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "h-here" / "history.md").read_text()
    assert "1 published run(s) on 1 testbed(s)" in md and "boardtestbed" not in md

    proc = _main("history", "--results-uri", store, "--machine", "nosuchdevice")
    assert proc.returncode == 2 and "no published run for testbed nosuchdevice" in proc.stderr

    # The report embeds its own testbed's history once the store holds two of its runs.
    report = tmp_path / "report"
    proc = _main("report", str(run_path), "--results-uri", store, "--out", str(report), "--no-plots")
    assert proc.returncode == 0 and "History on this testbed" not in (report / "report.md").read_text()
    publish.publish(_variant_of(run_path, tmp_path / "here-2.json", here, 2, 1.5), store, with_report=False)
    proc = _main("report", str(run_path), "--results-uri", store, "--out", str(report), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    text = (report / "report.md").read_text()
    section = text[text.index(f"## History on this testbed ({here})"):]
    assert "2 published runs of tiny-random" in section and "boardtestbed" not in section
    assert "+50.0%" not in section  # one run per level: never a step
    assert (report / "history" / "history.md").is_file() and list((report / "history").glob("history-size-mb-*.png"))
    proc = _main("report", str(run_path), "--results-uri", store, "--out", str(tmp_path / "plain"), "--no-history")
    assert "History on this testbed" not in (tmp_path / "plain" / "report.md").read_text()


def test_bad_input_is_one_line_exit_2_and_writes_nothing(suite_run, tmp_path):
    run_path, _ = suite_run
    proc = _cli("publish", str(run_path), "--results-uri", "ftp://example/x")
    assert proc.returncode == 2 and "unknown scheme 'ftp'" in proc.stderr and len(proc.stderr.splitlines()) == 1

    foreign = tmp_path / "foreign.json"
    run = json.loads(run_path.read_text())
    run["edgebench"]["schema"] = 99
    foreign.write_text(json.dumps(run))
    db = tmp_path / "never.db"
    proc = _cli("publish", str(foreign), "--results-uri", f"sqlite:///{db}")
    assert proc.returncode == 2 and "run schema 99" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not db.exists()

    port = _closed_port()
    started = time.monotonic()
    proc = _cli("publish", str(run_path), "--results-uri", f"http://127.0.0.1:{port}", "--no-report")
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "publish it later" in proc.stderr
    assert time.monotonic() - started < 120  # short retries, not MLflow's default minutes

    proc = _cli("publish", str(run_path), "--results-uri", f"postgresql://edge:s3cret@127.0.0.1:{port}/db",
                "--no-report")
    assert proc.returncode == 2 and "s3cret" not in proc.stderr + proc.stdout and "edge:***@" in proc.stderr

    # Built variants: a store that is down, and a variant this cache never built.
    proc = _cli("push", "--profiles", "tiny-random", "--variants", "fp32", "--results-uri", f"http://127.0.0.1:{port}")
    assert proc.returncode == 2 and "push again when the store is up" in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    proc = _cli("push", "--profiles", "tiny-random", "--variants", "edgemin", "--results-uri", f"sqlite:///{db}")
    assert proc.returncode == 2 and "not built in this cache" in proc.stderr and "tiny-random/edgemin" in proc.stderr
    assert not db.exists()


def test_a_store_that_is_down_never_costs_the_suite_run(tmp_path):
    bench = tmp_path / "bench"
    down = f"http://127.0.0.1:{_closed_port()}"
    proc = subprocess.run(SUITE + ["-k", "static", f"--benchmark-storage=file://{bench}", "--results-uri", down],
                          cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    saved = storage.newest_run(bench)
    assert storage.load_run(saved)["benchmarks"]
    line = next(l for l in out.splitlines() if l.startswith("results store: not published"))
    assert f"python -m harness publish {saved}" in line


def test_uri_resolution_and_redaction(monkeypatch, tmp_path):
    monkeypatch.delenv(uri.ENV, raising=False)
    assert uri.resolve(None, storage=tmp_path) == f"sqlite:///{tmp_path.resolve()}/results.db"
    monkeypatch.setenv(uri.ENV, "postgresql://team@db/edgebench")
    assert uri.resolve(None) == "postgresql://team@db/edgebench"
    assert uri.resolve("off") is None and uri.resolve("http://h:5000") == "http://h:5000"
    with pytest.raises(HarnessError, match="unknown scheme"):
        uri.resolve("results.db")
    assert uri.redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert uri.redact("http://h:5000/x") == "http://h:5000/x"


def test_flatten_names_every_number_and_keeps_strings_as_params():
    from harness.results.rows import VariantConfig

    row = {"profile": "p", "variant": "v", "backend": "torch", "size_mb": 4.0, "real_weights": True,
           "p50_ms": {"128": 2.0, "16": None}, "throughput_sps": {"32": 100.0},
           "p50_ratio": {"128": {"ratio": 0.5, "ci95": [0.45, 0.55], "n": 9}},
           "aa_ratio": {"throughput@32": {"ratio": 1.0, "ci95": [0.99, 1.01], "n": 5}},
           "accuracy": 0.8, "accuracy_ci95": [0.78, 0.82], "quant_engine": None,
           "config": VariantConfig(("a", "int8"), ("a", "int8"), 0.5, 1, "x86", "int8")}
    metrics, params = publish.flatten(row)
    assert metrics == {"size_mb": 4.0, "p50_ms.seq128": 2.0, "throughput_sps.bs32": 100.0,
                       "p50_ratio.seq128": 0.5, "p50_ratio_ci_low.seq128": 0.45, "p50_ratio_ci_high.seq128": 0.55,
                       "p50_ratio_n.seq128": 9.0, "aa_ratio.bs32": 1.0, "aa_ratio_ci_low.bs32": 0.99,
                       "aa_ratio_ci_high.bs32": 1.01, "aa_ratio_n.bs32": 5.0, "accuracy": 0.8,
                       "accuracy_ci_low": 0.78, "accuracy_ci_high": 0.82, "config.target_sparsity": 0.5,
                       "config.recovery_epochs": 1.0}
    assert params == {"real_weights": "True", "config.stages": "a+int8", "config.methods": "a+int8",
                      "config.quant_engine": "x86", "config.precision": "int8"}


def test_history_renders_ci_bands_and_isa_classes(tmp_path):
    cells = [read.Cell("tb", f"k{i}", f"2026-12-0{i + 1}T00:00:00", "c", "p", "int8", "torch",
                       {"p50_ratio.seq128": v, "p50_ratio_ci_low.seq128": v - 0.01,
                        "p50_ratio_ci_high.seq128": v + 0.01}, {}, {"isa_flags": "avx2,avx512_vnni"})
             for i, v in enumerate([0.5, 0.5, 0.51, 0.5, 0.7, 0.71, 0.7])]
    md, steps = history.write_history(cells, tmp_path)
    assert [s[4] for s in steps] == ["p50_ratio.seq128"] and steps[0][5] == "2026-12-05T00:00:00"
    assert (tmp_path / "history-p50-ratio.seq128-tb-p-torch.png").stat().st_size > 1000
    assert history.isa_class(cells[0].fingerprint) == "AVX-512 VNNI"
    assert history.isa_class({"isa_flags": "sse4_2"}) == "other"


# --- a real shared store: PostgreSQL + mlflow server -------------------------------------------------------------

def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL server binaries: `make test` installs Debian's postgresql (as root)")
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    return found[-1].parent


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth) with a database ``mlflow``: its SQLAlchemy URI."""
    import pwd
    import shutil
    import tempfile

    bindir = _postgres_bin()
    # Not under pytest's tmp dirs: those are 0700 root-only, and the server runs as the postgres user.
    data = Path(tempfile.mkdtemp(prefix="edgebench-pg-"))
    as_pg = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        as_pg = ["runuser", "-u", "postgres", "--"]
    port = _closed_port()

    def run(*cmd):
        proc = subprocess.run([*as_pg, *map(str, cmd)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    run(bindir / "initdb", "-D", data / "db", "-A", "trust", "-U", "postgres")
    run(bindir / "pg_ctl", "-D", data / "db", "-l", data / "log", "-w", "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "mlflow")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlflow"
    finally:
        run(bindir / "pg_ctl", "-D", data / "db", "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on a free local port, PostgreSQL backend store, artifacts served from a local folder."""

    def __init__(self, backend: str, artifacts: Path):
        self.backend, self.artifacts, self.port = backend, artifacts, _closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.start_s: list[float] = []

    def start(self) -> None:
        import urllib.request

        started = time.monotonic()
        log = open(self.artifacts.parent / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", self.backend,
             "--serve-artifacts", "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env())
        while time.monotonic() - started < 180:
            assert self.proc.poll() is None, (self.artifacts.parent / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        self.start_s.append(time.monotonic() - started)
                        return
            except OSError:
                time.sleep(0.5)
        pytest.fail("mlflow server did not answer /health within 180 s")

    def stop(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    server = MlflowServer(postgres, tmp_path_factory.mktemp("server") / "artifacts")
    server.start()
    yield server
    server.stop()


def test_a_shared_server_on_postgresql_serves_two_testbeds_once_each(suite_run, mlflow_server, tmp_path, capsys):
    run_path, _ = suite_run
    url = mlflow_server.url
    here = storage.load_run(run_path)["machine_info"]["edgebench"]["machine_id"]
    first = publish.publish(run_path, url)  # with the rendered report as artifacts, through the server
    board = publish.publish(_variant_of(run_path, tmp_path / "board.json", "boardtestbed", 5), url)
    assert first.created and board.created
    assert not publish.publish(run_path, url).created  # the same run again: one record

    proc = _main("fleet", "--results-uri", url)
    assert proc.returncode == 0, proc.stderr
    assert here in proc.stdout and "boardtestbed" in proc.stdout
    for machine, other in ((here, "boardtestbed"), ("boardtestbed", here)):
        cells = read.cells(url, machine)
        assert {c.testbed for c in cells} == {machine} and len(cells) == 2
        proc = _main("history", "--results-uri", url, "--machine", machine, "--out", str(tmp_path / machine))
        assert proc.returncode == 0 and other not in (tmp_path / machine / "history.md").read_text()
    client = uri.client(url)
    experiment = uri.experiment_id(client, url, create=False)
    (parent,) = publish.find(client, experiment, publish.run_key(storage.load_run(run_path)))
    assert "report.md" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    with capsys.disabled():
        print(f"\n[shared store] server up in {mlflow_server.start_s[0]:.1f} s; publish with report "
              f"{first.seconds:.1f} s, with report (second testbed) {board.seconds:.1f} s")


def test_a_database_that_refuses_the_credentials_is_one_line_and_no_password_shown(suite_run, postgres):
    run_path, _ = suite_run
    refused = postgres.replace("postgres@", "intruder:s3cret@")  # a role the cluster does not have
    proc = _cli("publish", str(run_path), "--results-uri", refused, "--no-report")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "s3cret" not in proc.stdout + proc.stderr
    assert "intruder:***@" in proc.stderr and "publish it later" in proc.stderr


def test_a_server_stopped_mid_publish_leaves_nothing_visible_and_the_run_publishes_later(
        suite_run, mlflow_server, tmp_path, monkeypatch):
    run_path, _ = suite_run
    url = mlflow_server.url
    late = _variant_of(run_path, tmp_path / "late.json", "latetestbed", 7)
    logged = publish._log_artifacts

    def server_dies_first(*args, **kwargs):
        mlflow_server.stop()  # the parent and its cells are written; the artifacts and FINISHED are not
        return logged(*args, **kwargs)

    monkeypatch.setattr(publish, "_log_artifacts", server_dies_first)
    with pytest.raises(HarnessError, match="publish it later"):
        publish.publish(late, url, with_report=False)
    monkeypatch.undo()
    assert storage.load_run(late)  # the local run file is untouched
    mlflow_server.start()
    with pytest.raises(HarnessError, match="no published run for testbed latetestbed"):
        read.cells(url, "latetestbed")  # the half-written record is invisible
    again = publish.publish(late, url, with_report=False)
    assert again.created and again.cells == 2
    client = uri.client(url)
    assert len(publish.find(client, uri.experiment_id(client, url, False), "latetestbed-7")) == 1
    assert len(read.cells(url, "latetestbed")) == 2


def test_blessing_in_the_store_feeds_the_gate_within_one_testbed(suite_run, tmp_path):
    run_path, _ = suite_run
    store = f"sqlite:///{tmp_path / 'gate.db'}"
    from harness.store import baselines as store_baselines

    with pytest.raises(HarnessError, match="no run blessed in the results store"):
        store_baselines.load_blessed(store, "nosuchtestbed")
    copies = [_variant_of(run_path, tmp_path / f"b{d}.json", "gatetestbed", d, timings=False) for d in (1, 2, 3)]
    for copy in copies:
        store_baselines.bless(copy, store)
    publish.publish(_variant_of(run_path, tmp_path / "other.json", "othertestbed", 4), store, with_report=False)
    blessed = store_baselines.load_blessed(store, "gatetestbed")
    assert [r["edgebench"]["run_id"] for r in blessed] == ["gatetestbed-1", "gatetestbed-2", "gatetestbed-3"]
    with pytest.raises(HarnessError, match="for testbed othertestbed"):
        store_baselines.load_blessed(store, "othertestbed")  # published, never blessed

    new = _variant_of(run_path, tmp_path / "new.json", "gatetestbed", 9, size_scale=1.5, timings=False)
    proc = _main("compare", str(new), "--from-store", "--results-uri", store)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 1.5x the blessed size: a regression ...
    assert "size" in proc.stdout
    same = _variant_of(run_path, tmp_path / "same.json", "gatetestbed", 10, timings=False)
    proc = _main("compare", str(same), "--from-store", "--results-uri", store)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # ... the unchanged run is not

    partial = json.loads(new.read_text())
    partial["edgebench"]["interrupted"] = "SIGINT"
    bad = tmp_path / "partial.json"
    bad.write_text(json.dumps(partial))
    proc = _main("bless", str(bad), "--results-uri", store)
    assert proc.returncode == 2 and "partial run" in proc.stderr


def test_a_variant_pushed_by_one_device_is_pulled_verified_and_measured_by_another(
        suite_run, mlflow_server, tmp_path, capsys):
    """Build once, measure anywhere: the suite run's device pushes its built variants through the
    server; a "device" whose cache holds the fetched data but nothing built measures them."""
    from harness.core.paths import cache_dir
    from harness.models.profiles import get_profile
    from harness.results import fingerprint
    from harness.session import default_threads
    from harness.store import variants as store_variants

    url = mlflow_server.url
    here = fingerprint.collect(default_threads())["machine_id"]  # the pushing device, as `push` names it
    push = ("push", "--profiles", "tiny-random", "--variants", "fp32,int8-dynamic", "--results-uri", url)
    started = time.perf_counter()
    proc = _main(*push)
    push_s = time.perf_counter() - started
    assert proc.returncode == 0 and proc.stdout.count("pushed tiny-random/") == 2, proc.stdout + proc.stderr
    assert _main(*push).stdout.count("already in the store") == 2  # pushing again adds nothing

    device = tmp_path / "device-cache"  # the data fetched by set-up; no variant, checkpoint or stage
    device.mkdir()
    for item in cache_dir().iterdir():
        if item.name not in ("variants", "onnx", "checkpoints", "stages") and not item.name.startswith("."):
            (device / item.name).symlink_to(item)
    bench = tmp_path / "bench"
    started = time.perf_counter()
    proc = subprocess.run(SUITE + ["-k", "static or latency", f"--benchmark-storage=file://{bench}",
                                   "--results-uri", "off", "--variants-from", url], cwd=ROOT, capture_output=True, text=True,
                          env={**_env(), "EDGEBENCH_CACHE": str(device)}, timeout=900)
    measure_s = time.perf_counter() - started
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    run = storage.load_run(storage.newest_run(bench))
    assert run["edgebench"]["variants_from"] == url
    static = {b["extra_info"]["variant"]: b["extra_info"] for b in run["benchmarks"]
              if b["extra_info"].get("metric") == "static"}
    assert set(static) == {"fp32", "int8-dynamic"}
    assert {b["extra_info"]["variant"] for b in run["benchmarks"] if b["extra_info"].get("metric") == "latency"
            and b["extra_info"]["p50_ms"] > 0} == {"fp32", "int8-dynamic"}  # and timed
    for info in static.values():  # each measured variant says where it came from
        assert info["pulled_from"]["built_on"] == here and info["pulled_from"]["results_uri"] == url
    pulled = sorted(p.parent.name for p in (device / "variants" / "tiny-random").glob("*/pulled.json"))
    assert len(pulled) == 2 and not (device / "stages").exists()
    with capsys.disabled():
        print(f"\n[variants] pushed 2 tiny-random variants in {push_s:.1f} s; the second device's suite run "
              f"(pull + verify + measure) took {measure_s:.1f} s")

    # A copy corrupted in the store: refused with one line, nothing enters the cache.
    source_key = get_profile("tiny-random").source_key()
    weights = next(p for p in mlflow_server.artifacts.rglob("variant/variant.json")
                   if json.loads(p.read_text())["variant"] == "fp32").parent / "model.safetensors"
    original = weights.read_bytes()
    area = tmp_path / "third-device"
    try:
        weights.write_bytes(original[:-64] + bytes(64))
        with pytest.raises(HarnessError, match="the cached variant is corrupt|the store's copy is corrupt"):
            store_variants.pull(url, "tiny-random", "fp32", source_key, root=area, log=lambda _: None)
    finally:
        weights.write_bytes(original)
    assert not area.exists() or not any(area.rglob("*.json"))
    with pytest.raises(HarnessError, match="is not in the results store .*python -m harness push"):
        store_variants.pull(url, "tiny-random", "magnitude-global@0.5", source_key, root=area, log=lambda _: None)
    # A download whose recipe differs from this device's (other compressor code): refused.
    folder = next((device / "variants" / "tiny-random").glob("fp32-*"))
    meta = json.loads((folder / "variant.json").read_text())
    copy = tmp_path / "other-recipe"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / "variant.json").write_text(json.dumps({**meta, "code_version": "0" * 12}))
    with pytest.raises(HarnessError, match="does not match this device's recipe: code_version"):
        store_variants.verify(copy, "tiny-random", "fp32", source_key, meta["weights_sha256"])


def test_the_suites_gate_judges_against_runs_blessed_in_the_store(suite_run, tmp_path):
    """``--gate --gate-from-store``: the suite's own gate item reads the store's blessed runs of its testbed."""
    from harness.store import baselines as store_baselines

    run_path, _ = suite_run
    store = f"sqlite:///{tmp_path / 'gate.db'}"
    base = json.loads(run_path.read_text())
    base["benchmarks"] = [b for b in base["benchmarks"] if b["extra_info"].get("metric") == "static"]
    for day in (1, 2, 3):  # blessed runs of this testbed whose models were a third smaller
        copy = json.loads(json.dumps(base))
        copy["edgebench"]["run_id"], copy["datetime"] = f"smaller-{day}", f"2026-12-0{day}T10:00:00+00:00"
        for b in copy["benchmarks"]:
            b["extra_info"]["size_mb"] /= 1.5
        (tmp_path / f"b{day}.json").write_text(json.dumps(copy))
        store_baselines.bless(tmp_path / f"b{day}.json", store)

    proc = subprocess.run(SUITE + ["-k", "static or against_baseline", "--gate", "--gate-from-store",
                                   "--results-uri", store, f"--benchmark-storage=file://{tmp_path / 'bench'}"],
                          cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]  # 1.5x the blessed size: the gate item fails
    assert "Against 3 run(s) blessed for testbed" in out and "gate.db" in out
    assert "failing verdict(s) against the blessed baseline" in out
    assert any("regression" in line and "size" in line for line in out.splitlines()), out[-3000:]

    proc = subprocess.run(SUITE + ["-k", "static", "--gate-from-store", "--results-uri", "off"],
                          cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 4 and "--gate-from-store needs --gate and a results store" in proc.stderr
