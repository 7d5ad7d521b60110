"""Asset fetching with fake specs: no network, a tmp cache."""
from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.data import assets

FILES = {"pkg/data/a.txt": b"alpha\n" * 100, "pkg/data/b.json": b'{"b": 1}\n'}


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _make_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return path


def _make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return path


def _fake_spec(tmp_path: Path, archive: Path, archive_sha: str | None = None,
               name: str = "fake", members: dict[str, bytes] = FILES) -> assets.AssetSpec:
    """A spec whose 'download' copies a local archive and counts its calls."""
    counter = tmp_path / f"{name}.downloads"
    script = ("import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2]); "
              "open(sys.argv[3], 'a').write('x')")
    return assets.AssetSpec(
        name=name,
        describe=f"copy {archive.name}",
        command=(sys.executable, "-c", script, str(archive), "{dest}", str(counter)),
        archive=archive.name,
        archive_sha256=archive_sha or _sha(archive.read_bytes()),
        members=tuple(assets.Member(p, _sha(b)) for p, b in members.items()),
        tool="python",
        tool_fix="install python",
    )


def _downloads(tmp_path: Path, name: str = "fake") -> int:
    p = tmp_path / f"{name}.downloads"
    return len(p.read_text()) if p.exists() else 0


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("maker", [_make_tar, _make_zip])
def test_fetch_extracts_verifies_and_is_idempotent(tmp_path, cache, monkeypatch, maker):
    suffix = ".tar.gz" if maker is _make_tar else ".whl"
    s = _fake_spec(tmp_path, maker(tmp_path / f"fake-1.0{suffix}", FILES))
    monkeypatch.setitem(assets.ASSETS, "fake", s)

    folder = assets.fetch("fake")
    assert folder == cache / "assets" / "fake"
    assert (folder / "a.txt").read_bytes() == FILES["pkg/data/a.txt"]
    assert (folder / "b.json").read_bytes() == FILES["pkg/data/b.json"]
    assert (cache / "downloads" / s.archive).is_file()
    assert _downloads(tmp_path) == 1

    assert assets.fetch("fake") == folder  # second fetch: verified, no download
    assert _downloads(tmp_path) == 1
    assert assets.asset_dir("fake") == folder

    (folder / "a.txt").unlink()  # extracted file lost: re-extract from the kept archive
    assets.fetch("fake")
    assert _downloads(tmp_path) == 1 and (folder / "a.txt").is_file()

    assets.fetch("fake", force=True)
    assert _downloads(tmp_path) == 2


