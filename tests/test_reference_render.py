"""Re-rendering the committed reference runs gives the committed reports, byte for byte.

``reports/reference/`` (and its ``sweep/``, ``sweep-timing/``, ``vision/``, ``distill/``, ``fidelity/``, ``deployable/``, ``deployable-zen4/``, ``edgemin/``, ``compiled/``, ``own-model/*/`` folders)
holds ``run.json`` and what ``python -m harness report`` rendered from it.  The run is rendered under its original file name (the
``"run"`` field of the committed ``summary.json``: the name is printed in the
report, the footers and ``summary.json``), and every ``.md``/``.csv``/``.json``
file must equal the committed one exactly -- except the single
``_Generated <timestamp> from ...`` line of ``report.md``, which carries the
render time; its timestamp alone is masked, and the line must be there.
PNGs are left out (matplotlib's metadata differs between renders).
"""
import json
import re
import shutil
from pathlib import Path

import pytest

from harness.report.tables import write_report

REFERENCE = Path(__file__).resolve().parent.parent / "reports" / "reference"
KINDS = (".md", ".csv", ".json")
NOT_RENDERED = {"run.json", "README.md"}
GENERATED = re.compile(r"^_Generated \S+ from ", re.MULTILINE)


def _mask(text: str) -> str:
    return GENERATED.sub("_Generated <timestamp> from ", text)


@pytest.mark.parametrize("folder", [".", "sweep", "sweep-timing", "vision", "distill", "own-model/quick", "own-model/toml",
                                    "own-model/onnx", "own-model/masked-lm", "fidelity", "deployable", "deployable-zen4", "edgemin",
                                    "compiled"])
def test_reference_run_renders_to_the_committed_files(tmp_path, folder):
    reference = REFERENCE / folder
    name = json.loads((reference / "summary.json").read_text())["run"]
    run = tmp_path / name
    shutil.copyfile(reference / "run.json", run)
    out = tmp_path / "out"
    write_report(run, out)
    committed = sorted(p.name for p in reference.iterdir()
                       if p.is_file() and p.suffix in KINDS and p.name not in NOT_RENDERED)
    rendered = sorted(p.name for p in out.iterdir() if p.suffix in KINDS)
    assert rendered == committed
    for file in committed:
        want, got = (reference / file).read_text(), (out / file).read_text()
        if file == "report.md":
            assert len(GENERATED.findall(want)) == 1 and len(GENERATED.findall(got)) == 1
            want, got = _mask(want), _mask(got)
        assert got == want, f"{file} differs from {reference / file}"