def test_archive_checksum_mismatch_leaves_nothing(tmp_path, cache, monkeypatch):
    archive = _make_tar(tmp_path / "fake-1.0.tar.gz", FILES)
    monkeypatch.setitem(assets.ASSETS, "fake", _fake_spec(tmp_path, archive, archive_sha="0" * 64))
    with pytest.raises(HarnessError, match=r"sha256 .* but expected 000000000000.*setup --force"):
        assets.fetch("fake")
    assert not (cache / "assets" / "fake").exists()
    assert not (cache / "downloads" / archive.name).exists()
    leftovers = [p.name for p in (cache / "downloads").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_member_checksum_mismatch_keeps_old_folder(tmp_path, cache, monkeypatch):
    good = _fake_spec(tmp_path, _make_tar(tmp_path / "fake-1.0.tar.gz", FILES))
    monkeypatch.setitem(assets.ASSETS, "fake", good)
    folder = assets.fetch("fake")
    # The package now ships different content than the pin: extraction must fail
    # without touching the good folder.
    changed = {**FILES, "pkg/data/a.txt": b"tampered"}
    (tmp_path / "other").mkdir()
    bad_archive = _make_tar(tmp_path / "other" / "fake-1.0.tar.gz", changed)
    bad = _fake_spec(tmp_path, bad_archive, members=FILES)
    monkeypatch.setitem(assets.ASSETS, "fake", bad)
    with pytest.raises(HarnessError, match="pkg/data/a.txt in fake-1.0.tar.gz has sha256"):
        assets.fetch("fake", force=True)
    assert (folder / "a.txt").read_bytes() == FILES["pkg/data/a.txt"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["fake"]  # no temp folders


def test_missing_asset_names_setup_command(cache, tmp_path, monkeypatch):
    monkeypatch.setitem(assets.ASSETS, "fake",
                        _fake_spec(tmp_path, _make_tar(tmp_path / "fake-1.0.tar.gz", FILES)))
    with pytest.raises(HarnessError, match=r"data files for 'fake' are missing.*python -m harness setup"):
        assets.asset_dir("fake")
    with pytest.raises(HarnessError, match=r"model files for 'minilm-l6' are missing.*make setup"):
        assets.asset_dir("minilm-l6")
    assert _downloads(tmp_path) == 0  # asset_dir never downloads


def test_corrupt_file_detected_despite_stamp(cache, tmp_path, monkeypatch):
    monkeypatch.setitem(assets.ASSETS, "fake",
                        _fake_spec(tmp_path, _make_tar(tmp_path / "fake-1.0.tar.gz", FILES)))
    folder = assets.fetch("fake")
    assets.asset_dir("fake")
    (folder / "a.txt").write_bytes(b"corrupted")  # size changes, so the stamp is not trusted
    with pytest.raises(HarnessError, match=r"a.txt has sha256 .* but expected .*the cache is corrupt.*--force"):
        assets.asset_dir("fake")
    assets.fetch("fake")  # repairs it from the kept archive
    assert (folder / "a.txt").read_bytes() == FILES["pkg/data/a.txt"]


def test_stamp_avoids_rehashing(cache, tmp_path, monkeypatch):
    monkeypatch.setitem(assets.ASSETS, "fake",
                        _fake_spec(tmp_path, _make_tar(tmp_path / "fake-1.0.tar.gz", FILES)))
    assets.fetch("fake")
    monkeypatch.setattr(assets, "_RACY_NS", 0)  # files were just written; trust them anyway
    assets.asset_dir("fake")  # writes a fresh stamp
    calls = []
    monkeypatch.setattr(assets, "sha256_file", lambda p: calls.append(p) or "x")
    assets.asset_dir("fake")
    assert calls == []


def test_unknown_name_lists_known(cache):
    with pytest.raises(HarnessError, match=r"unknown asset 'nope': known assets are imdb, minilm-l3, minilm-l6, mr"):
        assets.fetch("nope")


def test_missing_tool_and_failing_command(cache, tmp_path, monkeypatch):
    archive = _make_tar(tmp_path / "fake-1.0.tar.gz", FILES)
    base = _fake_spec(tmp_path, archive)
    no_tool = assets.AssetSpec(**{**base.__dict__, "command": ("no-such-tool-xyz", "pack"),
                                  "tool": "no-such-tool-xyz", "tool_fix": "apt-get install it"})
    monkeypatch.setitem(assets.ASSETS, "fake", no_tool)
    with pytest.raises(HarnessError, match=r"no-such-tool-xyz not found.*apt-get install it"):
        assets.fetch("fake")
    failing = assets.AssetSpec(**{**base.__dict__, "command": (
        sys.executable, "-c", "import sys; sys.exit('registry unreachable')")})
    monkeypatch.setitem(assets.ASSETS, "fake", failing)
    with pytest.raises(HarnessError, match=r"failed \(exit 1: registry unreachable\).*harness setup"):
        assets.fetch("fake")
    assert not (cache / "assets" / "fake").exists()


def test_real_specs_are_well_formed():
    for name, s in assets.ASSETS.items():
        assert s.name == name and len(s.archive_sha256) == 64 and "{dest}" in s.command
        assert all(len(m.sha256) == 64 for m in s.members)
        assert len({m.dest for m in s.members}) == len(s.members)
